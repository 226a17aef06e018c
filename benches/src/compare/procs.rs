//! Processes the harness starts: each in a process group of its own, stopped (the whole group) when
//! its [`Guard`] is dropped — on success, on an error return, on a panic — and, through
//! [`stop_all_on_signal`], on Ctrl-C or SIGTERM.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;

/// Process groups alive now, for the signal thread; `None` once it is stopping everything (no
/// process may start after that).
static LIVE: Mutex<Option<Vec<i32>>> = Mutex::new(Some(Vec::new()));

/// A directory the signal thread removes (the run's temporary directory).
static CLEANUP: Mutex<Option<std::path::PathBuf>> = Mutex::new(None);

/// Has the signal thread remove `dir` when it ends the run.
pub fn remove_on_signal(dir: Option<std::path::PathBuf>) {
    *CLEANUP.lock().unwrap_or_else(|p| p.into_inner()) = dir;
}

/// How long a group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Whether the signal thread is stopping the run.
pub fn stopping() -> bool {
    LIVE.lock().unwrap_or_else(|p| p.into_inner()).is_none()
}

/// A started process, leader of its own process group.
#[derive(Debug)]
pub struct Guard {
    name: String,
    child: Child,
}

impl Guard {
    /// Starts `cmd` in a new process group, stdout and stderr to `log` (created).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let out =
            File::create(log).map_err(|e| format!("{name}: creating {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{name}: log {}: {e}", log.display()))?;
        // The signal mask this process blocks for its signal thread is not the child's.
        ringway_tuning::child::clear_signal_mask(&mut cmd);
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Registered under the lock, so that a signal arriving between spawn and push cannot miss it.
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        let Some(groups) = live.as_mut() else {
            return Err(format!("{name}: not started: the run is being stopped"));
        };
        let child = cmd
            .spawn()
            .map_err(|e| format!("{name}: starting {:?}: {e}", cmd.get_program()))?;
        groups.push(child.id() as i32);
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// The leader's pid (= the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process is called in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Err` with its exit status if the process has already exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("{} exited early: {status}", self.name)),
            Ok(None) => Ok(()),
            Err(e) => Err(format!("{}: waiting: {e}", self.name)),
        }
    }

    /// Stops the group now (what `drop` does).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
        let deadline = Instant::now() + GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
            }
        }
        // Whatever the leader left behind in its group (an nginx worker whose master was killed).
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        if let Some(groups) = LIVE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            groups.retain(|&g| g != pgid);
        }
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (call it first in `main`, before any thread
/// starts, so every thread inherits the mask) and starts a thread that waits for them: it kills
/// every live group (no new one can start from then on), removes the directory given to
/// [`remove_on_signal`] and exits with 130. Children start with an empty signal mask
/// ([`ringway_tuning::child::clear_signal_mask`]).
pub fn stop_all_on_signal() -> Result<(), String> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.thread_block()
        .map_err(|e| format!("blocking SIGINT/SIGTERM: {e}"))?;
    thread::Builder::new()
        .name("compare-signals".into())
        .spawn(move || {
            let signal = set.wait().ok();
            eprintln!("== {signal:?}: stopping everything this run started");
            let groups = LIVE
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            for g in &groups {
                let _ = killpg(Pid::from_raw(*g), Signal::SIGTERM);
            }
            thread::sleep(Duration::from_millis(500));
            for g in &groups {
                let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
            }
            if let Some(dir) = CLEANUP.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = std::fs::remove_dir_all(dir);
            }
            std::process::exit(130);
        })
        .map_err(|e| format!("starting the signal thread: {e}"))?;
    Ok(())
}

/// Runs `cmd` to completion (its own process group, registered like a guard, so Ctrl-C stops it
/// too), output to `log`; fails with the log's last lines if it exits non-zero or runs past `limit`.
pub fn run_to_end(name: &str, cmd: Command, log: &Path, limit: Duration) -> Result<(), String> {
    let mut guard = Guard::spawn(name, cmd, log)?;
    let deadline = Instant::now() + limit;
    loop {
        match guard.child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(format!("{name} failed ({status}): {}", tail(log, 6)));
            }
            Ok(None) if Instant::now() >= deadline => {
                return Err(format!("{name} ran past {} s; stopped", limit.as_secs()));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{name}: waiting: {e}")),
        }
    }
}

/// The last `n` lines of a file, joined with " | " (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
