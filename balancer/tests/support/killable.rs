//! A backend a test can kill and start again on the same port: every request gets `200` with
//! its name as the body (or `500` while told to fail, or `/healthz` answered as told), and it
//! counts the connections it accepted and the requests it served.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::ScriptedRequest;

/// What every thread of one backend shares.
#[derive(Default)]
struct State {
    stopped: AtomicBool,
    /// Answer every request with 500.
    failing: AtomicBool,
    accepted: AtomicU64,
    requests: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
}

/// A running backend; [`KillableBackend::kill`] (or dropping it) stops it.
pub struct KillableBackend {
    pub addr: SocketAddr,
    pub name: String,
    state: Arc<State>,
}

impl KillableBackend {
    /// Starts one on a free loopback port.
    pub fn start(name: &str) -> Self {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap())
    }

    /// Starts one on `addr` (a port an earlier one was killed on).
    pub fn start_on(name: &str, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        let own = name.to_owned();
        thread::spawn(move || {
            while !shared.stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        shared.accepted.fetch_add(1, Ordering::SeqCst);
                        if let Ok(clone) = conn.try_clone() {
                            shared.conns.lock().unwrap().push(clone);
                        }
                        let (state, name) = (shared.clone(), own.clone());
                        thread::spawn(move || serve(conn, &state, &name));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            // The listener closes here: connects are refused from now on.
        });
        Self {
            addr,
            name: name.to_owned(),
            state,
        }
    }

    /// Stops accepting, closes the listener and every open connection.
    pub fn kill(&self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        for conn in self.state.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
        // The accept loop notices within one poll; wait until connects are refused.
        for _ in 0..500 {
            if TcpStream::connect(self.addr).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        panic!("backend {} still accepts after kill", self.name);
    }

    /// Answers every request (health checks too) with 500 while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Requests answered so far (health checks included).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for KillableBackend {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        for conn in self.state.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn serve(mut conn: TcpStream, state: &State, name: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    while let Some(request) = ScriptedRequest::read(&mut conn) {
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        request.read_body(&mut conn);
        state.requests.fetch_add(1, Ordering::SeqCst);
        let status = if state.failing.load(Ordering::SeqCst) {
            "500 Internal Server Error"
        } else {
            "200 OK"
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Served-By: {name}\r\n\r\n{name}",
            name.len()
        );
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
