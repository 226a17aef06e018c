//! results/README.md's index of `compare` runs: the lines between two markers, rebuilt from every
//! `results/*/results.json` (quick runs left out), newest first, each with its headline.
//! `compare` rebuilds it after each run; `compare --reindex` rebuilds it alone.

use std::path::Path;

use super::results::Results;
use super::summary::headline;

const START: &str = "<!-- compare-index:start (written by `compare`; rebuild: cargo run --release -p ringway-benches --bin compare -- --reindex) -->";
const END: &str = "<!-- compare-index:end -->";

/// The index table for the runs under `results`.
pub fn table(results: &Path) -> Result<String, String> {
    let mut rows: Vec<(String, Results)> = Vec::new();
    let dir =
        std::fs::read_dir(results).map_err(|e| format!("reading {}: {e}", results.display()))?;
    for entry in dir.flatten() {
        let json = entry.path().join("results.json");
        let Ok(text) = std::fs::read_to_string(&json) else {
            continue;
        };
        let r: Results = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a compare results.json: {e}", json.display()))?;
        if !r.quick {
            rows.push((entry.file_name().to_string_lossy().into_owned(), r));
        }
    }
    rows.sort_by(|a, b| b.1.started_at.cmp(&a.1.started_at));
    let mut out = String::from("| run | scenario | rounds | headline (ratios: same round, median over rounds) |\n|---|---|---:|---|\n");
    for (name, r) in &rows {
        out.push_str(&format!(
            "| [{name}]({name}/summary.md) | `{}` | {} | {} |\n",
            r.scenario,
            r.plan.rounds,
            headline(r)
        ));
    }
    if rows.is_empty() {
        out.push_str("| — | | | no run yet |\n");
    }
    Ok(out)
}

/// Rewrites the marked section of `readme` (appended at the end if there is none).
pub fn update(readme: &Path, results: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(readme).unwrap_or_default();
    let section = format!("{START}\n{}{END}", table(results)?);
    let new = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{section}{}", &text[..a], &text[b + END.len()..]),
        _ => format!("{}\n\n## `compare` runs\n\n{section}\n", text.trim_end()),
    };
    std::fs::write(readme, new).map_err(|e| format!("writing {}: {e}", readme.display()))
}
