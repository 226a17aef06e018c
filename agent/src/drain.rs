//! Graceful shutdown of one runtime thread: GOAWAY on every tunnel connection, in-flight streams
//! finish within a bounded grace, then the thread ends. (SIGTERM starts it: `signals.rs`.)

use std::time::Instant;

use crate::worker::Worker;

/// Drains one runtime thread: no reconnects, GOAWAY everywhere, wait for the streams (at most the
/// grace period), then close what is left.
pub(crate) async fn drain(worker: &Worker) {
    worker.start_draining();
    let tunnels = worker.live_tunnels();
    tracing::info!(
        thread = worker.index,
        connections = tunnels.len(),
        in_flight = worker.in_flight(),
        "draining"
    );
    for tunnel in &tunnels {
        tunnel.go_away();
    }
    let deadline = Instant::now() + worker.config.drain_grace;
    // Each tunnel closes itself once its streams are done and its last frames are written.
    while !worker.live_tunnels().is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let tunnels = worker.live_tunnels();
            let stuck: usize = tunnels.iter().map(|t| t.active_streams()).sum();
            tracing::warn!(
                thread = worker.index,
                streams = stuck,
                "drain grace expired, closing"
            );
            for tunnel in tunnels {
                tunnel.kill();
            }
            return;
        }
        let _ = ringway_io::time::timeout(left, worker.progress()).await;
    }
    tracing::info!(thread = worker.index, "drained");
}
