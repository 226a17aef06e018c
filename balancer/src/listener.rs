//! A worker's main task and its accept loops: the user listener and the agent listener (each an
//! SO_REUSEPORT member of its port's group, so the kernel spreads connections over workers), the
//! agent connections other workers hand over (`handoff.rs`), the commands of other threads
//! (`control.rs`), and at the end the drain (`drain.rs`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_io::net::TcpStream;
use ringway_io::runtime::DriverKind;
use ringway_io::tunnel::TunnelSocket;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::control::{Command, CommandRx, WorkerReload, WorkerReloaded};
use crate::drain::Drain;
use crate::handoff::HandoffRx;
use crate::limits::ConnLimit;
use crate::stats::WorkerStats;
use crate::user_stream::UserStream;
use crate::worker::{Worker, WorkerSetup};
use crate::{agent_accept, client};

/// Runs a worker to completion on the current thread's runtime: builds its state, then serves
/// its listeners and hand-offs.
pub(crate) async fn run(mut setup: WorkerSetup, driver: DriverKind) {
    let span = info_span!("worker", index = setup.index);
    async move {
        info!(driver = %driver, "worker started");
        let access = setup.access.take();
        let worker = Worker::new(&setup, access);
        let WorkerSetup {
            users,
            agents,
            https,
            handoff_rx,
            commands,
            ..
        } = setup;
        let driver_name = match driver {
            DriverKind::Uring => "io_uring",
            DriverKind::Epoll => "epoll",
        };
        ringway_io::spawn(serve_commands(worker.clone(), commands, driver_name).in_current_span());
        ringway_io::spawn(receive_handoffs(worker.clone(), handoff_rx).in_current_span());
        ringway_io::spawn(
            accept_agents(
                worker.clone(),
                agents,
                worker.agent_listener.borrow().clone(),
            )
            .in_current_span(),
        );
        let ticking = worker.clone();
        // The tick also looks at the process-wide shutdown flag: a drain starts even should the
        // command sent across threads be late.
        ringway_io::spawn(async move {
            let check = || {
                if ticking.shutdown.load(std::sync::atomic::Ordering::Relaxed) {
                    ticking.drain.start();
                }
                if let Some(log) = ticking.access() {
                    log.flush();
                }
            };
            ticking.deadlines.run(check).await;
        });
        let summing = worker.clone();
        ringway_io::spawn(async move { summing.peer_log.run().await }.in_current_span());
        ringway_io::spawn(
            accept_users(worker.clone(), users, worker.user_listener.borrow().clone())
                .in_current_span(),
        );
        if let Some((listener, config)) = https {
            ringway_io::spawn(accept_https(worker.clone(), listener, config).in_current_span());
        }
        // The worker runs until it has drained (SIGTERM): then its thread ends.
        drain(&worker).await;
    }
    .instrument(span)
    .await;
}

/// Accepts user connections until the worker drains or `retire` starts (a reload moved the
/// listener); each is served on this worker. At `[limits] max_connections_per_worker` it stops
/// accepting until one of the worker's connections closes.
pub(crate) async fn accept_users(
    worker: Rc<Worker>,
    listener: std::net::TcpListener,
    retire: Rc<Drain>,
) {
    let room = Room {
        limit: &worker.conn_limit,
        stats: &worker.stats,
    };
    accept_loop(
        listener,
        "user",
        (&worker.drain, &retire),
        Some(room),
        |stream, peer| {
            let admitted = worker.conn_opened(peer.ip());
            ringway_io::spawn(client::serve(
                worker.clone(),
                UserStream::Plain(stream),
                peer,
                admitted,
            ));
        },
    )
    .await;
}

/// Accepts HTTPS connections until the worker drains, under the same bounds as the user
/// listener; each does its TLS handshake and is served on this worker.
pub(crate) async fn accept_https(
    worker: Rc<Worker>,
    listener: std::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
) {
    let room = Room {
        limit: &worker.conn_limit,
        stats: &worker.stats,
    };
    // Not moved by a reload (`listen.https` takes a restart): never retired.
    let retire = Drain::default();
    accept_loop(
        listener,
        "https",
        (&worker.drain, &retire),
        Some(room),
        |stream, peer| {
            let admitted = worker.conn_opened(peer.ip());
            ringway_io::spawn(client::serve_tls(
                worker.clone(),
                stream,
                peer,
                admitted,
                config.clone(),
            ));
        },
    )
    .await;
}

