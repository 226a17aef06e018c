//! Turning host facts into findings: each says what was read, whether it is fine for ringway,
//! and if not, the exact command that fixes it.

use serde::Serialize;

use super::host::HostFacts;
use crate::ring::RingProbe;

/// How a finding reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine as it is.
    Ok,
    /// Worth knowing; nothing to change for the usual set-up.
    Info,
    /// Limits ringway or skews benchmarks: apply `command`.
    Warn,
}

/// One checked setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The setting, named as the kernel or tool names it (`net.core.somaxconn`).
    pub check: &'static str,
    /// What was read (`unreadable` when it could not be).
    pub value: String,
    /// Verdict.
    pub status: Status,
    /// Why it matters to ringway, and what to do.
    pub recommendation: String,
    /// The command that applies the recommendation, when there is one.
    pub command: Option<String>,
}

/// The somaxconn / SYN backlog ringway's listeners want (its default accept backlog).
pub const WANTED_BACKLOG: u64 = 4096;
/// Open files below which a busy balancer runs out (clients + agents + spare).
pub const WANTED_NOFILE: u64 = 65_536;
/// Ephemeral port span below which a load generator churning connections runs short.
pub const WANTED_PORT_SPAN: u64 = 28_000;
/// Socket buffer cap wanted for explicitly sized buffers (4 MiB).
pub const WANTED_BUF_MAX: u64 = 4 << 20;

/// Every finding for `facts`, in report order.
pub fn findings(facts: &HostFacts) -> Vec<Finding> {
    let mut out = vec![cpus(facts)];
    out.extend(io_uring(&facts.io_uring.probe));
    let net = &facts.net;
    out.push(at_least(
        "net.core.somaxconn",
        net.somaxconn,
        WANTED_BACKLOG,
        "caps every listen() backlog; below 4096 bursts of new connections are dropped (SYN retries of 1 s and more)",
    ));
    out.push(at_least(
        "net.ipv4.tcp_max_syn_backlog",
        net.tcp_max_syn_backlog,
        WANTED_BACKLOG,
        "half-open connections per listener; with SYN cookies the rest still connect but lose TCP options",
    ));
    out.push(port_range(net.ip_local_port_range));
    out.push(tw_reuse(net.tcp_tw_reuse));
    out.push(buf_max("net.core.rmem_max", net.rmem_max));
    out.push(buf_max("net.core.wmem_max", net.wmem_max));
    out.push(nofile(facts));
    out.push(hugepages(facts.transparent_hugepages.as_deref()));
    out.push(governor(&facts.cpu_governors));
    out
}

fn finding(
    check: &'static str,
    value: impl Into<String>,
    status: Status,
    recommendation: impl Into<String>,
    command: Option<String>,
) -> Finding {
    Finding {
        check,
        value: value.into(),
        status,
        recommendation: recommendation.into(),
        command,
    }
}

fn unreadable(check: &'static str) -> Finding {
    finding(
        check,
        "unreadable",
        Status::Info,
        "not exposed on this host (container or VM); nothing to check",
        None,
    )
}

fn cpus(facts: &HostFacts) -> Finding {
    let c = &facts.cpu;
    let value = format!(
        "{} online, allowed {} (mask {})",
        c.online, c.allowed_list, c.affinity_mask
    );
    if c.allowed.len() < 2 {
        return finding("cpus", value, Status::Warn, "one CPU: balancer, backends and load generator share it, so benchmark figures are not comparable; give the process more CPUs", Some("taskset -c 0-1 <command>".to_owned()));
    }
    if c.allowed.len() < c.online {
        return finding("cpus", value, Status::Info, format!("the process may use {} of {} CPUs (taskset or cgroup cpuset); ringway starts one worker per allowed CPU", c.allowed.len(), c.online), None);
    }
    finding(
        "cpus",
        value,
        Status::Ok,
        "one worker per allowed CPU; see --pin-plan for where load generators go",
        None,
    )
}

