//! `scale-out-report LOADGEN.json EVENTS`: the figures of `benches/scripts/scale_out.sh` as
//! `key=value` lines.
//!
//! EVENTS holds `name unix_ms` lines written by the script as things happened (`kill`, `restart`,
//! `agents_back`, …, and `front:IP,IP` each time the front's nexthops changed). The loadgen run
//! gives, per `--interval`, the requests completed and failed (connect, read, timeout, …); each
//! interval is placed on the wall clock by its round start. A phase's failed requests are those of
//! the intervals that end in it (an interval is in one phase only), and the recovery time after the kill is the end of the last
//! interval with failures, counted from the kill: when the users' error rate was back to zero.

use std::process::ExitCode;

use serde_json::Value;

/// One loadgen interval on the wall clock.
struct Interval {
    start_ms: f64,
    end_ms: f64,
    errors: u64,
    completed: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [json, events] = args.as_slice() else {
        eprintln!("usage: scale-out-report LOADGEN.json EVENTS");
        return ExitCode::from(2);
    };
    match report(json, events) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scale-out-report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(json_path: &str, events_path: &str) -> Result<Vec<String>, String> {
    let text =
        std::fs::read_to_string(json_path).map_err(|e| format!("reading {json_path}: {e}"))?;
    let run: Value =
        serde_json::from_str(&text).map_err(|e| format!("{json_path} is not JSON: {e}"))?;
    let target = run
        .pointer("/targets/0")
        .ok_or_else(|| format!("{json_path}: no targets[0]"))?;
    let intervals = intervals(target).map_err(|e| format!("{json_path}: {e}"))?;
    let events_text =
        std::fs::read_to_string(events_path).map_err(|e| format!("reading {events_path}: {e}"))?;
    let events = parse_events(&events_text).map_err(|e| format!("{events_path}: {e}"))?;
    let at = |name: &str| {
        events
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, t)| t)
            .ok_or_else(|| format!("{events_path}: no {name} event"))
    };
    let (kill, restart, dns_add, end) = (at("kill")?, at("restart")?, at("dns_add")?, at("end")?);
    let dns_remove = at("dns_remove")?;
    let load = at("load")?;

    let mut out = Vec::new();
    let requests = target.pointer("/requests").cloned().unwrap_or(Value::Null);
    let num = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    out.push(format!("requests_sent={}", num(&requests, "/sent")));
    out.push(format!(
        "requests_completed={}",
        num(&requests, "/completed")
    ));
    out.push(format!(
        "requests_failed={}",
        num(&requests, "/error_total")
    ));
    let non_2xx: u64 = requests
        .pointer("/statuses")
        .and_then(Value::as_object)
        .map_or(0, |s| {
            s.iter()
                .filter(|(code, _)| !code.starts_with('2'))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        });
    out.push(format!("responses_not_2xx={non_2xx}"));
    out.push(format!(
        "achieved_rate={:.1}",
        target
            .pointer("/achieved_rate")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    ));

    out.push(format!(
        "failed_before_kill={}",
        errors_in(&intervals, load, kill)
    ));
    out.push(format!(
        "failed_after_kill={}",
        errors_in(&intervals, kill, restart)
    ));
    let recovery_ms = recovery(&intervals, kill, restart);
    out.push(format!("recovery_ms={recovery_ms:.0}"));
    // How long before the restart nothing failed any more: the proof that it had recovered.
    out.push(format!(
        "error_free_before_restart_ms={:.0}",
        restart - kill - recovery_ms
    ));
    out.push(format!(
        "failed_after_restart={}",
        errors_in(&intervals, restart, dns_add)
    ));
    out.push(format!(
        "failed_after_b4_add={}",
        errors_in(&intervals, dns_add, dns_remove)
    ));
    out.push(format!(
        "failed_after_b4_remove={}",
        errors_in(&intervals, dns_remove, end)
    ));
    let last_failure = intervals
        .iter()
        .filter(|i| i.errors > 0)
        .map(|i| i.end_ms)
        .fold(f64::NAN, f64::max);
    if last_failure.is_nan() {
        out.push("last_failure_after_kill_ms=none".to_owned());
    } else {
        out.push(format!(
            "last_failure_after_kill_ms={:.0}",
            last_failure - kill
        ));
    }
    let completed_after: u64 = intervals
        .iter()
        .filter(|i| i.start_ms >= restart)
        .map(|i| i.completed)
        .sum();
    out.push(format!("completed_after_restart={completed_after}"));

    // The front's changes: when it dropped b2 after the kill and took it back after the restart.
    let front_after = |from: f64, pred: &dyn Fn(&str) -> bool| {
        events
            .iter()
            .filter(|(n, t)| *t >= from && n.starts_with("front:") && pred(n))
            .map(|&(_, t)| t - from)
            .next()
    };
    let b2 = "10.77.12.2";
    push_ms(
        &mut out,
        "front_drop_ms",
        front_after(kill, &|n| !n.contains(b2)),
    );
    push_ms(
        &mut out,
        "front_readd_ms",
        front_after(restart, &|n| n.contains(b2)),
    );
    let since = |name: &str, from: f64| at(name).ok().map(|t| t - from);
    push_ms(&mut out, "agents_back_ms", since("agents_back", restart));
    push_ms(&mut out, "b2_traffic_ms", since("b2_traffic", restart));
    push_ms(&mut out, "b4_agents_ms", since("b4_agents", dns_add));
    push_ms(
        &mut out,
        "b4_front_ms",
        front_after(dns_add, &|n| n.contains("10.77.14.2")),
    );
    push_ms(&mut out, "b4_traffic_ms", since("b4_traffic", dns_add));
    push_ms(
        &mut out,
        "b4_front_drop_ms",
        front_after(dns_remove, &|n| !n.contains("10.77.14.2")),
    );
    push_ms(&mut out, "b4_stop_ms", since("b4_stopped", dns_remove));
    Ok(out)
}

