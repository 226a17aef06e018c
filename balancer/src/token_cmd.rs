//! `ringway-balancer token new` and `token hash`: make the `[[agents.tokens]]` entry of an agent
//! token (its SHA-256 and scope), drawing a new token from the OS's random source or hashing
//! one read from stdin (to move a deprecated plaintext token into an entry).

use std::io::BufRead;

use base64::Engine as _;
use clap::{Args, Subcommand};
use ringway_core::route::{HostPattern, PathPrefix};

use crate::config::{check_token_name, AgentToken, TokenDigest};

/// What every new token starts with, so that one is recognised in a file, a log or a paste (and
/// secret scanners can be taught it).
pub const TOKEN_PREFIX: &str = "rwt_";

/// Random bytes in a new token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// `ringway-balancer token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Draw a new agent token; print it and the `[[agents.tokens]]` entry (its SHA-256 and
    /// scope) to paste into the configuration.
    New(ScopeArgs),
    /// Read a token from stdin (one line) and print its `[[agents.tokens]]` entry: to give an
    /// existing plaintext token (`agents.token`, a route's `token`) a scope.
    Hash(ScopeArgs),
}

/// The entry's name and scope.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Host patterns the token may register routes under, as in a route pattern
    /// (`app.example.com`, `*.apps.example.com`, `*`); comma-separated or repeated.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',', required = true)]
    pub hosts: Vec<String>,
    /// Path prefixes its routes must lie under (`/api`); comma-separated or repeated; none =
    /// any path.
    #[arg(long = "prefix", value_name = "PREFIX", value_delimiter = ',')]
    pub prefixes: Vec<String>,
    /// The entry's name, shown in logs and metrics (default: `token-` and the first 8 hex
    /// digits of its hash).
    #[arg(long)]
    pub name: Option<String>,
}

/// Runs the command; the text to print on stdout, or what was wrong.
pub fn run(command: &TokenCommand) -> Result<String, String> {
    match command {
        TokenCommand::New(scope) => {
            let token = generate()?;
            let entry = entry(scope, TokenDigest::of(&token))?;
            Ok(format!(
                "# The new agent token. Give it to the agent (ringway-agent --token, or the\n\
                 # RINGWAY_TOKEN environment variable); it is not shown again, the balancer keeps\n\
                 # only its SHA-256:\n\
                 {token}\n\
                 \n\
                 # Paste this entry into the balancer's configuration file, then reload it\n\
                 # (SIGHUP, or POST /reload on the admin listener):\n\
                 {entry}"
            ))
        }
        TokenCommand::Hash(scope) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("reading the token from stdin: {e}"))?;
            let token = line.trim_end_matches(['\n', '\r']);
            if token.is_empty() {
                return Err("no token on stdin".to_owned());
            }
            entry(scope, TokenDigest::of(token))
        }
    }
}

/// A new token: [`TOKEN_PREFIX`] and 256 bits from the OS's random source, base64url.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("reading the OS's random source: {e}"))?;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(format!("{TOKEN_PREFIX}{text}"))
}

/// The `[[agents.tokens]]` entry of `digest` with the scope and name of `args`.
fn entry(args: &ScopeArgs, digest: TokenDigest) -> Result<String, String> {
    let hosts = args
        .hosts
        .iter()
        .map(|h| HostPattern::parse(h.trim()).map_err(|e| format!("--hosts {h:?}: {}", e.kind())))
        .collect::<Result<Vec<_>, _>>()?;
    let prefixes = args
        .prefixes
        .iter()
        .map(|p| PathPrefix::parse(p.trim()).map_err(|e| format!("--prefix {p:?}: {}", e.kind())))
        .collect::<Result<Vec<_>, _>>()?;
    let name = match &args.name {
        Some(name) => {
            check_token_name(name).map_err(|e| format!("--name {e}"))?;
            name.clone()
        }
        None => format!("token-{}", &digest.to_hex()[..8]),
    };
    AgentToken {
        name,
        sha256: digest,
        hosts,
        prefixes,
    }
    .to_toml()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn scope(hosts: &[&str], prefixes: &[&str], name: Option<&str>) -> ScopeArgs {
        ScopeArgs {
            hosts: hosts.iter().map(|&h| h.to_owned()).collect(),
            prefixes: prefixes.iter().map(|&p| p.to_owned()).collect(),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn new_tokens_are_prefixed_random_and_256_bits() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        let body = a.strip_prefix(TOKEN_PREFIX).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap();
        assert_eq!(bytes.len(), 32);
    }

    #[test]
    fn the_printed_entry_is_a_config_holding_the_hash_and_the_scope() {
        let out = run(&TokenCommand::New(scope(
            &["*.apps.test", "b.test"],
            &["/api"],
            Some("shop"),
        )))
        .unwrap();
        let token = out
            .lines()
            .find(|l| l.starts_with(TOKEN_PREFIX))
            .unwrap()
            .to_owned();
        let (_, entry) = out.split_once("[[agents.tokens]]").unwrap();
        let c = Config::parse(&format!("[[agents.tokens]]{entry}")).unwrap();
        let t = &c.agents.tokens[0];
        assert_eq!(t.name, "shop");
        assert_eq!(t.sha256, TokenDigest::of(&token));
        assert_eq!(t.hosts.len(), 2);
        assert_eq!(t.prefixes[0].as_str(), "/api");
        assert!(!entry.contains(&token), "the entry holds only the hash");
    }

    #[test]
    fn bad_scopes_and_names_name_the_flag() {
        let d = TokenDigest::of("t");
        for (args, flag) in [
            (scope(&["a.test/x"], &[], None), "--hosts"),
            (scope(&["a.test"], &["api"], None), "--prefix"),
            (scope(&["a.test"], &[], Some("a b")), "--name"),
        ] {
            let e = entry(&args, d).unwrap_err();
            assert!(e.starts_with(flag), "{e}");
        }
        let named = entry(&scope(&["*"], &[], None), d).unwrap();
        assert!(
            named.contains(&format!("name = \"token-{}\"", &d.to_hex()[..8])),
            "{named}"
        );
    }
}
