#!/usr/bin/env python3
"""Markdown report of benches/scripts/side_by_side.sh: rows.tsv in, markdown on stdout.

Each row of rows.tsv (tab-separated) is one system in one round:
  round key label rps p99_ms cpu0_us far_us fixed_p99_ms fixed_cpu0_us fixed_far_us others0 others1 notes
where far_us is "—" for a proxy without a far half, and the fixed_* fields are "—" without
ringway-loadgen. others0 and others1 are "W / F": the % of CPU 0 used by processes other than the
one under test, and of CPU 1 by processes other than the backend, the far half and the load
generator, during the wrk run (W) and the fixed-rate run (F). Ratios compare a row with the nginx row of the same round. The run's
context (command, machine, load) comes in environment variables set by the script.
"""

import os
import re
import statistics
import sys

# A row whose "others" shares all stay at or below this % counts as clean in the summary.
NOISY = float(os.environ.get("NOISY_PCT", "10"))

FIELDS = ["round", "key", "label", "rps", "p99", "cpu0", "far", "fixed_p99", "fixed_cpu0", "fixed_far", "others0", "others1", "notes"]


def num(text):
    """A float, or None for "—", "?" and empty fields."""
    try:
        return float(text)
    except ValueError:
        return None


def total(cpu0, far):
    if cpu0 is None:
        return None
    return cpu0 + (far or 0.0)


