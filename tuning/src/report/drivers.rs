//! `ringway-tune --probe-drivers`: a short loopback echo on each IO driver, so the io_uring and
//! epoll drivers of the same binary can be compared on this host.
//!
//! Client and server run on one worker thread: each round trip is four socket operations
//! (client write, server read, server write, client read), about what a proxy pays per request.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringway_io::buf::IoBuf;
use ringway_io::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRentExt};
use serde::Serialize;

use crate::runtime::{spawn_worker, IoDriver, WorkerSpec};
use crate::socket;
use crate::sys;

/// Bytes per echo message.
pub const MESSAGE_BYTES: usize = 64;

/// The outcome of one driver's echo run.
#[derive(Debug, Clone, Serialize)]
pub struct DriverTiming {
    /// Driver requested.
    pub driver: IoDriver,
    /// Round trips completed, or why the run failed.
    #[serde(flatten)]
    pub outcome: EchoOutcome,
}

/// Echo results.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EchoOutcome {
    /// The run finished.
    Done {
        /// Round trips of a `MESSAGE_BYTES` message.
        round_trips: u64,
        /// Wall time of the run.
        seconds: f64,
        /// Round trips per second.
        round_trips_per_sec: f64,
        /// CPU time of the worker thread per round trip, in microseconds.
        cpu_us_per_round_trip: f64,
    },
    /// The driver could not be set up or the echo failed.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// Runs the echo for `duration` on each of `drivers`, one after the other, unpinned unless
/// `cpu` is given.
pub fn probe(drivers: &[IoDriver], duration: Duration, cpu: Option<usize>) -> Vec<DriverTiming> {
    drivers
        .iter()
        .map(|&driver| DriverTiming {
            driver,
            outcome: run_one(driver, duration, cpu).unwrap_or_else(|e| EchoOutcome::Failed {
                error: e.to_string(),
            }),
        })
        .collect()
}

fn run_one(driver: IoDriver, duration: Duration, cpu: Option<usize>) -> io::Result<EchoOutcome> {
    let listener = socket::listener("127.0.0.1:0".parse().map_err(io::Error::other)?, 16)?;
    let addr = listener.local_addr()?;
    let spec = WorkerSpec {
        name: format!("probe-{driver}"),
        cpu,
        driver,
        ring_entries: 256,
    };
    let handle = spawn_worker(spec, move |_| async move {
        let listener = ringway_io::net::TcpListener::from_std(listener)?;
        let server = ringway_io::spawn(serve(listener));
        let cpu0 = sys::thread_cpu_time()?;
        let start = Instant::now();
        let round_trips = client(addr, duration).await?;
        let seconds = start.elapsed().as_secs_f64();
        let cpu = sys::thread_cpu_time()?.saturating_sub(cpu0);
        server.await?;
        Ok::<_, io::Error>(done(round_trips, seconds, cpu))
    })?;
    handle
        .join()
        .map_err(|_| io::Error::other(format!("{driver} probe worker panicked")))?
}

#[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
fn done(round_trips: u64, seconds: f64, cpu: Duration) -> EchoOutcome {
    let n = round_trips.max(1) as f64;
    EchoOutcome::Done {
        round_trips,
        seconds,
        round_trips_per_sec: round_trips as f64 / seconds.max(1e-9),
        cpu_us_per_round_trip: cpu.as_secs_f64() * 1e6 / n,
    }
}

async fn serve(listener: ringway_io::net::TcpListener) -> io::Result<()> {
    let (mut conn, _) = listener.accept().await?;
    conn.set_nodelay(true)?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (res, b) = conn.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(());
        }
        let (res, b) = conn.write_all(b.slice(..n)).await;
        res?;
        buf = b.into_inner();
    }
}

async fn client(addr: SocketAddr, duration: Duration) -> io::Result<u64> {
    let mut conn = ringway_io::net::TcpStream::connect_addr(addr).await?;
    conn.set_nodelay(true)?;
    let deadline = Instant::now() + duration;
    let mut msg = vec![b'x'; MESSAGE_BYTES];
    let mut back = vec![0u8; MESSAGE_BYTES];
    let mut round_trips = 0u64;
    while Instant::now() < deadline {
        let (res, m) = conn.write_all(msg).await;
        res?;
        msg = m;
        let (res, b) = conn.read_exact(back).await;
        res?;
        back = b;
        if back != msg {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "echo returned different bytes",
            ));
        }
        round_trips += 1;
    }
    Ok(round_trips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoll_echo_counts_round_trips() {
        let out = probe(&[IoDriver::Epoll], Duration::from_millis(30), None);
        match &out[0].outcome {
            EchoOutcome::Done {
                round_trips,
                cpu_us_per_round_trip,
                ..
            } => {
                assert!(*round_trips > 0);
                assert!(*cpu_us_per_round_trip > 0.0);
            }
            EchoOutcome::Failed { error } => panic!("{error}"),
        }
    }
}
