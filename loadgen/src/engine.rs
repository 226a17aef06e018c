//! The engine: runs one phase (one target, one rate, warm-up + measured duration) on pinned
//! thread-per-core runtimes, collects per-interval samples while it runs and merges the threads'
//! recorders when it ends.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use ringway_io::runtime::{spawn_worker, DriverKind, WorkerSpec};

use crate::config::{RunConfig, Target};
use crate::conn::{run_connection, ConnSpec, Phase};
use crate::cpu::CpuWatch;
use crate::dispatch::{run_pacer, Dispatch};
use crate::histo::{new_histogram, Recorder};
use crate::pacer::{Pacer, Spin};
use crate::progress::Progress;
use crate::schedule::Schedule;

/// A failure of the engine itself (not of requests: those are counted).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A worker thread or its runtime could not be started.
    #[error("starting load thread {index}: {source}")]
    Spawn {
        /// Which thread.
        index: usize,
        /// Why.
        source: std::io::Error,
    },
    /// A worker thread panicked.
    #[error("load thread {0} panicked")]
    Panicked(usize),
}

/// What to run in one phase.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSpec<'a> {
    /// The target.
    pub target: &'a Target,
    /// Watched process of this target, if any.
    pub watch_pid: Option<u32>,
    /// Open-loop rate (None = closed loop).
    pub rate: Option<f64>,
    /// Unrecorded warm-up.
    pub warmup: Duration,
    /// Measured duration.
    pub duration: Duration,
}

/// One interval of a phase, all threads merged.
#[derive(Debug, Clone)]
pub struct IntervalSample {
    /// Offset of the interval's start from the phase start (warm-up included).
    pub start: Duration,
    /// Length of the interval.
    pub length: Duration,
    /// Whether the interval lies in the warm-up.
    pub warmup: bool,
    /// Responses completed in it.
    pub completed: u64,
    /// Errors in it.
    pub errors: u64,
    /// Corrected latencies of the requests completed in it.
    pub corrected: Histogram<u64>,
}

/// The outcome of one phase.
#[derive(Debug, Clone)]
pub struct PhaseOutcome {
    /// All threads' recorders merged.
    pub rec: Recorder,
    /// Per-interval samples in order.
    pub intervals: Vec<IntervalSample>,
    /// The measured window's length.
    pub measured: Duration,
    /// CPU time of the watched process over the measured window (and the drain after it).
    pub cpu: Option<Result<Duration, String>>,
    /// IO driver the threads got.
    pub driver: DriverKind,
    /// When the phase started (wall clock), for interval logs.
    pub started_at: std::time::SystemTime,
}

/// What a load thread tells the main thread while it runs.
enum ThreadMsg {
    /// An interval's sample.
    Sample(ThreadSample),
    /// The thread's connections are all done; no more samples follow.
    Done,
}

/// An interval's sample from one thread.
struct ThreadSample {
    index: u32,
    /// Offset from the phase start where the sample ends (a tick, or the thread's end).
    end: Duration,
    completed: u64,
    errors: u64,
    corrected: Histogram<u64>,
}

