//! One monoio runtime per worker thread, on io_uring or epoll, with timers.
//!
//! io_uring rings are set up with COOP_TASKRUN: on the benchmark box the default ring costs
//! ~30 % more CPU per request than monoio's epoll driver, and COOP_TASKRUN brings it level
//! (PERF-NOTES.md). With [`IoDriver::Auto`] a worker gets io_uring when a ring can be built and
//! the kernel has every operation monoio submits, else epoll; a forced [`IoDriver::Uring`] that
//! cannot be built is an error that says why.
//!
//! [`spawn_worker`] names the thread, pins it to its CPU ([`pin_current_thread`]; the pin *plan*
//! and the affinity mask are `ringway_tuning::cpu`'s), builds the runtime and runs the worker's
//! future on it. `ringway-tuning` re-exports this module for its host report, which describes
//! exactly the runtimes built here.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, Runtime, RuntimeBuilder};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::ring::{RingProbe, RingSetup};

/// The largest submission queue `io_uring_setup` accepts (IORING_MAX_ENTRIES).
pub const MAX_RING_ENTRIES: u32 = 32_768;

/// Which IO driver a worker should use (command line: `auto`, `uring`, `uring-defer`, `epoll`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum IoDriver {
    /// io_uring (COOP_TASKRUN, else a default ring) if it can be set up here, else epoll.
    #[default]
    Auto,
    /// io_uring (COOP_TASKRUN, else a default ring); an error if no ring can be built.
    Uring,
    /// io_uring with COOP_TASKRUN + SINGLE_ISSUER + DEFER_TASKRUN when the kernel has them
    /// (6.1+), else as `Uring`.
    UringDefer,
    /// monoio's legacy driver on epoll.
    Epoll,
}

impl fmt::Display for IoDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Uring => "uring",
            Self::UringDefer => "uring-defer",
            Self::Epoll => "epoll",
        })
    }
}

/// The driver a worker actually got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// io_uring.
    Uring,
    /// epoll (monoio's legacy driver).
    Epoll,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uring => "io_uring",
            Self::Epoll => "epoll",
        })
    }
}

/// How to start one worker thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    /// Thread name (shows in `top -H`, panics and logs).
    pub name: String,
    /// CPU to pin the thread to; `None` leaves it to the scheduler.
    pub cpu: Option<usize>,
    /// Requested IO driver.
    pub driver: IoDriver,
    /// io_uring submission queue size (monoio raises anything below 256 to 256); also the
    /// epoll event batch size.
    pub ring_entries: u32,
}

/// Starts a thread named `spec.name`, pins it to `spec.cpu`, builds its runtime and runs the
/// future `make(driver)` returns on it to completion; the handle yields the future's output.
///
/// Returns an error, and starts nothing, if the runtime cannot be built (for instance
/// `IoDriver::Uring` where io_uring is disabled). A CPU the thread cannot be pinned to is
/// logged as a warning and the worker runs unpinned.
pub fn spawn_worker<F, Fut>(spec: WorkerSpec, make: F) -> io::Result<JoinHandle<Fut::Output>>
where
    F: FnOnce(DriverKind) -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let (ready_tx, ready_rx) = mpsc::sync_channel::<io::Result<()>>(1);
    let name = spec.name.clone();
    let handle = thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || {
            if let Some(cpu) = spec.cpu {
                if !pin_current_thread(cpu) {
                    warn!(worker = %spec.name, cpu, "could not pin worker thread to its CPU; running unpinned");
                }
            }
            let rt = match WorkerRuntime::build(&spec.name, spec.driver, spec.ring_entries) {
                Ok(rt) => rt,
                Err(e) => {
                    // The caller gets the error through the channel; end the thread without
                    // running the panic hook, since nothing went wrong in this thread's code.
                    let _ = ready_tx.send(Err(e));
                    std::panic::resume_unwind(Box::new("worker runtime could not be built"));
                }
            };
            let _ = ready_tx.send(Ok(()));
            rt.block_on(make)
        })
        .map_err(|e| io::Error::new(e.kind(), format!("spawning worker thread {name}: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(mpsc::RecvError) => {
            let _ = handle.join();
            Err(io::Error::other(format!(
                "worker thread {name} died while setting up its runtime"
            )))
        }
    }
}

/// Builds a runtime like [`spawn_worker`] does and runs `make(driver)` on the current thread.
///
/// # Panics
/// If the runtime cannot be built; [`try_block_on`] returns that error instead.
pub fn block_on<F, Fut>(driver: IoDriver, ring_entries: u32, make: F) -> Fut::Output
where
    F: FnOnce(DriverKind) -> Fut,
    Fut: Future,
{
    match try_block_on(driver, ring_entries, make) {
        Ok(out) => out,
        Err(e) => panic!("building the {driver} runtime: {e}"),
    }
}

/// [`block_on`] that returns an error if the runtime cannot be built.
pub fn try_block_on<F, Fut>(driver: IoDriver, ring_entries: u32, make: F) -> io::Result<Fut::Output>
where
    F: FnOnce(DriverKind) -> Fut,
    Fut: Future,
{
    let name = thread::current().name().unwrap_or("block_on").to_owned();
    Ok(WorkerRuntime::build(&name, driver, ring_entries)?.block_on(make))
}