fn io_uring(p: &RingProbe) -> Vec<Finding> {
    let mut out = Vec::with_capacity(3);
    out.push(match p.disabled_sysctl {
        None => finding(
            "kernel.io_uring_disabled",
            "absent",
            Status::Ok,
            "kernel predates the switch (before 6.6): io_uring is not disabled by sysctl",
            None,
        ),
        Some(0) => finding(
            "kernel.io_uring_disabled",
            "0",
            Status::Ok,
            "io_uring allowed for every process",
            None,
        ),
        Some(v) => finding(
            "kernel.io_uring_disabled",
            v.to_string(),
            if p.plain.ok {
                Status::Info
            } else {
                Status::Warn
            },
            if v == 1 {
                "io_uring only for root or kernel.io_uring_group members; others fall back to epoll"
            } else {
                "io_uring disabled for everyone: ringway runs on epoll"
            },
            Some("sysctl -w kernel.io_uring_disabled=0".to_owned()),
        ),
    });
    let ring = if let Some(reason) = p.unusable_reason() {
        finding(
            "io_uring ring",
            "unavailable",
            Status::Warn,
            format!("{reason}; --io-driver auto uses epoll, --io-driver uring fails"),
            None,
        )
    } else if p.coop_taskrun.ok {
        finding("io_uring ring", "COOP_TASKRUN", Status::Ok, "workers get io_uring set up with COOP_TASKRUN (as cheap per request as epoll on the benchmark box)", None)
    } else {
        let err = p.coop_taskrun.error.as_deref().unwrap_or("refused");
        finding(
            "io_uring ring",
            "default ring only",
            Status::Warn,
            format!("COOP_TASKRUN refused ({err}; needs kernel 5.19+): the default ring costs ~30 % more CPU per request than epoll here; run with --io-driver epoll or upgrade the kernel"),
            Some("ringway-balancer --io-driver epoll ...".to_owned()),
        )
    };
    out.push(ring);
    out.push(if p.defer_taskrun.ok {
        finding("io_uring DEFER_TASKRUN", "available", Status::Info, "SINGLE_ISSUER + DEFER_TASKRUN can be set up: try --io-driver uring-defer and compare CPU per request", None)
    } else {
        let err = p.defer_taskrun.error.as_deref().unwrap_or("refused");
        finding("io_uring DEFER_TASKRUN", "unavailable", Status::Info, format!("refused ({err}; needs kernel 6.1+); --io-driver uring-defer falls back to COOP_TASKRUN"), None)
    });
    out
}

fn at_least(check: &'static str, value: Option<u64>, want: u64, why: &str) -> Finding {
    match value {
        None => unreadable(check),
        Some(v) if v >= want => finding(
            check,
            v.to_string(),
            Status::Ok,
            format!("≥ {want}: {why}"),
            None,
        ),
        Some(v) => finding(
            check,
            v.to_string(),
            Status::Warn,
            format!("raise to ≥ {want}: {why}"),
            Some(format!("sysctl -w {check}={want}")),
        ),
    }
}

fn port_range(range: Option<[u64; 2]>) -> Finding {
    const CHECK: &str = "net.ipv4.ip_local_port_range";
    let Some([lo, hi]) = range else {
        return unreadable(CHECK);
    };
    let span = hi.saturating_sub(lo) + 1;
    let value = format!("{lo} {hi} ({span} ports)");
    let command = Some(format!("sysctl -w {CHECK}=\"1024 65535\""));
    if span >= WANTED_PORT_SPAN {
        finding(CHECK, value, Status::Ok, "enough ephemeral ports for a load generator or agent to one address; widen for benchmarks that open and close connections at a high rate", None)
    } else {
        finding(CHECK, value, Status::Warn, "few ephemeral ports: a load generator churning connections to one balancer address runs out (EADDRNOTAVAIL)", command)
    }
}

fn tw_reuse(value: Option<u64>) -> Finding {
    const CHECK: &str = "net.ipv4.tcp_tw_reuse";
    let command = Some(format!("sysctl -w {CHECK}=1"));
    match value {
        None => unreadable(CHECK),
        Some(1) => finding(CHECK, "1", Status::Ok, "outgoing connections may reuse TIME_WAIT ports", None),
        Some(2) => finding(CHECK, "2", Status::Info, "TIME_WAIT reuse on loopback only (the default): fine for loopback benchmarks; set 1 where agents or load generators dial over a network and reconnect often", command),
        Some(v) => finding(CHECK, v.to_string(), Status::Warn, "no TIME_WAIT reuse: short-lived outgoing connections (non-keep-alive load, agent reconnects) exhaust ephemeral ports", command),
    }
}