/// Runs one phase and returns its merged outcome.
pub fn run_phase(
    cfg: &RunConfig,
    spec: PhaseSpec<'_>,
    progress: &mut Progress,
) -> Result<PhaseOutcome, EngineError> {
    // Threads need a moment to start and connect; the schedule starts after that so the first
    // intended starts are not already late because of thread start-up.
    let start = Instant::now() + Duration::from_millis(20);
    let phase = Phase {
        start,
        warmup_end: start + spec.warmup,
        end: start + spec.warmup + spec.duration,
    };
    let started_at = std::time::SystemTime::now() + Duration::from_millis(20);
    let (tx, rx) = mpsc::channel::<ThreadMsg>();
    let mut handles = Vec::with_capacity(cfg.threads);
    let per_thread = cfg.connections.div_ceil(cfg.threads);
    for t in 0..cfg.threads {
        let conns: Vec<ConnSpec> = (t..cfg.connections)
            .step_by(cfg.threads)
            .map(|_| ConnSpec {
                addr: spec.target.addr,
                tls: spec.target.tls.clone(),
                request: spec.target.request.clone(),
                method: Bytes::copy_from_slice(cfg.method.as_bytes()),
                timeout: cfg.timeout,
                depth: cfg.pipeline,
                phase,
            })
            .collect();
        // Open loop: this thread's share of the rate, one schedule for all its connections, and
        // the mean gap between its due times (for the pacer's spin window).
        let schedule = spec.rate.map(|rate| OpenLoop {
            schedule: Schedule::new(cfg.arrivals, rate, cfg.threads, t, cfg.seed),
            spin: cfg.spin,
            mean_gap: Duration::try_from_secs_f64(cfg.threads as f64 / rate).ok(),
        });
        let worker = WorkerSpec {
            name: format!("loadgen-{t}"),
            cpu: cfg.cpus.get(t).copied(),
            driver: cfg.io_driver,
            ring_entries: u32::try_from((per_thread * cfg.pipeline * 2).clamp(256, 4096))
                .unwrap_or(4096),
        };
        let tx = tx.clone();
        let interval = cfg.interval;
        let handle = spawn_worker(worker, move |driver| {
            thread_main(driver, conns, schedule, phase, interval, tx)
        })
        .map_err(|source| EngineError::Spawn { index: t, source })?;
        handles.push(handle);
    }
    drop(tx);

    let mut cpu_watch = None;
    let mut cpu_error = None;
    let mut start_cpu_watch = |watch: &mut Option<CpuWatch>| {
        if let Some(pid) = spec.watch_pid {
            match CpuWatch::start(pid) {
                Ok(w) => *watch = Some(w),
                Err(e) => cpu_error = Some(e),
            }
        }
    };
    if spec.warmup.is_zero() {
        start_cpu_watch(&mut cpu_watch);
    }
    let mut pending: BTreeMap<u32, (usize, ThreadSample)> = BTreeMap::new();
    let mut intervals = Vec::new();
    // Intervals are bounded by when the ticks actually fired (a late tick makes a longer
    // interval, not a wrong rate); each starts where the previous one ended.
    let mut last_end = Duration::ZERO;
    let mut finish = |index: u32,
                      sample: ThreadSample,
                      intervals: &mut Vec<IntervalSample>,
                      progress: &mut Progress| {
        let start = last_end;
        let end = sample.end.max(start + Duration::from_micros(1));
        last_end = end;
        let s = IntervalSample {
            start,
            length: end - start,
            // By the nominal tick: a tick fired a little late still ends the warm-up.
            warmup: cfg.interval * (index + 1) <= spec.warmup,
            completed: sample.completed,
            errors: sample.errors,
            corrected: sample.corrected,
        };
        progress.interval(&s, spec.warmup + spec.duration);
        intervals.push(s);
    };
    let mut warm = spec.warmup.is_zero();
    let mut done = 0;
    while done < cfg.threads {
        let msg = rx.recv_timeout(Duration::from_millis(50));
        if !warm && Instant::now() >= phase.warmup_end {
            warm = true;
            start_cpu_watch(&mut cpu_watch);
        }
        let sample = match msg {
            Ok(ThreadMsg::Sample(s)) => s,
            Ok(ThreadMsg::Done) => {
                done += 1;
                continue;
            }
            // A thread that panicked never says Done: stop waiting once every thread is gone.
            Err(mpsc::RecvTimeoutError::Timeout) if handles.iter().all(|h| h.is_finished()) => {
                break
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let index = sample.index;
        let entry = pending.entry(index).or_insert_with(|| {
            (
                0,
                ThreadSample {
                    index,
                    end: Duration::ZERO,
                    completed: 0,
                    errors: 0,
                    corrected: new_histogram(),
                },
            )
        });
        entry.0 += 1;
        entry.1.end = entry.1.end.max(sample.end);
        entry.1.completed += sample.completed;
        entry.1.errors += sample.errors;
        let _ = entry.1.corrected.add(&sample.corrected);
        if entry.0 == cfg.threads {
            if let Some((_, merged)) = pending.remove(&index) {
                finish(index, merged, &mut intervals, progress);
            }
        }
    }
    for (index, (_, merged)) in std::mem::take(&mut pending) {
        finish(index, merged, &mut intervals, progress);
    }
    intervals.sort_by_key(|s| s.start);

    let mut rec = Recorder::default();
    let mut driver = DriverKind::Epoll;
    for (t, h) in handles.into_iter().enumerate() {
        let (d, r) = h.join().map_err(|_| EngineError::Panicked(t))?;
        driver = d;
        rec.add(&r);
    }
    let cpu = match (cpu_watch, cpu_error) {
        (Some(w), _) => Some(w.stop()),
        (None, Some(e)) => Some(Err(e)),
        (None, None) => None,
    };
    Ok(PhaseOutcome {
        rec,
        intervals,
        measured: spec.duration,
        cpu,
        driver,
        started_at,
    })
}

/// What an open-loop load thread paces by.
struct OpenLoop {
    schedule: Schedule,
    /// `--spin-us`.
    spin: Spin,
    /// The mean gap between the thread's due times.
    mean_gap: Option<Duration>,
}

/// One load thread: runs its connections (and, in open loop, the pacer that hands them their
/// requests) and a ticker that reports an interval sample each `interval`; returns its recorder
/// once every connection is done.
async fn thread_main(
    driver: DriverKind,
    conns: Vec<ConnSpec>,
    schedule: Option<OpenLoop>,
    phase: Phase,
    interval: Duration,
    tx: mpsc::Sender<ThreadMsg>,
) -> (DriverKind, Recorder) {
    let rec = Rc::new(RefCell::new(if schedule.is_some() {
        Recorder::default()
    } else {
        Recorder::closed_loop()
    }));
    let mut pacer_stats = None;
    let dispatch = schedule.map(|open| {
        let (pacer, failed) = Pacer::new(open.spin, open.mean_gap);
        pacer_stats = Some(pacer.clone());
        if let Some(why) = failed {
            eprintln!(
                "WARNING: ringway-loadgen: load thread: {why}; the schedule runs on the \
                 runtime's 1 ms timer and the send-lag will show it"
            );
        }
        let dispatch = Dispatch::new(open.schedule, phase, conns.len());
        ringway_io::spawn(run_pacer(dispatch.clone(), pacer));
        dispatch
    });
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let seat = dispatch.as_ref().map(|d| d.seat(i));
            ringway_io::spawn(run_connection(c, seat, rec.clone()))
        })
        .collect();
    let ticker_rec = rec.clone();
    let ticker_tx = tx.clone();
    // Index of the next interval the ticker will report; the final sample takes it over.
    let next_index = Rc::new(Cell::new(0u32));
    let ticker_next = next_index.clone();
    let ticker = ringway_io::spawn(async move {
        loop {
            let index = ticker_next.get();
            let tick = phase.start + interval * (index + 1);
            ringway_io::time::sleep_until(ringway_io::time::Instant::from_std(tick)).await;
            let fired = Instant::now().saturating_duration_since(phase.start);
            send_sample(&ticker_rec, &ticker_tx, index, fired);
            ticker_next.set(index + 1);
        }
    });
    for task in tasks {
        task.await;
    }
    drop(ticker);
    // The last, partial interval: from the last tick reported to now.
    let elapsed = Instant::now().saturating_duration_since(phase.start);
    let index = next_index.get();
    send_sample(&rec, &tx, index, elapsed);
    // monoio does not drop the tasks left on a runtime (the ticker and its sender), so the end
    // is said explicitly.
    let _ = tx.send(ThreadMsg::Done);
    let mut out = rec.borrow().clone();
    out.latencies.settle();
    if let Some(p) = pacer_stats {
        out.pace = p.stats();
    }
    (driver, out)
}

fn send_sample(rec: &RefCell<Recorder>, tx: &mpsc::Sender<ThreadMsg>, index: u32, end: Duration) {
    let mut r = rec.borrow_mut();
    let sample = ThreadSample {
        index,
        end,
        completed: std::mem::take(&mut r.interval_completed),
        errors: std::mem::take(&mut r.interval_errors),
        corrected: r.interval.clone(),
    };
    r.interval.reset();
    drop(r);
    // The main thread only stops listening once every thread is done.
    let _ = tx.send(ThreadMsg::Sample(sample));
}