/// CPUs a `cpu_set_t` holds.
const CPU_SET_CAPACITY: usize = libc::CPU_SETSIZE as usize;

/// Pins the calling thread to `cpu`. Returns false if the kernel refused (the CPU does not
/// exist, is outside the process's affinity mask, or is beyond the 1024 CPUs a `cpu_set_t`
/// holds).
pub fn pin_current_thread(cpu: usize) -> bool {
    // core_affinity would hit libc's CPU_SET bounds assertion (an abort, in a non-unwinding
    // function) for an index past the set.
    if cpu >= CPU_SET_CAPACITY {
        return false;
    }
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

/// The driver [`IoDriver::Auto`] resolves to on this host.
pub fn auto_driver() -> DriverKind {
    if RingProbe::get().usable() {
        DriverKind::Uring
    } else {
        DriverKind::Epoll
    }
}

enum WorkerRuntime {
    Uring(Runtime<TimeDriver<IoUringDriver>>),
    Epoll(Runtime<TimeDriver<LegacyDriver>>),
}

impl WorkerRuntime {
    fn build(name: &str, driver: IoDriver, entries: u32) -> io::Result<Self> {
        let rt = match driver {
            IoDriver::Epoll => Self::epoll(entries)?,
            IoDriver::Uring | IoDriver::UringDefer => {
                let (rt, setup) = uring(entries, driver == IoDriver::UringDefer)
                    .map_err(|reason| io::Error::new(io::ErrorKind::Unsupported, format!("io_uring requested for worker {name} but no ring could be set up: {reason}")))?;
                info!(worker = name, driver = "io_uring", ring = %setup, "worker runtime ready");
                return Ok(Self::Uring(rt));
            }
            IoDriver::Auto => match uring(entries, false) {
                Ok((rt, setup)) => {
                    info!(worker = name, driver = "io_uring", ring = %setup, "worker runtime ready");
                    return Ok(Self::Uring(rt));
                }
                Err(reason) => {
                    info!(worker = name, %reason, "io_uring unavailable, using epoll");
                    Self::epoll(entries)?
                }
            },
        };
        info!(worker = name, driver = "epoll", "worker runtime ready");
        Ok(rt)
    }

    fn epoll(entries: u32) -> io::Result<Self> {
        RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .with_entries(entries)
            .build()
            .map(Self::Epoll)
            .map_err(|e| io::Error::new(e.kind(), format!("building epoll runtime: {e}")))
    }

    fn block_on<F, Fut>(self, make: F) -> Fut::Output
    where
        F: FnOnce(DriverKind) -> Fut,
        Fut: Future,
    {
        // `make` runs inside the runtime so it may already register sockets (`from_std`).
        match self {
            Self::Uring(mut rt) => rt.block_on(async move { make(DriverKind::Uring).await }),
            Self::Epoll(mut rt) => rt.block_on(async move { make(DriverKind::Epoll).await }),
        }
    }
}

/// The best io_uring runtime this kernel allows, or every reason none could be built.
fn uring(
    entries: u32,
    prefer_defer: bool,
) -> Result<(Runtime<TimeDriver<IoUringDriver>>, RingSetup), String> {
    if entries > MAX_RING_ENTRIES {
        return Err(format!(
            "ring_entries {entries} exceeds the kernel's maximum of {MAX_RING_ENTRIES}"
        ));
    }
    let probe = RingProbe::get();
    if let Some(reason) = probe.unusable_reason() {
        return Err(reason);
    }
    let mut failures = Vec::new();
    for setup in probe.candidates(prefer_defer) {
        match RuntimeBuilder::<IoUringDriver>::new()
            .enable_timer()
            .with_entries(entries)
            .uring_builder(setup.builder())
            .build()
        {
            Ok(rt) => return Ok((rt, setup)),
            Err(e) => failures.push(format!("{setup}: {e}")),
        }
    }
    Err(if failures.is_empty() {
        "no ring set-up accepted by the kernel".to_owned()
    } else {
        failures.join("; ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_round_trip() {
        use clap::ValueEnum;
        for d in IoDriver::value_variants() {
            assert_eq!(IoDriver::from_str(&d.to_string(), false).unwrap(), *d);
            let json = serde_json::to_string(d).unwrap();
            assert_eq!(serde_json::from_str::<IoDriver>(&json).unwrap(), *d);
        }
        assert_eq!(IoDriver::default(), IoDriver::Auto);
        assert_eq!(DriverKind::Uring.to_string(), "io_uring");
    }

    #[test]
    fn auto_matches_the_probe() {
        let got = block_on(IoDriver::Auto, 256, |kind| async move { kind });
        assert_eq!(got, auto_driver());
    }

    #[test]
    fn a_cpu_past_the_cpu_set_is_refused_without_aborting() {
        assert!(!pin_current_thread(CPU_SET_CAPACITY + 5));
    }

    #[test]
    fn forced_uring_errors_or_runs() {
        match try_block_on(IoDriver::Uring, 256, |kind| async move { kind }) {
            Ok(kind) => assert_eq!(kind, DriverKind::Uring),
            Err(e) => {
                assert!(!RingProbe::get().usable());
                assert!(e.to_string().contains("io_uring requested"), "{e}");
            }
        }
    }
}
