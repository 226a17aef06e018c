//! What other threads ask of a worker: a snapshot for the admin listener, a reload (a new
//! config, maybe new listeners; see `reload`), or a drain (the balancer is shutting down). One channel per worker; a task on the worker answers between
//! requests (`listener::serve_commands`), so nothing of a worker's state is ever touched from
//! another thread.

use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::stats::WorkerSnapshot;

/// One request to a worker.
pub(crate) enum Command {
    /// Send this worker's snapshot back.
    Scrape(flume::Sender<WorkerSnapshot>),
    /// Apply a reloaded config (`Worker::apply_config`) and answer with what it did.
    Reload(Box<WorkerReload>),
    /// Stop accepting, finish what is in flight, close, end the worker.
    Drain,
}

/// A reload as one worker gets it: everything is validated and bound already.
pub(crate) struct WorkerReload {
    pub(crate) config: Arc<Config>,
    /// This worker's socket of a new user listener group (`listen.users` or the backlog
    /// changed): accepted on from now, and the old one closes.
    pub(crate) users: Option<std::net::TcpListener>,
    /// The same for the agent listener.
    pub(crate) agents: Option<std::net::TcpListener>,
    /// `Some`: the access log changed, this is the worker's new one (`None` inside: off).
    pub(crate) access: Option<Option<AccessLog>>,
    /// The static backends as the new configuration has them.
    pub(crate) backends: Arc<crate::backends::BackendBook>,
    /// Where the worker says it is done.
    pub(crate) done: flume::Sender<WorkerReloaded>,
}

/// What one worker did for a reload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerReloaded {
    /// Agent connections sent away (their token is no longer good).
    pub(crate) agents_sent_away: usize,
}

/// The sending side of a worker's command channel.
pub(crate) type CommandTx = flume::Sender<Command>;
/// The worker's side.
pub(crate) type CommandRx = flume::Receiver<Command>;

/// One command channel per worker.
pub(crate) fn channels(count: usize) -> (Vec<CommandTx>, Vec<CommandRx>) {
    (0..count).map(|_| flume::bounded(16)).unzip()
}
