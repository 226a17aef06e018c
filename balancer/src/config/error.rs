//! What a user sees when the configuration is wrong: the file, the line and column, the key (as
//! a dotted path, `timeouts.park`, `route[1].pattern`) and the reason, then the line itself with
//! a caret under the value, compiler style:
//!
//! ```text
//! ringway.toml:7:8: timeouts.park: invalid duration "2 parsecs": unknown time unit "parsecs", …
//!     7 | park = "2 parsecs"
//!       |        ^
//! ```
//!
//! The `toml` crate's errors carry the byte span; `serde_path_to_error` records the key path.

use std::fmt;

use super::Config;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or a key has a wrong value.
    #[error("{}", problem.describe(Some(path)))]
    Invalid {
        /// The file.
        path: String,
        /// Where and why.
        problem: Box<ConfigProblem>,
    },
    /// A command-line flag has a wrong value (the message names the flag).
    #[error("command line: {0}")]
    Flag(String),
}

/// Where a configuration text is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending text, when known.
    pub column: Option<usize>,
    /// The key as a dotted path (`listen.users`, `route[0].pattern`), when the problem is a key's.
    pub key: Option<String>,
    /// Why the text is wrong.
    pub reason: String,
    /// The offending line, as written.
    pub source_line: Option<String>,
}

impl ConfigProblem {
    /// The message, prefixed with `file` when given (`file:line:column: key: reason`), followed
    /// by the offending line with a caret.
    pub fn describe(&self, file: Option<&str>) -> String {
        let mut out = String::new();
        let place = match (file, self.line, self.column) {
            (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}"),
            (Some(f), Some(l), None) => format!("{f}:{l}"),
            (Some(f), None, _) => f.to_owned(),
            (None, Some(l), Some(c)) => format!("line {l}, column {c}"),
            (None, Some(l), None) => format!("line {l}"),
            (None, None, _) => String::new(),
        };
        if !place.is_empty() {
            out.push_str(&place);
            out.push_str(": ");
        }
        if let Some(key) = &self.key {
            out.push_str(key);
            out.push_str(": ");
        }
        out.push_str(&self.reason);
        if let (Some(l), Some(text)) = (self.line, &self.source_line) {
            let width = l.to_string().len();
            let caret = self.column.unwrap_or(1).saturating_sub(1);
            out.push_str(&format!(
                "\n    {l} | {text}\n    {:width$} | {:caret$}^",
                "", ""
            ));
        }
        out
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

impl std::error::Error for ConfigProblem {}

/// Parses `text`, turning the first error into a [`ConfigProblem`].
pub(super) fn parse(text: &str) -> Result<Config, ConfigProblem> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| problem(text, &e))
}

fn problem(text: &str, e: &serde_path_to_error::Error<toml::de::Error>) -> ConfigProblem {
    let inner = e.inner();
    let reason = inner.message().trim().to_owned();
    let path = e.path().to_string();
    // The path names an unknown key too (`listen.bogus`); the root is ".".
    let key = (path != ".").then_some(path);
    let (line, column, source_line) = match inner.span() {
        Some(span) => {
            let (line, column, source_line) = locate(text, span.start);
            (Some(line), Some(column), Some(source_line))
        }
        None => (None, None, None),
    };
    ConfigProblem {
        line,
        column,
        key,
        reason,
        source_line,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`, and that line's text.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = text
        .get(line_start..offset)
        .map_or(1, |s| s.chars().count() + 1);
    let line_text = text
        .get(line_start..)
        .and_then(|rest| rest.lines().next())
        .unwrap_or("")
        .to_owned();
    (line, column, line_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message a user sees for `text` in the file `ringway.toml`.
    fn seen(text: &str) -> String {
        let problem = Config::parse(text).expect_err("an invalid configuration");
        ConfigError::Invalid {
            path: "ringway.toml".to_owned(),
            problem: Box::new(problem),
        }
        .to_string()
    }

    #[test]
    fn unknown_key() {
        let msg = seen("[listen]\nusers = \"127.0.0.1:1\"\nbogus = 1\n");
        assert!(
            msg.starts_with("ringway.toml:3:1: listen.bogus: unknown field `bogus`"),
            "{msg}"
        );
        assert!(
            msg.contains("expected one of `users`, `agents`, `backlog`"),
            "{msg}"
        );
        assert!(msg.contains("    3 | bogus = 1\n      | ^"), "{msg}");
    }

    #[test]
    fn unknown_table() {
        let msg = seen("[listne]\nusers = \"127.0.0.1:1\"\n");
        assert!(
            msg.starts_with("ringway.toml:1:2: listne: unknown field `listne`"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type() {
        let msg = seen("[listen]\nbacklog = \"many\"\n");
        assert!(
            msg.starts_with("ringway.toml:2:11: listen.backlog: invalid type: string \"many\""),
            "{msg}"
        );
        assert!(msg.contains("expected i32"), "{msg}");
    }

    #[test]
    fn bad_duration() {
        let msg = seen("[timeouts]\nhead = \"1s\"\npark = \"2 parsecs\"\n");
        assert!(
            msg.starts_with(
                "ringway.toml:3:8: timeouts.park: invalid duration \"2 parsecs\": unknown time unit"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("    3 | park = \"2 parsecs\"\n      |        ^"),
            "{msg}"
        );
    }

    #[test]
    fn bad_address() {
        let msg = seen("[listen]\nagents = \"localhost\"\n");
        assert!(
            msg.starts_with("ringway.toml:2:10: listen.agents: invalid socket address syntax"),
            "{msg}"
        );
    }

    #[test]
    fn bad_route_pattern() {
        let msg =
            seen("[[route]]\npattern = \"a.test\"\n\n[[route]]\npattern = \"exa mple.com\"\n");
        assert!(
            msg.starts_with("ringway.toml:5:11: route[1].pattern: route \"exa mple.com\": "),
            "{msg}"
        );
    }

    #[test]
    fn value_out_of_range() {
        let msg = seen("[tunnel]\nmax_routes_per_hello = 70000\n");
        assert!(
            msg.starts_with("ringway.toml:2:24: tunnel.max_routes_per_hello: invalid value"),
            "{msg}"
        );
    }

    #[test]
    fn broken_toml() {
        let msg = seen("[listen\nusers = 1\n");
        assert!(msg.starts_with("ringway.toml:1:"), "{msg}");
        assert!(msg.contains("    1 | [listen"), "{msg}");
    }

    #[test]
    fn locate_counts_characters() {
        assert_eq!(locate("a\nbé = 1", 6), (2, 4, "bé = 1".to_owned()));
        assert_eq!(locate("x", 99), (1, 2, "x".to_owned()));
    }
}
