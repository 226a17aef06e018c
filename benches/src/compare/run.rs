//! One `compare` run from start to end: build, peers, pin plan, backend, the rounds, and the
//! results directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::results::{Host, Plan, Results, Run, Skipped};
use super::scenario::{Kind, Scenario, System};
use super::systems::{self, Ctx, Ports};
use super::{idle, index, measure, peers, pin, plot, proc_stat, summary};

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scenario.
    pub scenario: Scenario,
    /// A few seconds per system, one round.
    pub quick: bool,
    /// Rounds (default 3; quick 1).
    pub rounds: Option<u32>,
    /// Seconds per measured run (default 5; quick 1).
    pub duration: Option<f64>,
    /// Seconds of warm-up (default 1; quick 0.3).
    pub warmup: Option<f64>,
    /// Open-loop rate.
    pub rate: Option<f64>,
    /// Connections.
    pub connections: Option<usize>,
    /// Idle connections (idle scenarios).
    pub idle_conns: Option<usize>,
    /// Only these system keys.
    pub systems: Vec<String>,
    /// Install missing peers first.
    pub install_peers: bool,
    /// Act as if no peer were installed: ringway alone, against the hello backend.
    pub no_peers: bool,
    /// Where `<date>-<scenario>/` goes (and whose README.md index is rebuilt, if it has one).
    pub out_dir: PathBuf,
    /// ringway's binaries (default: the directory of this binary).
    pub bin_dir: Option<PathBuf>,
    /// Do not run `cargo build` first.
    pub no_build: bool,
    /// First of four loopback ports.
    pub base_port: u16,
    /// The command line, for the record.
    pub command: String,
}

