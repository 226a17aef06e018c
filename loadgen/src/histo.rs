//! Latency histograms and counters: one set per thread, merged at the end.
//!
//! Every thread records into its own [`Recorder`] (no sharing, no locks); the engine merges the
//! threads' histograms with [`Latencies::add`] — percentiles are computed from the merged
//! histogram, never averaged across threads.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram can hold: one hour, in microseconds. Larger values saturate.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits, 1 µs .. 1 h.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| {
        // The bounds above are constants that hdrhistogram accepts; this is never reached.
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

/// Adds `theirs` into `mine`. Histograms of [`new_histogram`] share their bounds, so adding
/// cannot fail; it saturates value by value if it ever did.
pub fn merge(mine: &mut Histogram<u64>, theirs: &Histogram<u64>) {
    if mine.add(theirs).is_err() {
        for v in theirs.iter_recorded() {
            mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Microseconds of a duration, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The three latency views of one set of requests.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// From the intended start to the end of the response (coordinated-omission corrected).
    pub corrected: Histogram<u64>,
    /// From the moment the request was written to the end of the response.
    pub uncorrected: Histogram<u64>,
    /// How late each request was written compared to its intended start.
    pub send_lag: Histogram<u64>,
    /// Closed loop: a request is due when it is written, so its corrected and uncorrected
    /// latencies are the same number and its send-lag is 0. Only `corrected` is recorded while
    /// the run goes (one histogram update per request instead of three); [`Latencies::settle`]
    /// fills in the other two.
    closed_loop: bool,
    /// Closed loop: requests recorded since the last [`Latencies::settle`].
    unsettled: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            send_lag: new_histogram(),
            closed_loop: false,
            unsettled: 0,
        }
    }
}

impl Latencies {
    /// Histograms for a closed-loop run (see the `closed_loop` field); call [`Latencies::settle`]
    /// before reading `uncorrected` or `send_lag`.
    pub fn closed_loop() -> Self {
        Self {
            closed_loop: true,
            ..Self::default()
        }
    }

    /// Records one request.
    pub fn record(&mut self, corrected: Duration, uncorrected: Duration, send_lag: Duration) {
        self.corrected.saturating_record(micros(corrected));
        if self.closed_loop {
            debug_assert!(send_lag.is_zero() && corrected == uncorrected);
            self.unsettled += 1;
            return;
        }
        self.uncorrected.saturating_record(micros(uncorrected));
        self.send_lag.saturating_record(micros(send_lag));
    }

    /// Closed loop: makes `uncorrected` equal to `corrected` and counts a send-lag of 0 for
    /// every request recorded since the last call. Nothing to do in open loop.
    pub fn settle(&mut self) {
        if self.closed_loop && self.unsettled > 0 {
            self.uncorrected.clone_from(&self.corrected);
            self.send_lag.saturating_record_n(0, self.unsettled);
            self.unsettled = 0;
        }
    }

    /// Adds another set of histograms (merging threads, rounds or intervals); both must be
    /// settled.
    pub fn add(&mut self, other: &Self) {
        debug_assert!(self.unsettled == 0 && other.unsettled == 0);
        merge(&mut self.corrected, &other.corrected);
        merge(&mut self.uncorrected, &other.uncorrected);
        merge(&mut self.send_lag, &other.send_lag);
    }

    /// Empties all three histograms, keeping their memory.
    pub fn reset(&mut self) {
        self.corrected.reset();
        self.uncorrected.reset();
        self.send_lag.reset();
        self.unsettled = 0;
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The TCP connection could not be set up (or not in time).
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// Reading failed, or the server closed the connection before the response was complete.
    Read,
    /// Writing the request failed.
    Write,
    /// The response was not valid HTTP/1.1.
    Parse,
}

/// Errors by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// Connection set-up failures.
    pub connect: u64,
    /// Requests aborted at the timeout.
    pub timeout: u64,
    /// Read failures and early closes.
    pub read: u64,
    /// Write failures.
    pub write: u64,
    /// Malformed responses.
    pub parse: u64,
}

impl ErrorCounts {
    /// Counts one error.
    pub fn count(&mut self, class: ErrorClass) {
        match class {
            ErrorClass::Connect => self.connect += 1,
            ErrorClass::Timeout => self.timeout += 1,
            ErrorClass::Read => self.read += 1,
            ErrorClass::Write => self.write += 1,
            ErrorClass::Parse => self.parse += 1,
        }
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.read + self.write + self.parse
    }

    fn add(&mut self, o: &Self) {
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.read += o.read;
        self.write += o.write;
        self.parse += o.parse;
    }
}

/// What happened to a set of requests, besides their latency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests written to a connection.
    pub sent: u64,
    /// Complete responses received.
    pub completed: u64,
    /// Complete responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Failed requests by class (a failed connect counts once per request it was meant for).
    pub errors: ErrorCounts,
    /// TCP connections opened.
    pub connects: u64,
    /// Response bytes read.
    pub bytes_read: u64,
}

impl Tally {
    /// Counts one complete response.
    pub fn response(&mut self, status: u16) {
        self.completed += 1;
        *self.statuses.entry(status).or_insert(0) += 1;
    }

