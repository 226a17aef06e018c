//! Reading the host's settings: sysctls under /proc/sys, sysfs knobs and limits. Nothing here
//! changes the host.

use std::fs;

use serde::Serialize;

use crate::cpu;
use crate::limits::{self, NofileLimit};
use crate::ring::RingProbe;
use crate::runtime::{self, DriverKind};

/// Facts about this host that matter to ringway, as read (`None`: not readable here).
#[derive(Debug, Clone, Serialize)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel_release: Option<String>,
    /// CPUs online and the ones this process may use.
    pub cpu: CpuFacts,
    /// Which io_uring rings can be set up, and what `IoDriver::Auto` picks.
    pub io_uring: IoUringFacts,
    /// Networking sysctls.
    pub net: NetFacts,
    /// `RLIMIT_NOFILE` of this process.
    pub rlimit_nofile: Option<NofileLimit>,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`: `always`, `madvise` or `never`.
    pub transparent_hugepages: Option<String>,
    /// Distinct `scaling_governor` values of the allowed CPUs (empty: no cpufreq exposed).
    pub cpu_governors: Vec<String>,
}

/// CPU counts and the affinity mask.
#[derive(Debug, Clone, Serialize)]
pub struct CpuFacts {
    /// CPUs online (`/sys/devices/system/cpu/online`).
    pub online: usize,
    /// CPUs in this process's affinity mask.
    pub allowed: Vec<usize>,
    /// The same as a `taskset -c` list.
    pub allowed_list: String,
    /// The same as a hexadecimal mask, as `taskset -p` prints it.
    pub affinity_mask: String,
}

/// io_uring availability.
#[derive(Debug, Clone, Serialize)]
pub struct IoUringFacts {
    /// The ring probe (sysctl, each set-up tried, missing operations).
    #[serde(flatten)]
    pub probe: RingProbe,
    /// The driver `--io-driver auto` gives a worker here.
    pub auto_driver: DriverKind,
}

/// Networking sysctls.
#[derive(Debug, Clone, Serialize)]
pub struct NetFacts {
    /// `net.core.somaxconn`: cap on any listen backlog.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_max_syn_backlog`: half-open connections per listener.
    pub tcp_max_syn_backlog: Option<u64>,
    /// `net.ipv4.ip_local_port_range`: ephemeral ports for outgoing connections.
    pub ip_local_port_range: Option<[u64; 2]>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 loopback only.
    pub tcp_tw_reuse: Option<u64>,
    /// `net.core.rmem_max`: cap on SO_RCVBUF.
    pub rmem_max: Option<u64>,
    /// `net.core.wmem_max`: cap on SO_SNDBUF.
    pub wmem_max: Option<u64>,
    /// `net.ipv4.tcp_rmem` (min, default, max autotuned receive buffer).
    pub tcp_rmem: Option<[u64; 3]>,
    /// `net.ipv4.tcp_wmem` (min, default, max autotuned send buffer).
    pub tcp_wmem: Option<[u64; 3]>,
}

impl HostFacts {
    /// Reads everything (and probes io_uring once).
    pub fn read() -> Self {
        let allowed = cpu::allowed_cpus();
        let online = read_trimmed("/sys/devices/system/cpu/online")
            .and_then(|s| parse_cpu_list(&s))
            .map_or(allowed.len(), |l| l.len());
        Self {
            kernel_release: read_trimmed("/proc/sys/kernel/osrelease"),
            cpu: CpuFacts {
                online,
                allowed_list: cpu::cpu_list(&allowed),
                affinity_mask: cpu::mask_hex(&allowed),
                allowed: allowed.clone(),
            },
            io_uring: IoUringFacts {
                probe: RingProbe::get().clone(),
                auto_driver: runtime::auto_driver(),
            },
            net: NetFacts {
                somaxconn: sysctl_u64("net.core.somaxconn"),
                tcp_max_syn_backlog: sysctl_u64("net.ipv4.tcp_max_syn_backlog"),
                ip_local_port_range: sysctl_array("net.ipv4.ip_local_port_range"),
                tcp_tw_reuse: sysctl_u64("net.ipv4.tcp_tw_reuse"),
                rmem_max: sysctl_u64("net.core.rmem_max"),
                wmem_max: sysctl_u64("net.core.wmem_max"),
                tcp_rmem: sysctl_array("net.ipv4.tcp_rmem"),
                tcp_wmem: sysctl_array("net.ipv4.tcp_wmem"),
            },
            rlimit_nofile: limits::nofile().ok(),
            transparent_hugepages: read_trimmed("/sys/kernel/mm/transparent_hugepage/enabled")
                .and_then(|s| bracketed(&s)),
            cpu_governors: governors(&allowed),
        }
    }
}

/// The value of a sysctl (`net.core.somaxconn` → `/proc/sys/net/core/somaxconn`), trimmed.
pub fn sysctl(name: &str) -> Option<String> {
    read_trimmed(&format!("/proc/sys/{}", name.replace('.', "/")))
}

fn sysctl_u64(name: &str) -> Option<u64> {
    sysctl(name)?.parse().ok()
}

fn sysctl_array<const N: usize>(name: &str) -> Option<[u64; N]> {
    let values: Vec<u64> = sysctl(name)?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    values.try_into().ok()
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The selected word of a sysfs choice list: `always [madvise] never` → `madvise`.
fn bracketed(s: &str) -> Option<String> {
    let start = s.find('[')? + 1;
    let end = start + s[start..].find(']')?;
    Some(s[start..end].to_owned())
}

/// Parses a kernel CPU list (`0-3,6,8-9`).
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn governors(cpus: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = cpus
        .iter()
        .filter_map(|c| {
            read_trimmed(&format!(
                "/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
            ))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-2,5,7-8"), Some(vec![0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn sysfs_choice() {
        assert_eq!(
            bracketed("always [madvise] never").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            bracketed("[always] madvise never").as_deref(),
            Some("always")
        );
        assert_eq!(bracketed("never"), None);
    }

    #[test]
    fn reads_this_host() {
        let facts = HostFacts::read();
        assert!(facts.cpu.online >= facts.cpu.allowed.len());
        assert!(facts.kernel_release.is_some());
        assert!(facts.net.somaxconn.is_some());
        if let Some([lo, hi]) = facts.net.ip_local_port_range {
            assert!(lo <= hi);
        }
    }
}
