//! Which routes an agent's token lets it register: the rules of docs/balancer.md ("Agent
//! tokens"), built from the configuration and replaced by a reload.
//!
//! A hello's token is hashed once (SHA-256) and only its digest is kept; digests are compared
//! in constant time. For each route of the hello:
//!
//! 1. a `[[agents.tokens]]` entry with that digest whose scope covers the route allows it;
//! 2. else the deprecated plaintext token for the route (`route.token`, else `agents.token`)
//!    allows it when it is the one presented;
//! 3. else, when no `[[agents.tokens]]` entry and no plaintext token applies to the route, the
//!    route is open (no token configured at all: agents are not authenticated);
//! 4. else it is refused: `OutOfScope` when the token is a known entry (right token, wrong
//!    route), `BadToken` otherwise.
//!
//! So once any `[[agents.tokens]]` entry exists, every agent route needs a token that allows it.

use std::collections::HashMap;
use std::sync::Arc;

use ringway_core::route::{RoutePattern, RouteScope};

use crate::config::{Config, TokenDigest};

/// The token rules of one configuration.
#[derive(Debug, Default)]
pub(crate) struct AgentAuth {
    scoped: Vec<Scoped>,
    /// `agents.token` (deprecated), hashed.
    global: Option<TokenDigest>,
    /// Routes' own `token` (deprecated), hashed, by canonical route text.
    per_route: HashMap<String, TokenDigest>,
}

#[derive(Debug)]
struct Scoped {
    name: Arc<str>,
    digest: TokenDigest,
    scope: RouteScope,
}

/// A presented token: its digest and the `[[agents.tokens]]` entry it is, if any.
#[derive(Debug, Clone)]
pub(crate) struct Presented {
    pub(crate) digest: TokenDigest,
    /// The entry's name (for logs; never the token).
    pub(crate) name: Option<Arc<str>>,
}

/// Why a token does not allow a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denial {
    /// The token is not one that may register this route.
    BadToken,
    /// The token is entry `name`, whose scope does not cover the route.
    OutOfScope { name: Arc<str> },
}

impl AgentAuth {
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            scoped: config
                .agents
                .tokens
                .iter()
                .map(|t| Scoped {
                    name: t.name.as_str().into(),
                    digest: t.sha256,
                    scope: t.scope(),
                })
                .collect(),
            global: config.agents.token.as_deref().map(TokenDigest::of),
            per_route: config
                .routes
                .iter()
                .filter_map(|r| {
                    Some((r.pattern.text.clone(), TokenDigest::of(r.token.as_deref()?)))
                })
                .collect(),
        }
    }

    /// Hashes the hello's token and finds its entry.
    pub(crate) fn present(&self, token: &str) -> Presented {
        self.identify(TokenDigest::of(token))
    }

    /// Finds the entry of a digest (again, after a reload changed the entries). Every entry is
    /// compared, whichever matches.
    pub(crate) fn identify(&self, digest: TokenDigest) -> Presented {
        let mut name = None;
        for entry in &self.scoped {
            if entry.digest.matches(&digest) {
                name = Some(entry.name.clone());
            }
        }
        Presented { digest, name }
    }

    /// Whether the presented token may register `route` (`text`: its canonical text).
    pub(crate) fn allows(
        &self,
        presented: &Presented,
        route: &RoutePattern,
        text: &str,
    ) -> Result<(), Denial> {
        let entry = presented
            .name
            .as_ref()
            .and_then(|name| self.scoped.iter().find(|e| e.name == *name));
        if entry.is_some_and(|e| e.scope.covers(route)) {
            return Ok(());
        }
        match self.per_route.get(text).or(self.global.as_ref()) {
            Some(plain) if plain.matches(&presented.digest) => return Ok(()),
            None if self.scoped.is_empty() => return Ok(()),
            _ => {}
        }
        Err(match entry {
            Some(e) => Denial::OutOfScope {
                name: e.name.clone(),
            },
            None => Denial::BadToken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(text: &str) -> AgentAuth {
        AgentAuth::of(&Config::parse(text).unwrap())
    }

    fn check(auth: &AgentAuth, token: &str, route: &str) -> Result<(), Denial> {
        let pattern = RoutePattern::parse(route).unwrap();
        auth.allows(&auth.present(token), &pattern, &pattern.to_string())
    }

    fn entry(name: &str, token: &str, scope: &str) -> String {
        format!(
            "[[agents.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\n{scope}\n",
            TokenDigest::of(token).to_hex()
        )
    }

    #[test]
    fn nothing_configured_lets_any_token_register_anything() {
        let a = auth("");
        assert_eq!(check(&a, "", "a.test"), Ok(()));
        assert_eq!(check(&a, "x", "*"), Ok(()));
    }

    #[test]
    fn a_scoped_token_allows_its_scope_only() {
        let a = auth(
            &(entry(
                "shop",
                "rwt_shop",
                "hosts = [\"*.apps.test\"]\nprefixes = [\"/api\"]",
            ) + &entry("blog", "rwt_blog", "hosts = [\"blog.test\"]")),
        );
        assert_eq!(check(&a, "rwt_shop", "x.apps.test/api/v1"), Ok(()));
        assert_eq!(check(&a, "rwt_blog", "blog.test/anything"), Ok(()));
        let shop = Denial::OutOfScope {
            name: "shop".into(),
        };
        assert_eq!(check(&a, "rwt_shop", "x.apps.test/"), Err(shop.clone()));
        assert_eq!(check(&a, "rwt_shop", "blog.test/api"), Err(shop));
        assert_eq!(check(&a, "rwt_other", "blog.test"), Err(Denial::BadToken));
        assert_eq!(
            check(&a, "", "nobody.test"),
            Err(Denial::BadToken),
            "with entries, every route needs a token"
        );
        assert_eq!(a.present("rwt_blog").name.as_deref(), Some("blog"));
        assert_eq!(a.present("rwt_nope").name, None);
    }

    #[test]
    fn plaintext_tokens_keep_their_old_meaning_next_to_scoped_ones() {
        let old = auth(
            "[agents]\ntoken = \"g\"\n[[route]]\npattern = \"own.test\"\ntoken = \"r\"\n\
             [[route]]\npattern = \"open.test\"\n",
        );
        assert_eq!(check(&old, "g", "anything.test"), Ok(()));
        assert_eq!(check(&old, "r", "own.test"), Ok(()));
        assert_eq!(
            check(&old, "g", "own.test"),
            Err(Denial::BadToken),
            "a route's token overrides the global one"
        );
        let route_only = auth("[[route]]\npattern = \"own.test\"\ntoken = \"r\"\n");
        assert_eq!(check(&route_only, "", "other.test"), Ok(()), "as before");
        assert_eq!(check(&route_only, "x", "own.test"), Err(Denial::BadToken));
        let mixed = auth(
            &("[[route]]\npattern = \"own.test\"\ntoken = \"r\"\n".to_owned()
                + &entry("all", "rwt_all", "hosts = [\"*\"]")),
        );
        assert_eq!(check(&mixed, "r", "own.test"), Ok(()));
        assert_eq!(
            check(&mixed, "rwt_all", "own.test"),
            Ok(()),
            "an entry covering it"
        );
        assert_eq!(check(&mixed, "r", "other.test"), Err(Denial::BadToken));
    }
}