fn buf_max(check: &'static str, value: Option<u64>) -> Finding {
    match value {
        None => unreadable(check),
        Some(v) if v >= WANTED_BUF_MAX => finding(check, v.to_string(), Status::Ok, "caps SO_RCVBUF/SO_SNDBUF set explicitly; ringway leaves buffers to TCP autotuning (net.ipv4.tcp_rmem / tcp_wmem)", None),
        Some(v) => finding(
            check,
            v.to_string(),
            Status::Info,
            "caps explicitly sized socket buffers only; ringway uses autotuning, but tools that set SO_RCVBUF/SO_SNDBUF (load generators, iperf) are limited to this",
            Some(format!("sysctl -w {check}={}", 16u64 << 20)),
        ),
    }
}

fn nofile(facts: &HostFacts) -> Finding {
    const CHECK: &str = "RLIMIT_NOFILE";
    let Some(lim) = facts.rlimit_nofile else {
        return unreadable(CHECK);
    };
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
    let value = format!("soft {} hard {}", show(lim.soft), show(lim.hard));
    if lim.soft.is_none_or(|s| s >= WANTED_NOFILE) {
        return finding(
            CHECK,
            value,
            Status::Ok,
            "room for tens of thousands of connections (one descriptor each)",
            None,
        );
    }
    let (why, command) = if lim.hard.is_none_or(|h| h >= WANTED_NOFILE) {
        (
            "soft limit too low for many connections; raise it in the shell that starts ringway",
            format!("ulimit -n {WANTED_NOFILE}"),
        )
    } else {
        ("hard limit too low for many connections; raise it as root (or LimitNOFILE= in the systemd unit)", format!("ulimit -Hn {WANTED_NOFILE} && ulimit -n {WANTED_NOFILE}"))
    };
    finding(CHECK, value, Status::Warn, why, Some(command))
}

fn hugepages(value: Option<&str>) -> Finding {
    const CHECK: &str = "transparent_hugepage";
    match value {
        None => unreadable(CHECK),
        Some("always") => finding(
            CHECK,
            "always",
            Status::Warn,
            "huge pages for every mapping: compaction stalls show up as tail-latency spikes; let programs opt in",
            Some("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled".to_owned()),
        ),
        Some(v) => finding(CHECK, v, Status::Ok, "no forced huge pages: no compaction stalls in the request path", None),
    }
}