    /// Adds another tally (merging threads or rounds).
    pub fn add(&mut self, o: &Self) {
        self.sent += o.sent;
        self.completed += o.completed;
        for (status, n) in &o.statuses {
            *self.statuses.entry(*status).or_insert(0) += n;
        }
        self.errors.add(&o.errors);
        self.connects += o.connects;
        self.bytes_read += o.bytes_read;
    }
}

/// One thread's (or a merged) record of a run: measured and warm-up requests kept apart.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latencies of measured requests.
    pub latencies: Latencies,
    /// Counters of measured requests.
    pub tally: Tally,
    /// Counters of warm-up requests (their latencies are not kept).
    pub warmup: Tally,
    /// Corrected latencies since the last interval tick (measured and warm-up alike).
    pub interval: Histogram<u64>,
    /// Responses since the last interval tick.
    pub interval_completed: u64,
    /// Errors since the last interval tick.
    pub interval_errors: u64,
    /// Open loop: the pacer's timer wake-ups and spin windows.
    pub pace: crate::pacer::PaceStats,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latencies: Latencies::default(),
            tally: Tally::default(),
            warmup: Tally::default(),
            interval: new_histogram(),
            interval_completed: 0,
            interval_errors: 0,
            pace: crate::pacer::PaceStats::default(),
        }
    }
}

impl Recorder {
    /// A recorder for a closed-loop run (see [`Latencies::closed_loop`]).
    pub fn closed_loop() -> Self {
        Self {
            latencies: Latencies::closed_loop(),
            ..Self::default()
        }
    }

    /// The tally a request belongs in.
    pub fn tally_mut(&mut self, measured: bool) -> &mut Tally {
        if measured {
            &mut self.tally
        } else {
            &mut self.warmup
        }
    }

    /// Records a complete response.
    pub fn complete(&mut self, measured: bool, status: u16, lat: [Duration; 3]) {
        let [corrected, uncorrected, lag] = lat;
        self.interval.saturating_record(micros(corrected));
        self.interval_completed += 1;
        if measured {
            self.latencies.record(corrected, uncorrected, lag);
        }
        self.tally_mut(measured).response(status);
    }

    /// Records a failed request; timeouts are also recorded as latencies (at the abort time).
    pub fn fail(&mut self, measured: bool, class: ErrorClass, lat: Option<[Duration; 3]>) {
        self.interval_errors += 1;
        if let Some([corrected, uncorrected, lag]) = lat {
            self.interval.saturating_record(micros(corrected));
            if measured {
                self.latencies.record(corrected, uncorrected, lag);
            }
        }
        self.tally_mut(measured).errors.count(class);
    }

    /// Merges another thread's recorder (interval fields are left alone).
    pub fn add(&mut self, o: &Self) {
        self.latencies.add(&o.latencies);
        self.tally.add(&o.tally);
        self.warmup.add(&o.warmup);
        self.pace.add(&o.pace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_percentiles_come_from_all_samples() {
        // Thread a: 99 fast requests; thread b: 1 slow one. Averaging the threads' p99 would say
        // (10 + 1000) / 2; the merged histogram knows that 99 of 100 requests took 10 µs.
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        let fast = Duration::from_micros(10);
        let slow = Duration::from_millis(1);
        for _ in 0..99 {
            a.complete(true, 200, [fast, fast, Duration::ZERO]);
        }
        b.complete(true, 200, [slow, slow, Duration::ZERO]);
        a.add(&b);
        assert_eq!(a.tally.completed, 100);
        assert_eq!(a.latencies.corrected.value_at_quantile(0.99), 10);
        assert_eq!(
            a.latencies.corrected.max(),
            a.latencies.corrected.highest_equivalent(1000)
        );
    }

    #[test]
    fn closed_loop_histograms_settle_to_what_recording_all_three_gives() {
        let mut open = Latencies::default();
        let mut closed = Latencies::closed_loop();
        for us in [3, 40, 40, 900, 12_000] {
            let d = Duration::from_micros(us);
            open.record(d, d, Duration::ZERO);
            closed.record(d, d, Duration::ZERO);
        }
        assert_eq!(
            closed.uncorrected.len(),
            0,
            "only corrected is recorded while running"
        );
        closed.settle();
        closed.settle(); // a second settle adds nothing
        for (a, b) in [
            (&open.corrected, &closed.corrected),
            (&open.uncorrected, &closed.uncorrected),
            (&open.send_lag, &closed.send_lag),
        ] {
            assert_eq!(a.len(), b.len());
            assert_eq!(a.max(), b.max());
            assert_eq!(a.value_at_quantile(0.5), b.value_at_quantile(0.5));
        }
    }

    #[test]
    fn warmup_is_counted_apart_and_not_recorded() {
        let mut r = Recorder::default();
        r.complete(false, 200, [Duration::from_millis(5); 3]);
        r.fail(true, ErrorClass::Timeout, Some([Duration::from_secs(1); 3]));
        assert_eq!(r.warmup.completed, 1);
        assert_eq!(r.tally.completed, 0);
        assert_eq!(r.tally.errors.timeout, 1);
        assert_eq!(r.latencies.corrected.len(), 1);
        assert_eq!(r.interval.len(), 2);
    }
}