/// Deletes the work directory at the end (kept when `RINGWAY_COMPARE_KEEP_WORK` is set).
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::env::var_os("RINGWAY_COMPARE_KEEP_WORK").is_some() {
            eprintln!("== kept {} (RINGWAY_COMPARE_KEEP_WORK)", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the scenario; returns the results directory. Processes are stopped whatever happens.
pub fn run(o: &Options) -> Result<PathBuf, String> {
    let started = Instant::now();
    let started_at = super::utc_now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bins = match &o.bin_dir {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("finding this binary: {e}"))?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("this binary has no directory")?,
    };
    if !o.no_build {
        build(&root, &bins)?;
    }
    let mut found = peers::detect();
    if o.install_peers {
        found = peers::install_missing(&found);
    }
    if o.no_peers {
        for p in &mut found {
            p.path = None;
        }
    }
    let (pin, host_txt) = pin::plan(&bins)?;
    let spec = o.scenario.spec();
    let mut load = spec.load.clone();
    if o.quick {
        // Within what a debug build of loadgen keeps up with.
        load.rate = load.rate.min(500.0);
    }
    if let Some(r) = o.rate {
        load.rate = r;
    }
    if let Some(c) = o.connections {
        load.connections = c;
    }
    let idle_conns = match spec.kind {
        Kind::Idle { conns } => Some(o.idle_conns.unwrap_or(if o.quick { 200 } else { conns })),
        Kind::Load => None,
    };
    if o.quick && matches!(o.scenario, Scenario::ManyAgents) {
        // 1,000 agent threads do not start in a few seconds on a small machine.
        eprintln!("== quick: many-agents runs 20 agents instead of 1,000");
    }
    let mut skipped = Vec::new();
    let mut systems: Vec<System> = Vec::new();
    for s in spec.systems.iter().copied() {
        let s = quick_size(s, o.quick);
        if !o.systems.is_empty() && !o.systems.contains(&s.key()) {
            continue;
        }
        match s.peer() {
            Some(p) if peers::find(&found, p).is_none() => skipped.push(Skipped {
                system: s.key(),
                reason: format!("{p} is not installed (--install-peers, or by hand)"),
            }),
            _ => systems.push(s),
        }
    }
    if systems.is_empty() {
        return Err(format!("nothing to run: skipped {skipped:?}"));
    }
    let baseline = spec
        .systems
        .first()
        .map(|s| quick_size(*s, o.quick).key())
        .filter(|k| systems.iter().any(|s| &s.key() == k))
        .unwrap_or_else(|| systems[0].key());
    let rounds = o.rounds.unwrap_or(if o.quick { 1 } else { 3 }).max(1);
    let duration = o.duration.unwrap_or(if o.quick { 1.0 } else { 5.0 });
    let warmup = o.warmup.unwrap_or(if o.quick { 0.3 } else { 1.0 });

    let date = &started_at[..10];
    let out = unique_dir(
        &o.out_dir,
        &format!(
            "{date}-{}{}",
            o.scenario.name(),
            if o.quick { "-quick" } else { "" }
        ),
    )?;
    let work =
        WorkDir(std::env::temp_dir().join(format!("ringway-compare-{}", std::process::id())));
    std::fs::create_dir_all(&work.0).map_err(|e| format!("creating {}: {e}", work.0.display()))?;
    if std::env::var_os("RINGWAY_COMPARE_KEEP_WORK").is_none() {
        super::procs::remove_on_signal(Some(work.0.clone()));
    }
    let nofile = ringway_tuning::limits::raise_nofile(1 << 20)
        .ok()
        .and_then(|l| l.soft)
        .unwrap_or(4096);
    let needs_tls = load.https
        || systems
            .iter()
            .any(|s| matches!(s, System::RingwayTlsTunnel(_)));
    let pki = if needs_tls {
        Some(super::pki::Pki::create(&work.0)?)
    } else {
        None
    };
    let mut ctx = Ctx {
        work: work.0.clone(),
        bins,
        peers: found.clone(),
        pin: pin.clone(),
        ports: Ports::from_base(o.base_port),
        nofile,
        commands: Vec::new(),
        https: load.https,
        pki,
    };
    let body = (load.body_bytes > 0).then(|| work.0.join("body.bin"));
    if let Some(b) = &body {
        std::fs::write(b, vec![b'x'; load.body_bytes])
            .map_err(|e| format!("writing {}: {e}", b.display()))?;
    }
    let plan = measure::LoadPlan {
        load: load.clone(),
        duration,
        warmup,
        body,
        clk_tck: proc_stat::clk_tck(),
    };
    let loadavg_before = proc_stat::loadavg();
    let (backend, backend_label) = systems::start_backend(&mut ctx)?;
    eprintln!("== backend: {backend_label}");
    let mut runs = Vec::new();
    let mut notes = vec![format!("backend: {backend_label}")];
    let mut failures = 0;
    for round in 1..=rounds {
        for system in order(&systems, &baseline, round) {
            let key = system.key();
            eprintln!("== round {round}/{rounds}: {key}");
            match one(&mut ctx, system, &backend, &plan, idle_conns, round, &out) {
                Ok(r) => runs.push(r),
                Err(_) if super::procs::stopping() => return Err("interrupted".into()),
                Err(e) => {
                    eprintln!("== {key} failed: {e}");
                    notes.push(format!("round {round}, {key} failed: {e}"));
                    failures += 1;
                }
            }
        }
    }
    drop(backend);
    let summary_rows = super::results::summarize(&runs, &baseline);
    let (commit, dirty) = git_state(&root);
    let results = Results {
        schema_version: 1,
        tool: "ringway-compare".into(),
        scenario: o.scenario.name().into(),
        quick: o.quick,
        started_at,
        elapsed_s: started.elapsed().as_secs_f64(),
        commit,
        dirty,
        command: o.command.clone(),
        binaries: ctx.bins.display().to_string(),
        host: host_facts(loadavg_before),
        pinning: pin,
        plan: Plan {
            request: load,
            duration_s: duration,
            warmup_s: warmup,
            rounds,
            generator: "ringway-loadgen".into(),
            idle_conns,
        },
        baseline,
        peers: found,
        skipped,
        runs,
        summary: summary_rows,
        notes,
    };
    write_dir(&out, &results, &ctx.commands, &host_txt)?;
    if o.out_dir.join("README.md").is_file() {
        index::update(&o.out_dir.join("README.md"), &o.out_dir)?;
    }
    if failures > 0 {
        return Err(format!(
            "{failures} system run(s) failed (see {}/summary.md)",
            out.display()
        ));
    }
    Ok(out)
}

/// In quick mode the many-agents run is smaller.
fn quick_size(s: System, quick: bool) -> System {
    match s {
        System::ManyAgents { agents, .. } if quick && agents > 20 => System::ManyAgents {
            agents: 20,
            routes_per_agent: 10,
        },
        s => s,
    }
}

/// The baseline first, the others rotated by one place per round.
fn order(systems: &[System], baseline: &str, round: u32) -> Vec<System> {
    let mut out: Vec<System> = systems
        .iter()
        .copied()
        .filter(|s| s.key() == baseline)
        .collect();
    let rest: Vec<System> = systems
        .iter()
        .copied()
        .filter(|s| s.key() != baseline)
        .collect();
    for i in 0..rest.len() {
        out.push(rest[(i + round as usize - 1) % rest.len()]);
    }
    out
}

/// Starts, measures and stops one system.
fn one(
    ctx: &mut Ctx,
    system: System,
    backend: &super::procs::Guard,
    plan: &measure::LoadPlan,
    idle_conns: Option<usize>,
    round: u32,
    out: &Path,
) -> Result<Run, String> {
    let key = system.key();
    let running = systems::start(ctx, system)?;
    let tag = format!("{key}-round{round}");
    let mut run = Run {
        round,
        system: key,
        label: running.label.clone(),
        closed: None,
        open: None,
        idle: None,
        hgrm: None,
    };
    if let Some(n) = idle_conns {
        let cap = ctx.conn_cap(system);
        let idle = idle::measure(ctx, &running, n, cap, &tag)?;
        if let Some(why) = &idle.capped {
            eprintln!("   {}: {why}", run.system);
        }
        run.idle = Some(idle);
    } else {
        let hgrm = format!("{tag}.hgrm");
        let (closed, open) =
            measure::measure(ctx, &running, backend, plan, &tag, &out.join(&hgrm))?;
        eprintln!(
            "   {:.0} req/s, total CPU {:.2} µs/req, open-loop p99 {:.2} ms",
            closed.rps,
            closed.total_cpu_us,
            open.p99_us as f64 / 1e3
        );
        run.closed = Some(closed);
        run.open = Some(open);
        run.hgrm = Some(hgrm);
    }
    Ok(run)
}

/// `base/name`, or `name-2`, `name-3`… if taken; created.
fn unique_dir(base: &Path, name: &str) -> Result<PathBuf, String> {
    let mut dir = base.join(name);
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{name}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// results.json, summary.md, latency.svg, commands.txt, host.txt, commit.txt.
fn write_dir(out: &Path, r: &Results, commands: &[String], host_txt: &str) -> Result<(), String> {
    let w = |name: &str, text: &str| {
        std::fs::write(out.join(name), text)
            .map_err(|e| format!("writing {}/{name}: {e}", out.display()))
    };
    let json = serde_json::to_string_pretty(r).map_err(|e| format!("results.json: {e}"))?;
    w("results.json", &(json + "\n"))?;
    w("summary.md", &summary::render(r))?;
    w("host.txt", host_txt)?;
    w("commit.txt", &format!("{}\n", r.commit))?;
    let mut cmds = format!("# {}\n# commit {}\n", r.command, r.commit);
    for c in commands {
        cmds.push_str(c);
        cmds.push('\n');
    }
    w("commands.txt", &cmds)?;
    // One curve per system: the round with its median open-loop p99.
    let mut curves = Vec::new();
    for row in &r.summary {
        let mut mine: Vec<&Run> = r
            .runs
            .iter()
            .filter(|x| x.system == row.system && x.hgrm.is_some())
            .collect();
        mine.sort_by_key(|x| x.open.as_ref().map_or(0, |l| l.p99_us));
        if let Some(run) = mine.get(mine.len() / 2) {
            if let Some(h) = &run.hgrm {
                curves.push((format!("{} (round {})", row.system, run.round), out.join(h)));
            }
        }
    }
    if !curves.is_empty() {
        let refs: Vec<(String, &Path)> = curves
            .iter()
            .map(|(l, p)| (l.clone(), p.as_path()))
            .collect();
        let title = format!(
            "{}: latency at {} req/s (corrected)",
            r.scenario, r.plan.request.rate
        );
        plot::write(&refs, &title, &out.join("latency.svg"))?;
    }
    Ok(())
}

/// `cargo build` of what the run starts, in the profile of `bins`.
fn build(root: &Path, bins: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "-q"]);
    if bins.ends_with("release") {
        cmd.arg("--release");
    }
    cmd.args([
        "-p",
        "ringway-balancer",
        "-p",
        "ringway-agent",
        "-p",
        "ringway-loadgen",
        "-p",
        "ringway-tuning",
        "-p",
        "ringway-benches",
        "--bins",
    ]);
    eprintln!("== building ringway's binaries ({})", bins.display());
    let ok = cmd
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err("cargo build failed".into())
    }
}

/// The commit and the files with uncommitted changes that go into the binaries.
fn git_state(root: &Path) -> (String, Vec<String>) {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]).map_or("?".into(), |s| s.trim().to_owned());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "core",
        "io",
        "balancer",
        "agent",
        "upstream",
        "tuning",
        "loadgen",
        "benches",
        "log",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .unwrap_or_default()
    .lines()
    .filter_map(|l| l.get(3..).map(str::to_owned))
    .collect();
    (commit, dirty)
}

fn host_facts(loadavg_before: String) -> Host {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("?".into(), |s| s.trim().to_owned());
    Host {
        nproc: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or("?".into(), |s| s.trim().to_owned()),
        loadavg_before,
        loadavg_after: proc_stat::loadavg(),
    }
}