fn governor(governors: &[String]) -> Finding {
    const CHECK: &str = "cpu frequency governor";
    match governors {
        [] => finding(CHECK, "not exposed", Status::Info, "no cpufreq here (VM or container): the host sets clock speed; repeat runs and compare side by side", None),
        [g] if g == "performance" => finding(CHECK, "performance", Status::Ok, "CPUs run at full clock: stable latency figures", None),
        _ => finding(
            CHECK,
            governors.join(","),
            Status::Warn,
            "clock scaling changes latency and CPU-per-request figures between runs; pin the governor for benchmarks",
            Some("cpupower frequency-set -g performance".to_owned()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::NofileLimit;
    use crate::report::host::{CpuFacts, IoUringFacts, NetFacts};
    use crate::ring::SetupResult;
    use crate::runtime::DriverKind;

    fn refused(error: &str) -> SetupResult {
        SetupResult {
            ok: false,
            error: Some(error.to_owned()),
        }
    }

    /// A host where everything is set up badly.
    fn bad_host() -> HostFacts {
        HostFacts {
            kernel_release: Some("5.4.0".to_owned()),
            cpu: CpuFacts {
                online: 1,
                allowed: vec![0],
                allowed_list: "0".to_owned(),
                affinity_mask: "0x1".to_owned(),
            },
            io_uring: IoUringFacts {
                probe: RingProbe {
                    disabled_sysctl: Some(2),
                    plain: refused("Operation not permitted (os error 1)"),
                    coop_taskrun: refused("Operation not permitted (os error 1)"),
                    single_issuer: refused("Operation not permitted (os error 1)"),
                    defer_taskrun: refused("Operation not permitted (os error 1)"),
                    missing_ops: Vec::new(),
                },
                auto_driver: DriverKind::Epoll,
            },
            net: NetFacts {
                somaxconn: Some(128),
                tcp_max_syn_backlog: Some(256),
                ip_local_port_range: Some([60000, 61000]),
                tcp_tw_reuse: Some(0),
                rmem_max: Some(212_992),
                wmem_max: Some(212_992),
                tcp_rmem: Some([4096, 131_072, 6_291_456]),
                tcp_wmem: Some([4096, 16384, 4_194_304]),
            },
            rlimit_nofile: Some(NofileLimit {
                soft: Some(1024),
                hard: Some(4096),
            }),
            transparent_hugepages: Some("always".to_owned()),
            cpu_governors: vec!["powersave".to_owned()],
        }
    }

    #[test]
    fn a_badly_set_up_host_gets_a_fix_for_everything() {
        let findings = findings(&bad_host());
        let warned: Vec<&str> = findings
            .iter()
            .filter(|f| f.status == Status::Warn)
            .map(|f| f.check)
            .collect();
        for check in [
            "cpus",
            "kernel.io_uring_disabled",
            "io_uring ring",
            "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_tw_reuse",
            "RLIMIT_NOFILE",
            "transparent_hugepage",
            "cpu frequency governor",
        ] {
            assert!(warned.contains(&check), "{check} not warned: {warned:?}");
        }
        let by = |c: &str| findings.iter().find(|f| f.check == c).unwrap().clone();
        assert_eq!(
            by("RLIMIT_NOFILE").command.as_deref(),
            Some("ulimit -Hn 65536 && ulimit -n 65536")
        );
        assert_eq!(
            by("kernel.io_uring_disabled").command.as_deref(),
            Some("sysctl -w kernel.io_uring_disabled=0")
        );
        let ring = by("io_uring ring");
        assert!(
            ring.recommendation.contains("kernel.io_uring_disabled = 2"),
            "{}",
            ring.recommendation
        );
        assert!(
            ring.recommendation.contains("uses epoll"),
            "{}",
            ring.recommendation
        );
        assert_eq!(by("net.core.rmem_max").status, Status::Info);
    }

    #[test]
    fn an_old_kernel_without_coop_taskrun_is_steered_to_epoll() {
        let mut host = bad_host();
        host.io_uring.probe.disabled_sysctl = None;
        host.io_uring.probe.plain = SetupResult {
            ok: true,
            error: None,
        };
        host.io_uring.probe.coop_taskrun = refused("Invalid argument (os error 22)");
        let ring = findings(&host)
            .into_iter()
            .find(|f| f.check == "io_uring ring")
            .unwrap();
        assert_eq!(ring.status, Status::Warn);
        assert_eq!(ring.value, "default ring only");
        assert!(ring.command.unwrap().contains("--io-driver epoll"));
    }

    #[test]
    fn thresholds() {
        let f = at_least("net.core.somaxconn", Some(128), WANTED_BACKLOG, "x");
        assert_eq!(f.status, Status::Warn);
        assert_eq!(
            f.command.as_deref(),
            Some("sysctl -w net.core.somaxconn=4096")
        );
        assert_eq!(
            at_least("net.core.somaxconn", Some(4096), WANTED_BACKLOG, "x").status,
            Status::Ok
        );
        assert_eq!(
            at_least("net.core.somaxconn", None, WANTED_BACKLOG, "x").status,
            Status::Info
        );
    }

    #[test]
    fn ports_tw_reuse_thp_governor() {
        assert_eq!(port_range(Some([32768, 60999])).status, Status::Ok);
        let narrow = port_range(Some([50000, 51000]));
        assert_eq!(narrow.status, Status::Warn);
        assert_eq!(
            narrow.command.as_deref(),
            Some("sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"")
        );
        assert_eq!(tw_reuse(Some(0)).status, Status::Warn);
        assert_eq!(tw_reuse(Some(2)).status, Status::Info);
        assert_eq!(hugepages(Some("always")).status, Status::Warn);
        assert_eq!(hugepages(Some("madvise")).status, Status::Ok);
        assert_eq!(governor(&["powersave".to_owned()]).status, Status::Warn);
        assert_eq!(governor(&[]).status, Status::Info);
    }

    #[test]
    fn every_warning_has_a_command() {
        let facts = HostFacts::read();
        for f in findings(&facts) {
            if f.status == Status::Warn && f.check != "io_uring ring" {
                assert!(f.command.is_some(), "{f:?}");
            }
        }
    }
}
