//! What other threads ask of a worker: a snapshot for the admin listener, or a drain (the
//! balancer is shutting down). One channel per worker; a task on the worker answers between
//! requests (`listener::serve_commands`), so nothing of a worker's state is ever touched from
//! another thread.

use crate::stats::WorkerSnapshot;

/// One request to a worker.
pub(crate) enum Command {
    /// Send this worker's snapshot back.
    Scrape(flume::Sender<WorkerSnapshot>),
    /// Stop accepting, finish what is in flight, close, end the worker.
    Drain,
}

/// The sending side of a worker's command channel.
pub(crate) type CommandTx = flume::Sender<Command>;
/// The worker's side.
pub(crate) type CommandRx = flume::Receiver<Command>;

/// One command channel per worker.
pub(crate) fn channels(count: usize) -> (Vec<CommandTx>, Vec<CommandRx>) {
    (0..count).map(|_| flume::bounded(16)).unzip()
}