def fmt(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(FIELDS):
                continue
            row = dict(zip(FIELDS, parts))
            for k in ("rps", "p99", "cpu0", "far", "fixed_p99", "fixed_cpu0", "fixed_far"):
                row[k] = num(row[k])
            row["total"] = total(row["cpu0"], row["far"])
            row["fixed_total"] = total(row["fixed_cpu0"], row["fixed_far"])
            row["noise"] = noise(row)
            row["clean_self"] = row["noise"] is not None and row["noise"] <= NOISY
            rows.append(row)
    return rows


def noise(row):
    """The largest "others" percentage of a row (None if none could be measured)."""
    values = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", row["others0"] + " " + row["others1"])]
    return max(values) if values else None


def with_ratios(rows):
    """Adds the ratios against the nginx row of the same round (None without one)."""
    baseline = {r["round"]: r for r in rows if r["key"] == "nginx"}
    for r in rows:
        n = baseline.get(r["round"])
        get = (lambda k: n[k]) if n else (lambda k: None)
        r["clean"] = r["noise"] is not None and r["noise"] <= NOISY and n is not None and n["clean_self"]
        r["r_total"] = ratio(r["total"], get("total"))
        r["r_cpu0"] = ratio(r["cpu0"], get("cpu0"))
        r["r_rps"] = ratio(r["rps"], get("rps"))
        r["r_p99"] = ratio(r["p99"], get("p99"))
        r["r_fixed_p99"] = ratio(r["fixed_p99"], get("fixed_p99"))
        r["r_fixed_total"] = ratio(r["fixed_total"], get("fixed_total"))
        r["r_fixed_cpu0"] = ratio(r["fixed_cpu0"], get("fixed_cpu0"))
    return rows


def spread(values, digits=2):
    """median, with (min–max) when there are several rounds."""
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    med = fmt(statistics.median(values), digits)
    if len(values) == 1:
        return med
    return f"{med} ({fmt(min(values), digits)}–{fmt(max(values), digits)})"


# Issue 10's table: (figure, target, how a round's value is computed from the rows of that round).
TARGETS = [
    ("balancer alone / nginx", 0.50, lambda rw, by: rw["r_cpu0"]),
    ("balancer + agent / nginx", 1.00, lambda rw, by: rw["r_total"]),
    ("balancer + agent / rathole (server + client)", 0.60,
     lambda rw, by: ratio(rw["total"], by["rathole"]["total"]) if "rathole" in by else None),
    ("io_uring / epoll, same binary, balancer + agent", 0.85,
     lambda rw, by: ratio(by["ringway-uring"]["total"], by["ringway-epoll"]["total"])
     if rw["key"] == "ringway-uring" and "ringway-epoll" in by else None),
    ("balancer alone / nginx at a fixed {rate} req/s (open loop)", 0.70, lambda rw, by: rw["r_fixed_cpu0"]),
    ("p99 at {rate} req/s / nginx's", 1.00, lambda rw, by: rw["r_fixed_p99"]),
]


def tunnel_targets(rows, rate, w):
    """The issue-10 figures per ringway tunnel system: median (min–max) over clean rounds."""
    systems = [k for k in dict.fromkeys(r["key"] for r in rows) if k.startswith("ringway-")]
    if not systems:
        return
    rounds = {}
    for r in rows:
        rounds.setdefault(r["round"], {})[r["key"]] = r
    w("")
    w("## Tunnel CPU targets (issue 10): median (min–max) over the clean rounds")
    w("")
    w(f"A round counts when every system's row in it stayed under {NOISY:.0f} % of other processes' CPU")
    w("on both CPUs; `*noisy*` marks a figure for which no round was clean (all rounds used).")
    w("")
    w("| figure | target | " + " | ".join(systems) + " |")
    w("|---|---|" + "---|" * len(systems))
    for name, target, value in TARGETS:
        cells = []
        for key in systems:
            clean, every = [], []
            for by in rounds.values():
                row = by.get(key)
                if row is None:
                    continue
                v = value(row, by)
                if v is None:
                    continue
                every.append(v)
                # every row of the round must be clean
                if row["clean"] and all(o["clean_self"] for o in by.values()):
                    clean.append(v)
            used = clean or every
            cell = spread(used)
            if used and not clean:
                cell += " *noisy*"
            if used:
                met = statistics.median(used) <= target
                cell += " ✓" if met else " ✗"
            cells.append(cell)
        w(f"| {name.format(rate=rate)} | ≤ {target:.2f} | " + " | ".join(cells) + " |")
    w("")
    w("✓ / ✗: the median meets / misses the target. The io_uring / epoll figure is in the uring column.")


def main():
    rows = with_ratios(read_rows(sys.argv[1]))
    env = os.environ.get
    rate = env("RATE", "?")
    conns = env("CONNS", "?")
    duration = env("DURATION", "?")
    out = []
    w = out.append
    w(f"# {env('TITLE', 'side-by-side benchmark')}")
    w("")
    w(f"Command: `{env('COMMAND', '?')}` (release builds; {env('ELAPSED', '?')} s of measuring).")
    w("")
    w(f"Machine: {env('MACHINE', '?')}. Versions: {env('VERSIONS', '?')}; ringway built from "
      f"{env('RINGWAY_CODE', '?')}.")
    w("")
    w(f"Host load average (1/5/15 min) before: {env('LOAD_BEFORE', '?')}, after: {env('LOAD_AFTER', '?')}")
    w("(other work on the machine adds noise; the systems of one round ran back to back, and each")
    w("ratio compares a system with the nginx run of the same round).")
    w("")
    w("Setup: the process under test alone on CPU 0 (`taskset -c 0`): nginx with 1 worker, HAProxy")
    w("with `nbthread 1`, the rathole server, or `ringway-balancer --workers 1`. On CPU 1: the backend")
    w("(nginx `return 200`, 12-byte body, shared by all), the far half of a tunnel (ringway agent with 1")
    w("thread, rathole client) and the load generator. Load: keep-alive GETs, "
      f"`wrk -t1 -c{conns} -d{duration}s` after a {env('WARMUP', '?')} s warm-up, then "
      f"`ringway-loadgen -c {conns} -R {rate}` for {duration} s")
    w("(open loop at a fixed rate, latency corrected for coordinated omission; 1 s warm-up).")
    w(f"CPU µs/request = utime+stime of all the process's threads (/proc/PID/task/*/stat, {env('CLK_TCK', '?')} Hz")
    w("ticks) over a run, divided by the requests completed in it. *CPU 0* is the proxy / tunnel")
    w("entrance; *far* the tunnel's other half (agent, rathole client); *total* their sum. The backend's")
    w("and the load generator's CPU are not counted for anyone. *Others on CPU 0 / CPU 1* = the share")
    w("of that CPU used by processes outside the benchmark (CPU 0: all but the process under test;")
    w("CPU 1: all but backend, far half and load generator) during the wrk run / the fixed-rate run,")
    w("from /proc/stat busy ticks: the noise indicator of that row.")
    w("")
    w("## Measurements")
    w("")
    w(f"| round | system | req/s (wrk) | p99 ms (wrk) | CPU 0 µs/req | far µs/req | total µs/req "
      f"| p99 ms at {rate} req/s | CPU 0 µs/req at {rate} req/s | total µs/req at {rate} req/s "
      "| others on CPU 0 % | others on CPU 1 % |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        w(f"| {r['round']} | {r['label']} | {fmt(r['rps'], 0)} | {fmt(r['p99'])} | {fmt(r['cpu0'])} "
          f"| {fmt(r['far'])} | {fmt(r['total'])} | {fmt(r['fixed_p99'])} | {fmt(r['fixed_cpu0'])} "
          f"| {fmt(r['fixed_total'])} | {r['others0']} | {r['others1']} |")
    notes = [r for r in rows if r["notes"].strip()]
    if notes:
        w("")
        w("Errors and warnings:")
        for r in notes:
            w(f"- round {r['round']}, {r['label']}: {r['notes'].strip()}")
    w("")
    w("## Ratios vs nginx (same round; below 1.00 = less CPU / lower latency / fewer req/s than nginx)")
    w("")
    w(f"| round | system | total CPU / nginx | CPU 0 / nginx | req/s / nginx | p99 (wrk) / nginx "
      f"| p99 at {rate} req/s / nginx | CPU 0 at {rate} req/s / nginx | total CPU at {rate} req/s / nginx |")
    w("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["key"] == "nginx":
            continue
        w(f"| {r['round']} | {r['label']} | {fmt(r['r_total'])} | {fmt(r['r_cpu0'])} | {fmt(r['r_rps'])} "
          f"| {fmt(r['r_p99'])} | {fmt(r['r_fixed_p99'])} | {fmt(r['r_fixed_cpu0'])} | {fmt(r['r_fixed_total'])} |")
    rounds = sorted({r["round"] for r in rows})
    if len(rounds) > 1:
        w("")
        w(f"## Summary over {len(rounds)} rounds: median (min–max)")
        w("")
        w(f"Over the clean rounds of each system: those in which neither it nor that round's nginx saw more")
        w(f"than {NOISY:.0f} % of either CPU used by other processes (all rounds, marked *noisy*, where none was clean).")
        w("")
        w("| system | rounds used | total µs/req | total CPU / nginx | CPU 0 / nginx | req/s / nginx "
          f"| p99 at {rate} req/s, ms | p99 at {rate} req/s / nginx | total CPU at {rate} req/s / nginx |")
        w("|---|---|---|---|---|---|---|---|---|")
        keys = list(dict.fromkeys(r["key"] for r in rows))
        for key in keys:
            mine = [r for r in rows if r["key"] == key]
            clean = [r for r in mine if r["clean"]]
            used = clean or mine
            tag = f"{len(clean)} of {len(mine)}" if clean else f"{len(mine)} of {len(mine)}, *noisy*"
            w(f"| {mine[0]['label']} | {tag} | {spread([r['total'] for r in used])} "
              f"| {spread([r['r_total'] for r in used])} | {spread([r['r_cpu0'] for r in used])} "
              f"| {spread([r['r_rps'] for r in used])} | {spread([r['fixed_p99'] for r in used])} "
              f"| {spread([r['r_fixed_p99'] for r in used])} | {spread([r['r_fixed_total'] for r in used])} |")
    skipped = env("SKIPPED_TEXT", "").strip()
    if skipped:
        w("")
        w("Not measured: " + "; ".join(skipped.splitlines()) + ".")
    if env("WANTS_RINGWAY") == "1":
        tunnel_targets(rows, rate, w)
    if env("WANTS_CLASSIC") == "1":
        w("")
        w("Target (issue 8): ringway classic mode ≤ 0.8× nginx's CPU/request (total CPU ratio ≤ 0.80;")
        w("there is no far half, so total = CPU 0).")
    print("\n".join(out))


if __name__ == "__main__":
    main()
