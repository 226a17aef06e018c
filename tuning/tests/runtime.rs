//! Worker threads and `block_on` on each IO driver.
#![allow(clippy::unwrap_used)]

mod common;

use ringway_tuning::cpu::allowed_cpus;
use ringway_tuning::runtime::{
    block_on, spawn_worker, try_block_on, DriverKind, IoDriver, WorkerSpec,
};
use ringway_tuning::socket::listener_group;

/// The CPUs the calling thread may run on, from `/proc/thread-self/status`.
fn thread_cpus_allowed() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    line.split(':').nth(1).unwrap().trim().to_owned()
}

#[test]
fn spawn_worker_runs_the_future_pinned_and_returns_its_output() {
    let cpu = *allowed_cpus().last().unwrap();
    for (driver, expected) in common::drivers() {
        let spec = WorkerSpec {
            name: format!("pinned-{driver}"),
            cpu: Some(cpu),
            driver,
            ring_entries: 256,
        };
        let handle = spawn_worker(spec, |kind| async move {
            ringway_io::time::sleep(std::time::Duration::from_millis(5)).await;
            let name = std::thread::current().name().map(str::to_owned);
            (kind, thread_cpus_allowed(), name)
        })
        .unwrap();
        let (kind, cpus, name) = handle.join().unwrap();
        assert_eq!(kind, expected);
        assert_eq!(cpus, cpu.to_string(), "worker on {driver} not pinned");
        assert_eq!(name.as_deref(), Some(format!("pinned-{driver}").as_str()));
    }
}

#[test]
fn unpinned_worker_on_auto_gets_the_probed_driver() {
    let spec = WorkerSpec {
        name: "auto".to_owned(),
        cpu: None,
        driver: IoDriver::Auto,
        ring_entries: 0,
    };
    let kind = spawn_worker(spec, |kind| async move { kind })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(kind, ringway_tuning::runtime::auto_driver());
}

#[test]
fn block_on_echoes_over_loopback_on_each_driver() {
    for (driver, expected) in common::drivers() {
        let l = listener_group("127.0.0.1:0".parse().unwrap(), 64, 1)
            .unwrap()
            .pop()
            .unwrap();
        let addr = l.local_addr().unwrap();
        let (kind, echoed) = block_on(driver, 256, move |kind| async move {
            let l = ringway_io::net::TcpListener::from_std(l).unwrap();
            let server = ringway_io::spawn(common::echo_one(l));
            common::echo_client(addr, 50).await;
            (kind, server.await)
        });
        assert_eq!(kind, expected);
        assert_eq!(echoed, 50 * "round 0000".len(), "driver {driver}");
    }
}

#[test]
fn forced_uring_that_cannot_be_built_is_an_error_naming_why() {
    let probe = ringway_tuning::ring::RingProbe::get();
    let res = try_block_on(IoDriver::Uring, 256, |kind| async move { kind });
    if probe.usable() {
        assert_eq!(res.unwrap(), DriverKind::Uring);
    } else {
        let msg = res.unwrap_err().to_string();
        assert!(msg.contains("io_uring"), "{msg}");
        let spec = WorkerSpec {
            name: "forced".to_owned(),
            cpu: None,
            driver: IoDriver::Uring,
            ring_entries: 256,
        };
        assert!(spawn_worker(spec, |kind| async move { kind }).is_err());
    }
}

#[test]
fn an_impossible_ring_fails_forced_uring_and_falls_back_on_auto() {
    let too_big = ringway_tuning::runtime::MAX_RING_ENTRIES * 2;
    let spec = WorkerSpec {
        name: "too-big".to_owned(),
        cpu: None,
        driver: IoDriver::Uring,
        ring_entries: too_big,
    };
    let err = spawn_worker(spec, |kind| async move { kind }).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("io_uring requested for worker too-big") && msg.contains("exceeds"),
        "{msg}"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);

    let spec = WorkerSpec {
        name: "auto-too-big".to_owned(),
        cpu: None,
        driver: IoDriver::Auto,
        ring_entries: too_big,
    };
    let kind = spawn_worker(spec, |kind| async move { kind })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(kind, DriverKind::Epoll);
}

#[test]
fn a_cpu_outside_the_mask_leaves_the_worker_running_unpinned() {
    let allowed = allowed_cpus();
    let outside = allowed.last().unwrap() + 1024;
    let spec = WorkerSpec {
        name: "unpinnable".to_owned(),
        cpu: Some(outside),
        driver: IoDriver::Epoll,
        ring_entries: 256,
    };
    let cpus = spawn_worker(spec, |_| async move { thread_cpus_allowed() })
        .unwrap()
        .join()
        .unwrap();
    assert_ne!(cpus, outside.to_string());
}

/// A value handed over from another thread, with the waker stored for that thread to call.
#[derive(Default)]
struct Slot {
    value: Option<u32>,
    waker: Option<std::task::Waker>,
}

struct Receive(std::sync::Arc<std::sync::Mutex<Slot>>);

impl std::future::Future for Receive {
    type Output = u32;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<u32> {
        let mut slot = self.0.lock().unwrap();
        match slot.value.take() {
            Some(v) => std::task::Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// Longer than any wake-up on loopback should take; reaching it fails the test.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// `/proc/self/task/TID` of the calling thread.
fn thread_dir() -> std::path::PathBuf {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    let tid = link.file_name().unwrap().to_owned();
    std::path::Path::new("/proc/self/task").join(tid)
}

/// Whether the thread whose `/proc` directory is `dir` sleeps in the kernel (state `S`).
fn sleeping(dir: &std::path::Path) -> bool {
    let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
    // `tid (comm) state …`; comm may hold spaces and parentheses.
    let after_comm = &stat[stat.rfind(')').unwrap() + 1..];
    after_comm.split_whitespace().next() == Some("S")
}

/// A parked worker (blocked in epoll_wait / io_uring_enter) is woken by another thread: what the
/// balancer's connection hand-off between workers relies on, with every ring set-up.
#[test]
fn a_parked_worker_is_woken_from_another_thread() {
    for (driver, _) in common::drivers() {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Slot::default()));
        let theirs = slot.clone();
        let (dir_tx, dir_rx) = std::sync::mpsc::channel();
        let spec = WorkerSpec {
            name: format!("wake-{driver}"),
            cpu: None,
            driver,
            ring_entries: 256,
        };
        let worker = spawn_worker(spec, move |_| {
            dir_tx.send(thread_dir()).unwrap();
            Receive(theirs)
        })
        .unwrap();
        let dir = dir_rx.recv_timeout(PATIENCE).unwrap();
        // Parked: the future is pending (its waker stored) and the thread sleeps in the kernel.
        let deadline = std::time::Instant::now() + PATIENCE;
        while slot.lock().unwrap().waker.is_none() || !sleeping(&dir) {
            assert!(
                std::time::Instant::now() < deadline,
                "worker on {driver} never parked"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let waker = {
            let mut s = slot.lock().unwrap();
            s.value = Some(7);
            s.waker.take().unwrap()
        };
        waker.wake();
        let deadline = std::time::Instant::now() + PATIENCE;
        while !worker.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the wake-up from another thread never reached the worker on {driver}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(worker.join().unwrap(), 7, "driver {driver}");
    }
}
