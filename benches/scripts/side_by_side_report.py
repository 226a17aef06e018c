#!/usr/bin/env python3
"""Markdown report of benches/scripts/side_by_side.sh: runs.tsv, calibration.tsv, rates.tsv in, markdown out.

runs.tsv (tab-separated) holds one line per measured run of one system in one round:
  round workers key label run rps p99_ms cpu0_us far_us irq0_us others0 others1 acct0 notes
run is "wrk" (closed loop) or the fixed rate in req/s (ringway-loadgen, open loop; rps is then the
achieved rate and p99 the corrected one). cpu0_us and far_us are the CPU-0 process's and the far
half's utime+stime per request (far "—" for a proxy); irq0_us the irq + softirq time on CPU 0 that
the kernel billed to no task, per request. others0 / others1 are the % of CPU 0 / CPU 1 that other
tasks used (user + system) or the hypervisor stole: the noise indicator. acct0 splits CPU 0's time
in % of the run: "process/other tasks/unbilled irq+softirq/steal".
calibration.tsv: workers key label rps (the closed-loop pass that sets the N% rates).
rates.tsv: workers slowest_rps "rate rate …".
Ratios compare a system with the nginx run of the same round and worker count. The run's context
(command, machine, load) comes in environment variables set by the script.
"""

import os
import statistics
import sys

# A row (one system in one round) whose "others" shares all stay at or below this % counts as clean.
NOISY = float(os.environ.get("NOISY_PCT", "10"))

FIELDS = ["round", "workers", "key", "label", "run", "rps", "p99", "cpu0", "far", "irq0", "others0", "others1",
          "acct0", "notes"]


def num(text):
    """A float, or None for "—", "?" and empty fields."""
    try:
        return float(text)
    except ValueError:
        return None


def plus(a, b):
    if a is None:
        return None
    return a + (b or 0.0)


