//! Which io_uring rings this kernel lets us set up.
//!
//! A ring can be missing for several reasons: a kernel built without it, `kernel.io_uring_disabled`
//! (1: only root or `kernel.io_uring_group`, 2: nobody), a seccomp filter (containers return
//! ENOSYS or EPERM), or a kernel too old for a set-up flag (EINVAL). The probe tries each set-up
//! once per process and keeps the answer with the reason.

use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

/// How a ring is set up, from the most to the least tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RingSetup {
    /// COOP_TASKRUN + SINGLE_ISSUER + DEFER_TASKRUN (kernel 6.1+): completions are run only
    /// when the worker asks for them.
    DeferTaskrun,
    /// COOP_TASKRUN (kernel 5.19+): no inter-processor interrupt per completion. On the
    /// benchmark box this makes the ring as cheap per request as epoll (PERF-NOTES.md).
    CoopTaskrun,
    /// No flags: the kernel's default ring, ~30 % more CPU per request than epoll here.
    Plain,
}

impl RingSetup {
    /// Applies the set-up flags to an `io_uring` builder (the io-uring version monoio uses).
    pub fn builder(self) -> io_uring::Builder {
        let mut b = io_uring::IoUring::builder();
        match self {
            Self::DeferTaskrun => {
                b.setup_coop_taskrun()
                    .setup_single_issuer()
                    .setup_defer_taskrun();
            }
            Self::CoopTaskrun => {
                b.setup_coop_taskrun();
            }
            Self::Plain => {}
        }
        b
    }
}

impl fmt::Display for RingSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeferTaskrun => "COOP_TASKRUN+SINGLE_ISSUER+DEFER_TASKRUN",
            Self::CoopTaskrun => "COOP_TASKRUN",
            Self::Plain => "default ring",
        })
    }
}

/// Whether one set-up worked, and the kernel's answer if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupResult {
    /// A ring with these flags was created.
    pub ok: bool,
    /// The error (errno text) when it was not.
    pub error: Option<String>,
}

/// What the kernel allows, probed once per process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingProbe {
    /// `kernel.io_uring_disabled` (0 allowed, 1 privileged only, 2 off), if the sysctl exists.
    pub disabled_sysctl: Option<u8>,
    /// A plain ring.
    pub plain: SetupResult,
    /// COOP_TASKRUN.
    pub coop_taskrun: SetupResult,
    /// COOP_TASKRUN + SINGLE_ISSUER.
    pub single_issuer: SetupResult,
    /// COOP_TASKRUN + SINGLE_ISSUER + DEFER_TASKRUN.
    pub defer_taskrun: SetupResult,
    /// Operations monoio submits that this kernel does not support (empty = all there).
    pub missing_ops: Vec<&'static str>,
}

