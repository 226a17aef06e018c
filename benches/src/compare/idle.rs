//! The idle scenario: `idle-clients` opens N keep-alive connections through the system, each
//! answered once and then left idle; resident memory of the entrance before and after.

use std::time::Duration;

use super::proc_stat::group_rss_kib;
use super::procs::Guard;
use super::results::IdleRun;
use super::systems::{wait_for_line, Ctx, Running, HOST};

/// Seconds between the last connection answered and the second reading.
const SETTLE: Duration = Duration::from_secs(2);

/// Holds `conns` idle connections against `sys` (no more than `cap`, the most it is configured
/// to hold, with the reason recorded) and reads VmRSS around them.
pub fn measure(
    ctx: &mut Ctx,
    sys: &Running,
    conns: usize,
    cap: Option<u64>,
    tag: &str,
) -> Result<IdleRun, String> {
    let (conns, capped) = match cap {
        Some(cap) if (conns as u64) > cap => (
            cap as usize,
            Some(format!(
                "{cap} connections, not {conns}: its connection limit under this host's \
                 open-file limit of {}",
                ctx.nofile
            )),
        ),
        _ => (conns, None),
    };
    let far_pid = sys.far.as_ref().map(Guard::pid);
    let before = group_rss_kib(sys.entrance.pid());
    let far_before = far_pid.map(group_rss_kib);
    let bin = ctx.bins.join("idle-clients");
    let args = vec![
        format!("127.0.0.1:{}", ctx.ports.entrance),
        "--conns".into(),
        conns.to_string(),
        "--host".into(),
        HOST.into(),
    ];
    let rest = ctx.pin.rest_cpus.clone();
    let cmd = ctx.pinned(&rest, &bin, &args);
    let log = ctx.work.join(format!("{tag}-idle-clients.log"));
    let mut clients = Guard::spawn("idle-clients", cmd, &log)?;
    wait_for_line(&log, "ready", &mut clients, Duration::from_secs(300))?;
    std::thread::sleep(SETTLE);
    let after = group_rss_kib(sys.entrance.pid());
    let far_after = far_pid.map(group_rss_kib);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let answered = text
        .lines()
        .find_map(|l| l.strip_prefix("ready "))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    clients.stop();
    let bytes_per_conn = if answered == 0 {
        f64::NAN
    } else {
        (after as f64 - before as f64) * 1024.0 / answered as f64
    };
    Ok(IdleRun {
        conns: conns as u64,
        capped,
        answered,
        rss_before_kib: before,
        rss_after_kib: after,
        bytes_per_conn,
        far_rss_kib: far_before.zip(far_after),
    })
}