def fmt(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def read_tsv(path, width):
    try:
        with open(path, encoding="utf-8") as f:
            return [p for p in (line.rstrip("\n").split("\t") for line in f) if len(p) == width]
    except OSError:
        return []


def read_runs(path):
    runs = []
    for parts in read_tsv(path, len(FIELDS)):
        run = dict(zip(FIELDS, parts))
        for k in ("rps", "p99", "cpu0", "far", "irq0", "others0", "others1"):
            run[k] = num(run[k])
        run["total"] = plus(run["cpu0"], run["far"])
        run["cpu0_all"] = plus(run["cpu0"], run["irq0"])
        run["acct"] = [num(v) for v in run["acct0"].split("/")] if run["acct0"].count("/") == 3 else [None] * 4
        runs.append(run)
    return runs


def rows_of(runs, rate):
    """One row per (round, workers, system): the wrk run's figures, the fixed_* ones of the run at
    RATE, every fixed-rate run under "fixed", and the noise over all its runs."""
    rows = {}
    for run in runs:
        k = (run["round"], run["workers"], run["key"])
        row = rows.setdefault(k, {"round": run["round"], "workers": run["workers"], "key": run["key"],
                                  "label": run["label"], "fixed": {}, "all_runs": [], "notes": []})
        row["all_runs"].append(run)
        if run["notes"].strip():
            row["notes"].append(f"{run['run']}: {run['notes'].strip()}")
        if run["run"] == "wrk":
            row["wrk"] = run
        else:
            row["fixed"][int(run["run"])] = run
    out = []
    for row in rows.values():
        wrk = row.get("wrk", {})
        fixed = row["fixed"].get(int(rate)) if rate else None
        fixed = fixed or {}
        for k in ("rps", "p99", "cpu0", "far", "irq0", "total", "cpu0_all"):
            row[k] = wrk.get(k)
            row["fixed_" + k] = fixed.get(k)
        others = [v for r in row["all_runs"] for v in (r["others0"], r["others1"]) if v is not None]
        row["noise"] = max(others) if others else None
        row["clean_self"] = row["noise"] is not None and row["noise"] <= NOISY

        def shares(key):
            w = wrk.get(key)
            f = [r[key] for r in row["fixed"].values() if r[key] is not None]
            text = fmt(w, 0)
            return text + (f" / {max(f):.0f}" if f else "")
        row["others0_text"] = shares("others0")
        row["others1_text"] = shares("others1")
        out.append(row)
    return out


def with_ratios(rows):
    """Adds the ratios against the nginx row of the same round and worker count (None without one)."""
    baseline = {(r["round"], r["workers"]): r for r in rows if r["key"] == "nginx"}
    for r in rows:
        n = baseline.get((r["round"], r["workers"]))
        r["nginx"] = n
        r["clean"] = r["clean_self"] and n is not None and n["clean_self"]
        for k in ("total", "cpu0", "cpu0_all", "rps", "p99", "fixed_p99", "fixed_total", "fixed_cpu0", "fixed_cpu0_all"):
            r["r_" + k] = ratio(r[k], n[k] if n else None)
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


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def used_rows(mine):
    """The clean rows of one system (all of them, flagged noisy, when none is clean)."""
    clean = [r for r in mine if r["clean"]]
    if clean:
        return clean, f"{len(clean)} of {len(mine)}"
    return mine, f"{len(mine)} of {len(mine)}, *noisy*"


# Issue 10's table: (figure, target, how a round's value is computed from the rows of that round).
TARGETS = [
    ("balancer alone / nginx", 0.50, lambda rw, by: rw["r_cpu0"]),
    ("balancer alone / nginx, CPU 0 all (with irq + softirq billed to no task)", 0.50, lambda rw, by: rw["r_cpu0_all"]),
    ("balancer + agent / nginx", 1.00, lambda rw, by: rw["r_total"]),
    ("balancer + agent / rathole (server + client)", 0.60,
     lambda rw, by: ratio(rw["total"], by["rathole"]["total"]) if "rathole" in by else None),
    ("io_uring / epoll, same binary, balancer + agent", 0.85,
     lambda rw, by: ratio(by["ringway-uring"]["total"], by["ringway-epoll"]["total"])
     if rw["key"] == "ringway-uring" and "ringway-epoll" in by else None),
    ("balancer alone / nginx at a fixed {rate} req/s (open loop)", 0.70, lambda rw, by: rw["r_fixed_cpu0"]),
    ("the same, CPU 0 all", 0.70, lambda rw, by: rw["r_fixed_cpu0_all"]),
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
    w(f"A round counts when every system's row in it stayed under {NOISY:.0f} % of other tasks' CPU")
    w("on both CPUs; `*noisy*` marks a figure for which no round was clean (all rounds used).")
    if len({r["workers"] for r in rows}) == 1 and rows[0]["workers"] != "1":
        w(f"These rows are from the {rows[0]['workers']}-worker runs.")
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
                cell += " ✓" if statistics.median(used) <= target else " ✗"
            cells.append(cell)
        w(f"| {name.format(rate=rate)} | ≤ {target:.2f} | " + " | ".join(cells) + " |")
    w("")
    w("✓ / ✗: the median meets / misses the target. The io_uring / epoll figure is in the uring column.")
    w("*CPU 0 all* adds the irq + softirq time on CPU 0 that the kernel billed to no task (see above).")


def calibration(cal, rates, w):
    if not cal and not rates:
        return
    w("")
    w("## Fixed rates and the calibration pass")
    w("")
    if cal:
        w(f"Before the rounds each system ran once, `wrk -t1 -c{os.environ.get('CONNS', '?')} "
          f"-d{os.environ.get('CAL_DURATION', '?')}s` closed loop after the warm-up; the rates given in % "
          f"(`RATES=\"{os.environ.get('RATES', '')}\"`) are that share of the slowest system's req/s, to the "
          "nearest 100, and were used in every round.")
        w("")
        w("| workers | system | req/s (calibration) |")
        w("|---|---|---|")
        for n, _key, label, rps in cal:
            w(f"| {n} | {label} | {rps} |")
        w("")
    for n, slowest, fixed in rates:
        w(f"- {n} worker(s): fixed rates {', '.join(fixed.split())} req/s"
          + (f" (slowest system {slowest} req/s)" if slowest else "")
          + f"; `RATE={os.environ.get('RATE', '')}` is the issue-10 table's rate.")


def fixed_rate_tables(rows, w):
    """p99 and CPU per request at each fixed rate, per system: medians over clean rows."""
    groups = {}
    for r in rows:
        groups.setdefault(r["workers"], []).append(r)
    for workers, mine in groups.items():
        rates = sorted({rate for r in mine for rate in r["fixed"]})
        if not rates:
            continue
        keys = list(dict.fromkeys(r["key"] for r in mine))
        w("")
        w(f"## p99 at fixed rates, {workers} worker(s): median over the clean rounds (× nginx, same round)")
        w("")
        w("Open loop (ringway-loadgen), latency corrected for coordinated omission. Each cell: p99 ms (ratio of")
        w("the per-round p99 to nginx's, median); then CPU per request: total (entrance + far half) and")
        w("*CPU 0 all* (the entrance's own CPU plus the irq + softirq on CPU 0 billed to no task), µs.")
        w("")
        w("| system | rounds used | " + " | ".join(f"p99 at {x}" for x in rates) + " | "
          + " | ".join(f"total µs/req at {x}" for x in rates) + " | "
          + " | ".join(f"CPU 0 all µs/req at {x}" for x in rates) + " |")
        w("|---|---|" + "---|" * (3 * len(rates)))
        for key in keys:
            used, tag = used_rows([r for r in mine if r["key"] == key])
            p99s, totals, alls = [], [], []
            for x in rates:
                runs = [(r["fixed"].get(x), (r["nginx"] or {}).get("fixed", {}).get(x)) for r in used]
                p = median([a["p99"] for a, _ in runs if a])
                rr = median([ratio(a["p99"], b["p99"]) for a, b in runs if a and b])
                p99s.append(f"{fmt(p)} ({fmt(rr)}×)" if key != "nginx" else fmt(p))
                totals.append(fmt(median([a["total"] for a, _ in runs if a])))
                alls.append(fmt(median([a["cpu0_all"] for a, _ in runs if a])))
            w(f"| {used[0]['label']} | {tag} | " + " | ".join(p99s) + " | " + " | ".join(totals) + " | "
              + " | ".join(alls) + " |")


def accounting_table(rows, w):
    """Where CPU 0's time went in each kind of run: medians over all rounds."""
    w("")
    w("## CPU 0's time by whom it was billed to, % of each run (median over all rounds)")
    w("")
    w("From /proc/stat's CPU 0 columns and the entrance's /proc/PID/task/*/stat: *process* = the")
    w("entrance's utime+stime; *other tasks* = the rest of CPU 0's user+nice+system; *irq+softirq*")
    w("= irq and softirq time billed to no task (a tick that interrupts a task in softirq is billed to that")
    w("task too; one that lands on the idle CPU to none); *steal* = taken by the hypervisor. Idle is the rest.")
    w("Exact when nothing else ran on CPU 0; with other tasks there, irq+softirq also holds softirq ticks")
    w("billed to the process (the row is noisy then).")
    w("")
    w("| workers | system | run | process | other tasks | irq+softirq, billed to no task | steal | irq+softirq µs/req |")
    w("|---|---|---|---|---|---|---|---|")
    seen = {}
    for r in rows:
        for run in r["all_runs"]:
            seen.setdefault((r["workers"], r["key"], run["run"]), {"label": r["label"], "runs": []})["runs"].append(run)
    for (workers, _key, run), v in seen.items():
        cols = [median([x["acct"][i] for x in v["runs"]]) for i in range(4)]
        name = "wrk" if run == "wrk" else f"{run} req/s"
        w(f"| {workers} | {v['label']} | {name} | " + " | ".join(f"{fmt(c, 0)} %" for c in cols)
          + f" | {fmt(median([x['irq0'] for x in v['runs']]))} |")


def scaling_table(rows, w):
    counts = sorted({int(r["workers"]) for r in rows})
    if len(counts) < 2:
        return
    nproc = os.environ.get("NPROC", "?")
    w("")
    w(f"## Worker scaling ({', '.join(map(str, counts))} workers): median over the clean rounds")
    w("")
    w("Each system ran with N workers (nginx `worker_processes N`, HAProxy `nbthread N`, rathole N tokio")
    w("workers per side, ringway `--workers N` for balancer and agent), its entrance pinned to CPUs 0..N-1.")
    w("The backend (1 worker), the far half and the load generator (one wrk thread) stay on one CPU: CPU N,")
    w(f"or the last CPU when the entrance covers them all. On this {nproc}-CPU machine the entrance with")
    w("N ≥ 2 shares that CPU with the backend, the far half and the generator, so req/s hardly grows and")
    w("the CPU figures (and the *others* shares and irq+softirq, then counted over the whole machine) include that")
    w("contention. Figures for 4–16 workers are missing: no machine with more CPUs was available to this run.")
    w("")
    w("| system | workers | rounds used | req/s (wrk) | req/s / 1 worker | req/s / nginx | total µs/req "
      "| CPU 0 all µs/req | total CPU / nginx |")
    w("|---|---|---|---|---|---|---|---|---|")
    keys = list(dict.fromkeys(r["key"] for r in rows))
    for key in keys:
        base = None
        for n in counts:
            mine = [r for r in rows if r["key"] == key and int(r["workers"]) == n]
            if not mine:
                continue
            used, tag = used_rows(mine)
            rps = median([r["rps"] for r in used])
            if base is None:
                base = rps
            w(f"| {used[0]['label']} | {n} | {tag} | {fmt(rps, 0)} | {fmt(ratio(rps, base))} "
              f"| {spread([r['r_rps'] for r in used])} | {spread([r['total'] for r in used])} "
              f"| {spread([r['cpu0_all'] for r in used])} | {spread([r['r_total'] for r in used])} |")


def main():
    env = os.environ.get
    rate = env("RATE", "")
    runs = read_runs(sys.argv[1])
    cal = read_tsv(sys.argv[2], 4) if len(sys.argv) > 2 else []
    rates = read_tsv(sys.argv[3], 3) if len(sys.argv) > 3 else []
    rows = with_ratios(rows_of(runs, rate))
    rate_text = rate or "RATE (none)"
    conns = env("CONNS", "?")
    duration = env("DURATION", "?")
    workers = env("WORKERS", "1").split()
    out = []
    w = out.append
    w(f"# {env('TITLE', 'side-by-side benchmark')}")
    w("")
    w(f"Command: `{env('COMMAND', '?')}` (release builds; {env('ELAPSED', '?')} s of measuring, calibration included).")
    w("")
    w(f"Machine: {env('MACHINE', '?')}. Versions: {env('VERSIONS', '?')}; ringway built from "
      f"{env('RINGWAY_CODE', '?')}.")
    w("")
    w(f"Host load average (1/5/15 min) before: {env('LOAD_BEFORE', '?')}, after: {env('LOAD_AFTER', '?')}")
    w("(other work on the machine adds noise; the systems of one round ran back to back, and each")
    w("ratio compares a system with the nginx run of the same round).")
    w("")
    w(f"Backend transport: **{env('TRANSPORT', 'TCP')}** (`BACKEND={env('BACKEND', 'tcp')}`): every system reaches the")
    w("shared backend that way" + (" (nginx `server unix:…`, HAProxy `server b1 /path`, ringway `--backend unix:/path`)."
                                     if env("BACKEND") == "unix" else "."))
    w("")
    w("Setup: the process under test alone on CPU 0 (`taskset -c 0`): nginx with 1 worker, HAProxy")
    w("with `nbthread 1`, the rathole server, or `ringway-balancer --workers 1`. On CPU 1: the backend")
    w("(nginx `return 200`, 12-byte body, shared by all), the far half of a tunnel (ringway agent with 1")
    w("thread, rathole client) and the load generator. Load: keep-alive GETs, "
      f"`wrk -t1 -c{conns} -d{duration}s` after a {env('WARMUP', '?')} s warm-up, then "
      f"`ringway-loadgen -c {conns} --spin-us 0` for {duration} s at each fixed rate")
    w("(open loop, latency corrected for coordinated omission; 1 s warm-up).")
    if workers != ["1"]:
        w(f"Worker counts: {' '.join(workers)} (with N workers the entrance gets CPUs 0..N-1; see *Worker scaling*).")
    w(f"CPU µs/request = utime+stime of all the process's threads (/proc/PID/task/*/stat, {env('CLK_TCK', '?')} Hz")
    w("ticks) over a run, divided by the requests completed in it. *CPU 0* is the proxy / tunnel")
    w("entrance; *far* the tunnel's other half (agent, rathole client); *total* their sum. The backend's")
    w("and the load generator's CPU are not counted for anyone. *irq+softirq* is the irq and softirq time")
    w("on CPU 0 that the kernel billed to no task (mostly softirq on an idle CPU 0 while the entrance")
    w("sleeps), per request; *CPU 0 all* = CPU 0 + irq+softirq, so that no system is flattered by time")
    w("billed to no task. *Others on CPU 0 / CPU 1* = the share of that CPU used by other tasks' user and")
    w("system time, plus steal (CPU 0: all tasks but the process under test; CPU 1: all but backend, far")
    w("half and load generator), wrk run / the highest of the fixed-rate runs: the noise indicator of")
    w("that row. Irq and softirq time is not noise: it is reported in its own column.")
    calibration(cal, rates, w)
    w("")
    w("## Measurements")
    w("")
    w(f"| round | system | req/s (wrk) | p99 ms (wrk) | CPU 0 µs/req | irq+softirq µs/req | CPU 0 all µs/req "
      f"| far µs/req | total µs/req | p99 ms at {rate_text} req/s | CPU 0 µs/req at {rate_text} req/s "
      f"| CPU 0 all µs/req at {rate_text} req/s | total µs/req at {rate_text} req/s "
      "| others on CPU 0 % | others on CPU 1 % |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        w(f"| {r['round']} | {r['label']} | {fmt(r['rps'], 0)} | {fmt(r['p99'])} | {fmt(r['cpu0'])} "
          f"| {fmt(r['irq0'])} | {fmt(r['cpu0_all'])} | {fmt(r['far'])} | {fmt(r['total'])} "
          f"| {fmt(r['fixed_p99'])} | {fmt(r['fixed_cpu0'])} | {fmt(r['fixed_cpu0_all'])} "
          f"| {fmt(r['fixed_total'])} | {r['others0_text']} | {r['others1_text']} |")
    notes = [r for r in rows if r["notes"]]
    if notes:
        w("")
        w("Errors and warnings:")
        for r in notes:
            w(f"- round {r['round']}, {r['label']}: {'; '.join(r['notes'])}")
    w("")
    w("## Ratios vs nginx (same round; below 1.00 = less CPU / lower latency / fewer req/s than nginx)")
    w("")
    w(f"| round | system | total CPU / nginx | CPU 0 / nginx | CPU 0 all / nginx | req/s / nginx | p99 (wrk) / nginx "
      f"| p99 at {rate_text} req/s / nginx | CPU 0 at {rate_text} req/s / nginx "
      f"| CPU 0 all at {rate_text} req/s / nginx | total CPU at {rate_text} req/s / nginx |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["key"] == "nginx":
            continue
        w(f"| {r['round']} | {r['label']} | {fmt(r['r_total'])} | {fmt(r['r_cpu0'])} | {fmt(r['r_cpu0_all'])} "
          f"| {fmt(r['r_rps'])} | {fmt(r['r_p99'])} | {fmt(r['r_fixed_p99'])} | {fmt(r['r_fixed_cpu0'])} "
          f"| {fmt(r['r_fixed_cpu0_all'])} | {fmt(r['r_fixed_total'])} |")
    round_ids = sorted({r["round"] for r in rows})
    if len(round_ids) > 1:
        w("")
        w(f"## Summary over {len(round_ids)} rounds: median (min–max)")
        w("")
        w("Over the clean rounds of each system: those in which neither it nor that round's nginx saw more")
        w(f"than {NOISY:.0f} % of either CPU used by other tasks (all rounds, marked *noisy*, where none was clean).")
        w("")
        w("| system | rounds used | total µs/req | total CPU / nginx | CPU 0 / nginx | CPU 0 all / nginx | req/s / nginx "
          f"| p99 at {rate_text} req/s, ms | p99 at {rate_text} req/s / nginx | total CPU at {rate_text} req/s / nginx |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for key, n in dict.fromkeys((r["key"], r["workers"]) for r in rows):
            used, tag = used_rows([r for r in rows if r["key"] == key and r["workers"] == n])
            w(f"| {used[0]['label']} | {tag} | {spread([r['total'] for r in used])} "
              f"| {spread([r['r_total'] for r in used])} | {spread([r['r_cpu0'] for r in used])} "
              f"| {spread([r['r_cpu0_all'] for r in used])} "
              f"| {spread([r['r_rps'] for r in used])} | {spread([r['fixed_p99'] for r in used])} "
              f"| {spread([r['r_fixed_p99'] for r in used])} | {spread([r['r_fixed_total'] for r in used])} |")
    fixed_rate_tables(rows, w)
    accounting_table(rows, w)
    scaling_table(rows, w)
    skipped = env("SKIPPED_TEXT", "").strip()
    if skipped:
        w("")
        w("Not measured: " + "; ".join(skipped.splitlines()) + ".")
    if env("WANTS_RINGWAY") == "1":
        first = workers[0] if workers else "1"
        tunnel_targets([r for r in rows if r["workers"] == ("1" if "1" in workers else first)], rate_text, w)
    if env("WANTS_CLASSIC") == "1":
        w("")
        w("Target (issue 8): ringway classic mode ≤ 0.8× nginx's CPU/request (total CPU ratio ≤ 0.80;")
        w("there is no far half, so total = CPU 0).")
    print("\n".join(out))


if __name__ == "__main__":
    main()