impl RingProbe {
    /// The probe for this process (run on first use).
    pub fn get() -> &'static Self {
        static PROBE: OnceLock<RingProbe> = OnceLock::new();
        PROBE.get_or_init(Self::run)
    }

    /// True if monoio's io_uring driver can work here: a ring can be built and every operation
    /// monoio uses is supported.
    pub fn usable(&self) -> bool {
        self.plain.ok && self.missing_ops.is_empty()
    }

    /// Why the io_uring driver cannot be used, if it cannot.
    pub fn unusable_reason(&self) -> Option<String> {
        if !self.plain.ok {
            let err = self.plain.error.as_deref().unwrap_or("unknown error");
            return Some(match self.disabled_sysctl {
                Some(v @ 1..) => {
                    format!("io_uring_setup failed ({err}); kernel.io_uring_disabled = {v}")
                }
                _ => format!(
                    "io_uring_setup failed ({err}); kernel without io_uring or a seccomp filter"
                ),
            });
        }
        (!self.missing_ops.is_empty()).then(|| {
            format!(
                "kernel lacks io_uring ops monoio needs: {}",
                self.missing_ops.join(", ")
            )
        })
    }

    /// The set-ups worth trying, best first: `prefer_defer` adds DEFER_TASKRUN in front.
    pub fn candidates(&self, prefer_defer: bool) -> Vec<RingSetup> {
        let mut out = Vec::with_capacity(3);
        if prefer_defer && self.defer_taskrun.ok {
            out.push(RingSetup::DeferTaskrun);
        }
        if self.coop_taskrun.ok {
            out.push(RingSetup::CoopTaskrun);
        }
        if self.plain.ok {
            out.push(RingSetup::Plain);
        }
        out
    }

    fn run() -> Self {
        let mut single = io_uring::IoUring::builder();
        single.setup_coop_taskrun().setup_single_issuer();
        let plain_ring = io_uring::IoUring::new(8);
        let missing_ops = match &plain_ring {
            Ok(ring) => missing_ops(ring),
            Err(_) => Vec::new(),
        };
        Self {
            disabled_sysctl: read_disabled_sysctl(),
            plain: result(plain_ring.map(drop)),
            coop_taskrun: try_setup(&RingSetup::CoopTaskrun.builder()),
            single_issuer: try_setup(&single),
            defer_taskrun: try_setup(&RingSetup::DeferTaskrun.builder()),
            missing_ops,
        }
    }
}

fn try_setup(b: &io_uring::Builder) -> SetupResult {
    result(b.build(8).map(drop))
}

fn result(r: std::io::Result<()>) -> SetupResult {
    match r {
        Ok(()) => SetupResult {
            ok: true,
            error: None,
        },
        Err(e) => SetupResult {
            ok: false,
            error: Some(e.to_string()),
        },
    }
}

fn read_disabled_sysctl() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The opcodes monoio 0.2 submits (its own `detect_uring` list), by name.
fn missing_ops(ring: &io_uring::IoUring) -> Vec<&'static str> {
    use io_uring::opcode::{
        Accept, AsyncCancel, Close, Connect, Fsync, OpenAt, PollAdd, ProvideBuffers, Read, Readv,
        Recv, RecvMsg, Send, SendMsg, Timeout, Write, Writev,
    };
    const USED: [(u8, &str); 17] = [
        (Accept::CODE, "accept"),
        (AsyncCancel::CODE, "async_cancel"),
        (Close::CODE, "close"),
        (Connect::CODE, "connect"),
        (Fsync::CODE, "fsync"),
        (OpenAt::CODE, "openat"),
        (PollAdd::CODE, "poll_add"),
        (ProvideBuffers::CODE, "provide_buffers"),
        (Read::CODE, "read"),
        (Readv::CODE, "readv"),
        (Recv::CODE, "recv"),
        (Send::CODE, "send"),
        (SendMsg::CODE, "sendmsg"),
        (RecvMsg::CODE, "recvmsg"),
        (Timeout::CODE, "timeout"),
        (Write::CODE, "write"),
        (Writev::CODE, "writev"),
    ];
    let mut probe = io_uring::Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return vec!["(IORING_REGISTER_PROBE failed)"];
    }
    USED.iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_is_consistent() {
        let p = RingProbe::get();
        // Flags can only narrow what the kernel accepts.
        if p.coop_taskrun.ok {
            assert!(p.plain.ok);
        }
        if p.defer_taskrun.ok {
            assert!(p.single_issuer.ok && p.coop_taskrun.ok);
        }
        assert_eq!(p.usable(), p.unusable_reason().is_none());
        let c = p.candidates(true);
        assert_eq!(c.contains(&RingSetup::Plain), p.plain.ok);
        assert!(p
            .candidates(false)
            .iter()
            .all(|s| *s != RingSetup::DeferTaskrun));
    }

    #[test]
    fn setup_names() {
        assert_eq!(RingSetup::CoopTaskrun.to_string(), "COOP_TASKRUN");
        assert_eq!(
            serde_json::to_string(&RingSetup::DeferTaskrun).unwrap(),
            "\"defer-taskrun\""
        );
    }
}