fn push_ms(out: &mut Vec<String>, key: &str, ms: Option<f64>) {
    match ms {
        Some(ms) => out.push(format!("{key}={ms:.0}")),
        None => out.push(format!("{key}=none")),
    }
}

fn intervals(target: &Value) -> Result<Vec<Interval>, String> {
    let list = target
        .pointer("/intervals")
        .and_then(Value::as_array)
        .ok_or("no intervals")?;
    list.iter()
        .filter(|i| i.get("warmup").and_then(Value::as_bool) != Some(true))
        .map(|i| {
            let field = |k: &str| {
                i.get(k)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("an interval without {k}"))
            };
            let start_ms = field("round_start_unix_ms")? as f64 + field("start_us")? as f64 / 1e3;
            Ok(Interval {
                start_ms,
                end_ms: start_ms + field("length_us")? as f64 / 1e3,
                errors: field("errors")?,
                completed: field("completed")?,
            })
        })
        .collect()
}

fn parse_events(text: &str) -> Result<Vec<(String, f64)>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, ms) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("not `name unix_ms`: {line:?}"))?;
            let ms: f64 = ms
                .parse()
                .map_err(|e| format!("bad time in {line:?}: {e}"))?;
            Ok((name.to_owned(), ms))
        })
        .collect()
}

/// Whether an interval belongs to the phase `(from, to]`: by its end, so that the interval in
/// which an event happened counts after it (each interval in exactly one phase).
fn in_phase(i: &Interval, from: f64, to: f64) -> bool {
    i.end_ms > from && i.end_ms <= to
}

/// Failed requests of the phase `(from, to]`.
fn errors_in(intervals: &[Interval], from: f64, to: f64) -> u64 {
    intervals
        .iter()
        .filter(|i| in_phase(i, from, to))
        .map(|i| i.errors)
        .sum()
}

/// Milliseconds from `from` to the end of the phase's last interval with failures; 0 when there
/// was none.
fn recovery(intervals: &[Interval], from: f64, to: f64) -> f64 {
    intervals
        .iter()
        .filter(|i| in_phase(i, from, to) && i.errors > 0)
        .map(|i| i.end_ms - from)
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(start_ms: f64, errors: u64) -> Interval {
        Interval {
            start_ms,
            end_ms: start_ms + 100.0,
            errors,
            completed: 10,
        }
    }

    #[test]
    fn recovery_ends_with_the_last_failing_interval() {
        let list = [iv(0.0, 0), iv(100.0, 3), iv(200.0, 1), iv(300.0, 0)];
        assert_eq!(recovery(&list, 150.0, 1000.0), 150.0);
        assert_eq!(errors_in(&list, 150.0, 1000.0), 4);
        assert_eq!(
            errors_in(&list, 0.0, 150.0),
            0,
            "the interval of the event is after it"
        );
        assert_eq!(recovery(&list, 300.0, 1000.0), 0.0);
    }

    #[test]
    fn events_are_name_then_time() {
        let events = parse_events("kill 1000\nfront:10.77.11.2,10.77.13.2 1200\n").unwrap();
        assert_eq!(
            events[1],
            ("front:10.77.11.2,10.77.13.2".to_owned(), 1200.0)
        );
        assert!(parse_events("kill\n").is_err());
    }
}