/// Accepts agent connections (until the worker drains or `retire` starts); each reads its
/// hello and stays here or moves to its worker.
pub(crate) async fn accept_agents(
    worker: Rc<Worker>,
    listener: std::net::TcpListener,
    retire: Rc<Drain>,
) {
    accept_loop(
        listener,
        "agent",
        (&worker.drain, &retire),
        None,
        |stream, peer| {
            let span = info_span!("agent", %peer);
            ringway_io::spawn(
                agent_accept::accept_new(worker.clone(), stream, peer).instrument(span),
            );
        },
    )
    .await;
}

/// Receives agent connections other workers handed to this one and serves them.
pub(crate) async fn receive_handoffs(worker: Rc<Worker>, rx: HandoffRx) {
    while let Ok(h) = rx.recv_async().await {
        match TcpStream::from_std(h.stream) {
            Ok(stream) => {
                let span = info_span!("agent", peer = %h.peer);
                let socket = TunnelSocket::attach(stream, h.tls);
                ringway_io::spawn(
                    agent_accept::accept(worker.clone(), socket, h.peer, h.received, true)
                        .instrument(span),
                );
            }
            Err(e) => {
                warn!(peer = %h.peer, error = %e, "registering a handed-off connection failed");
            }
        }
    }
}

/// The bound on a listener's open connections, and where they are counted.
struct Room<'a> {
    limit: &'a ConnLimit,
    stats: &'a WorkerStats,
}

/// A reload gave this worker new listener sockets: accept on them from now, and retire the
/// old ones the way a drain closes a listener (no new handshakes, what the accept queue holds
/// is served, then the socket closes), so that no queued connection is reset. Connections the
/// old listeners accepted are served on to their end.
pub(crate) fn replace_listeners(
    worker: &Rc<Worker>,
    users: Option<std::net::TcpListener>,
    agents: Option<std::net::TcpListener>,
) {
    if let Some(users) = users {
        let retire = Rc::new(Drain::default());
        let old = worker.user_listener.replace(retire.clone());
        ringway_io::spawn(accept_users(worker.clone(), users, retire).in_current_span());
        old.start();
    }
    if let Some(agents) = agents {
        let retire = Rc::new(Drain::default());
        let old = worker.agent_listener.replace(retire.clone());
        ringway_io::spawn(accept_agents(worker.clone(), agents, retire).in_current_span());
        old.start();
    }
}

/// Completes when the worker drains or this listener is retired.
async fn stopped(drain: &Drain, retire: &Drain) {
    ringway_io::select! {
        () = drain.wait() => {},
        () = retire.wait() => {},
    }
}

/// Registers `listener` with this worker's runtime and hands every accepted connection, with
/// Nagle off, to `serve`, until the worker drains or `retire` starts (a reload replaced the
/// listener). `which` names the listener in logs. With a `room`, no accept is pending while
/// the worker is at its bound (until the drain starts: then the queue is taken).
async fn accept_loop(
    listener: std::net::TcpListener,
    which: &'static str,
    (drain, retire): (&Drain, &Drain),
    room: Option<Room<'_>>,
    mut serve: impl FnMut(TcpStream, SocketAddr),
) {
    // A second descriptor of the same socket, kept to change its backlog when draining.
    let control = match listener.try_clone() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, listener = which, "{which} listener could not be duplicated");
            return;
        }
    };
    let listener = match ringway_io::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, listener = which, "{which} listener could not be registered");
            return;
        }
    };
    // Draining (once `drain` starts): closing a listener resets the connections in its accept
    // queue (their handshake completed, nobody accepted them yet). So the queue is first closed
    // to new handshakes (a backlog of 0: SYNs are dropped and retransmitted, to reach whoever
    // listens on the port next), what it holds is accepted and served (one request each) for
    // `ACCEPT_QUIET`, and then the socket is shut down, which ends the pending
    // accept (with an error, or with a connection that slipped in, served all the same) without
    // cancelling it: a cancelled accept could take a connection with it.
    drain.listener_opened();
    let mut draining = None;
    let mut taken = 0u32;
    let mut done = false;
    while !done {
        if let Some(Room { limit, stats }) = &room {
            if draining.is_none() && limit.is_full(stats.user_conns_open()) {
                stats.accept_paused();
                debug!(
                    listener = which,
                    open = stats.user_conns_open(),
                    "at max_connections_per_worker: accepting paused"
                );
                let resumed = limit.room(|| stats.user_conns_open());
                ringway_io::select! {
                    biased;
                    () = stopped(drain, retire) => {}
                    () = resumed => {}
                }
            }
        }
        let mut accept = std::pin::pin!(listener.accept());
        let accepted = loop {
            if let Some(until) = draining {
                let quiet = ringway_io::time::sleep_until(until);
                ringway_io::select! {
                    biased;
                    accepted = &mut accept => break accepted,
                    () = quiet => {
                        if let Err(e) = ringway_tuning::socket::shut_down_listener(&control) {
                            warn!(error = %e, listener = which, "shutting the listener down failed");
                        }
                        done = true;
                        // Should the shutdown not end it, the accept is cancelled after a while.
                        let ended = ringway_io::time::sleep(ACCEPT_QUIET * 5);
                        ringway_io::select! {
                            biased;
                            accepted = &mut accept => break accepted,
                            () = ended => break Err(std::io::ErrorKind::TimedOut.into()),
                        }
                    }
                }
            } else {
                ringway_io::select! {
                    biased;
                    accepted = &mut accept => break accepted,
                    () = stopped(drain, retire) => {
                        draining = Some(ringway_io::time::Instant::now() + ACCEPT_QUIET);
                        if let Err(e) = ringway_tuning::socket::stop_queueing(&control) {
                            warn!(error = %e, listener = which, "shrinking the accept queue failed");
                        }
                    }
                }
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                serve(stream, peer);
                taken += u32::from(draining.is_some());
            }
            Err(_) if draining.is_some() => {}
            Err(e) => accept_failed(&e, which).await,
        }
    }
    drop(listener);
    drop(control);
    drain.listener_closed();
    let reason = if drain.is_started() {
        "draining"
    } else {
        "replaced by a reload"
    };
    info!(listener = which, queued = taken, reason, "listener closed");
}

