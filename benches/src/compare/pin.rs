//! The pin plan: `ringway-tune --pin-plan 1` says which CPU the system under test's entrance gets
//! and which are left for the backend, the far half and the load generator; its text report is
//! saved as host.txt.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::results::Pinning;

/// The plan and the text report (`ringway-tune --pin-plan 1`).
pub fn plan(bins: &Path) -> Result<(Pinning, String), String> {
    let tune = bins.join("ringway-tune");
    let run = |json: bool| {
        let mut cmd = Command::new(&tune);
        cmd.args(["--pin-plan", "1"]);
        if json {
            cmd.arg("--json");
        }
        cmd.output()
            .map_err(|e| format!("running {}: {e}", tune.display()))
            .and_then(|o| {
                if o.status.success() {
                    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
                } else {
                    Err(format!(
                        "{} --pin-plan 1 failed: {}",
                        tune.display(),
                        String::from_utf8_lossy(&o.stderr)
                    ))
                }
            })
    };
    let text = run(false)?;
    let doc: Value =
        serde_json::from_str(&run(true)?).map_err(|e| format!("ringway-tune --json: {e}"))?;
    let list = |v: &Value| -> Vec<usize> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().map(|n| n as usize))
                    .collect()
            })
            .unwrap_or_default()
    };
    let entrance = list(&doc["pin_plan"]["workers"]);
    let mut rest = list(&doc["pin_plan"]["rest"]);
    if entrance.is_empty() {
        return Err("ringway-tune --pin-plan 1 gave no worker CPU".into());
    }
    if rest.is_empty() {
        // One CPU: everything shares it.
        rest.clone_from(&entrance);
    }
    Ok((
        Pinning {
            entrance_cpus: entrance,
            rest_cpus: rest,
        },
        format!("$ ringway-tune --pin-plan 1\n{text}"),
    ))
}
