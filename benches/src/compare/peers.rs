//! The peers the harness compares against and the tools it drives: found on `PATH` (plus
//! `/usr/sbin` and `~/.cargo/bin`), their versions read, and — with `--install-peers` — the
//! missing ones installed: nginx, HAProxy and wrk with apt-get (as root), rathole and oha with
//! `cargo install`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One external program.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    /// `nginx`, `haproxy`, `wrk`, `rathole`, `oha`.
    pub name: String,
    /// Where it was found; `None`: not installed.
    pub path: Option<PathBuf>,
    /// Its version as it reports it (`?` if unreadable).
    pub version: String,
    /// How to install it by hand.
    pub install: String,
}

/// Every peer and how it is installed: (name, apt package or `None` for cargo install).
const PEERS: &[(&str, Option<&str>)] = &[
    ("nginx", Some("nginx")),
    ("haproxy", Some("haproxy")),
    ("wrk", Some("wrk")),
    ("rathole", None),
    ("oha", None),
];

/// The peers as installed now.
pub fn detect() -> Vec<Peer> {
    PEERS
        .iter()
        .map(|&(name, apt)| {
            let path = which(name);
            let version = path
                .as_deref()
                .map_or_else(String::new, |p| version(name, p));
            let install = match apt {
                Some(pkg) => format!("apt-get install -y {pkg}"),
                // rathole without --locked: its lock file pins versions that no longer build.
                None if name == "rathole" => "cargo install rathole".to_owned(),
                // oha with --locked: its newest dependencies need a newer rustc than CI's.
                None => "cargo install oha --locked".to_owned(),
            };
            Peer {
                name: name.to_owned(),
                path,
                version,
                install,
            }
        })
        .collect()
}

/// Installs every missing peer (apt needs root; failures are reported, not fatal); returns the
/// peers as found afterwards.
pub fn install_missing(peers: &[Peer]) -> Vec<Peer> {
    let missing: Vec<&Peer> = peers.iter().filter(|p| p.path.is_none()).collect();
    let apt: Vec<&str> = missing
        .iter()
        .filter_map(|p| {
            PEERS
                .iter()
                .find(|(n, _)| *n == p.name)
                .and_then(|(_, a)| *a)
        })
        .collect();
    if !apt.is_empty() {
        if which("apt-get").is_none() || !is_root() {
            eprintln!(
                "== cannot apt-get install {} (needs root and apt-get)",
                apt.join(" ")
            );
        } else {
            eprintln!("== apt-get install -y {}", apt.join(" "));
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            let ok = Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(&apt)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("== apt-get install failed");
            }
        }
    }
    for p in missing
        .iter()
        .filter(|p| p.install.starts_with("cargo install"))
    {
        eprintln!("== {} (compiles for a few minutes)", p.install);
        // The install line's words after `cargo`: the crate and its flags.
        let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(p.install.split_whitespace().skip(1))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("== cargo install {} failed", p.name);
        }
    }
    detect()
}

/// The peer called `name`, if installed.
pub fn find<'a>(peers: &'a [Peer], name: &str) -> Option<&'a Peer> {
    peers.iter().find(|p| p.name == name && p.path.is_some())
}

/// `name` on PATH, /usr/sbin, /sbin or ~/.cargo/bin.
pub fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The version `name` reports, in short (`1.22.1`).
fn version(name: &str, path: &Path) -> String {
    let flag = match name {
        "nginx" | "haproxy" | "wrk" => "-v",
        _ => "--version",
    };
    let Ok(out) = Command::new(path).arg(flag).output() else {
        return "?".into();
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_version(name, &text).unwrap_or_else(|| "?".into())
}

/// Picks the version out of a tool's `-v`/`--version` text.
pub fn parse_version(name: &str, text: &str) -> Option<String> {
    let word = match name {
        // "nginx version: nginx/1.22.1"
        "nginx" => text.split('/').nth(1)?.split_whitespace().next()?,
        // "HAProxy version 2.6.12-1+deb12u1 2023/..." | "wrk 4.1.0 [epoll] ..." | "oha 1.4.5"
        "haproxy" => text.lines().next()?.split_whitespace().nth(2)?,
        // rathole: "Build Version:      0.5.0"
        "rathole" => text
            .lines()
            .find(|l| l.contains("Build Version"))
            .and_then(|l| l.split_whitespace().last())?,
        _ => text.lines().next()?.split_whitespace().nth(1)?,
    };
    // Debian's wrk says "debian/4.1.0".
    let word = word.rsplit('/').next().unwrap_or(word);
    Some(word.split('-').next().unwrap_or(word).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_each_tools_output() {
        assert_eq!(
            parse_version("nginx", "nginx version: nginx/1.22.1\n").as_deref(),
            Some("1.22.1")
        );
        assert_eq!(
            parse_version(
                "haproxy",
                "HAProxy version 2.6.12-1+deb12u1 2023/12/16 - https://haproxy.org/\n"
            )
            .as_deref(),
            Some("2.6.12")
        );
        assert_eq!(
            parse_version("wrk", "wrk 4.1.0 [epoll] Copyright (C) 2012 Will Glozer\n").as_deref(),
            Some("4.1.0")
        );
        assert_eq!(
            parse_version(
                "rathole",
                "rathole\nBuild Timestamp:     x\nBuild Version:       0.5.0\n"
            )
            .as_deref(),
            Some("0.5.0")
        );
        assert_eq!(
            parse_version("oha", "oha 1.4.5\n").as_deref(),
            Some("1.4.5")
        );
    }
}