/// While draining, how long a listener keeps taking what its accept queue holds before closing.
const ACCEPT_QUIET: Duration = Duration::from_millis(20);

/// Out of descriptors or memory: back off briefly instead of spinning.
async fn accept_failed(e: &std::io::Error, which: &str) {
    warn!(error = %e, listener = which, "accept failed");
    ringway_io::time::sleep(Duration::from_millis(20)).await;
}

/// How often the drain looks whether the worker's connections are gone.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// How long agent connections get to send their GOAWAY and close.
const AGENT_CLOSE: Duration = Duration::from_secs(1);

/// Steps 2–3 of the drain, once it started (the accept loops stop by themselves): returns when
/// the worker may end.
async fn drain(worker: &Worker) {
    worker.drain.wait().await;
    // The grace of the config running when the drain starts.
    let grace = worker.timeouts().shutdown_grace;
    let started = Instant::now();
    info!(
        open = worker.stats.user_conns_open(),
        "draining: listeners closed, idle connections closing"
    );
    // Idle connections wait on coarse deadlines marked idle: end those waits now.
    worker.deadlines.wake_idle();
    // Until the listeners have emptied their queues (what they accept meanwhile is served too)
    // and every user connection is gone.
    while (worker.drain.listeners_open() > 0 || worker.stats.user_conns_open() > 0)
        && started.elapsed() < grace
    {
        ringway_io::time::sleep(DRAIN_POLL).await;
    }
    let left = worker.stats.user_conns_open();
    if left > 0 {
        info!(
            left,
            "drain grace passed; closing the connections still open"
        );
    }
    let agents = worker.go_away_agents(AGENT_CLOSE);
    let until = Instant::now() + AGENT_CLOSE;
    while agents.iter().any(|a| !a.is_closed()) && Instant::now() < until {
        ringway_io::time::sleep(DRAIN_POLL).await;
    }
    info!(
        agents = agents.len(),
        took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "drained"
    );
    if let Some(log) = worker.access() {
        log.flush();
    }
}

/// A worker's task: carries out what other threads ask (`control`) until every sender is gone.
async fn serve_commands(worker: Rc<Worker>, commands: CommandRx, driver: &'static str) {
    while let Ok(command) = commands.recv_async().await {
        match command {
            Command::Scrape(reply) => {
                let _ = reply.send(worker.snapshot(driver));
            }
            Command::Reload(reload) => {
                let WorkerReload {
                    config,
                    users,
                    agents,
                    access,
                    backends,
                    done,
                } = *reload;
                if let Some(access) = access {
                    worker.replace_access_log(access);
                }
                let agents_sent_away = worker.apply_config(config, backends);
                // Draining: the new sockets are dropped unused (nobody accepts any more).
                if !worker.drain.is_started() {
                    replace_listeners(&worker, users, agents);
                }
                let _ = done.send(WorkerReloaded { agents_sent_away });
            }
            Command::Drain => worker.drain.start(),
        }
    }
}
