//! Known routes, shared by all workers as an immutable snapshot behind `arc-swap`.
//!
//! A route becomes known from the config (`[[route]]`) or when an agent registers it, and stays
//! known for the life of the process: once its last agent leaves, users get 503 (after the park
//! time) rather than 404. Readers (`lookup`, on every request) only load the current snapshot; a
//! registration of a new route builds a new snapshot and swaps it in. Which agents serve a route is
//! not here: each worker keeps its own endpoint table (see `worker`).

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use ringway_core::route::{RoutePattern, RouteTable};

use crate::config::Config;

/// Index of a known route; stable for the life of the process.
pub(crate) type RouteId = u32;

/// One known route.
#[derive(Debug, Clone)]
pub(crate) struct KnownRoute {
    /// Canonical pattern text.
    pub(crate) text: String,
    /// Token required of agents for this route (route's own, else the global one).
    pub(crate) token: Option<String>,
}

/// An immutable snapshot of the known routes.
pub(crate) struct RouteSnapshot {
    table: RouteTable<RouteId>,
    routes: Vec<KnownRoute>,
}

impl RouteSnapshot {
    fn build(routes: Vec<KnownRoute>) -> Result<Self, String> {
        let mut builder = RouteTable::builder();
        for (id, route) in routes.iter().enumerate() {
            let pattern = RoutePattern::parse(&route.text)
                .map_err(|e| format!("route {:?}: {e}", route.text))?;
            let id = RouteId::try_from(id).map_err(|_| "too many routes".to_owned())?;
            builder.insert(pattern, id);
        }
        Ok(Self {
            table: builder.build(),
            routes,
        })
    }

    fn find(&self, text: &str) -> Option<RouteId> {
        self.routes
            .iter()
            .position(|r| r.text == text)
            .and_then(|i| RouteId::try_from(i).ok())
    }
}

/// Why an agent's hello was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterError {
    /// A route pattern did not parse.
    #[error("invalid route {route:?}: {reason}")]
    InvalidRoute { route: String, reason: String },
    /// The token does not match the one required for a route.
    #[error("wrong token for route {route:?}")]
    BadToken { route: String },
}

/// The shared set of known routes.
pub(crate) struct Registry {
    current: ArcSwap<RouteSnapshot>,
    global_token: Option<String>,
    writer: Mutex<()>,
}

impl Registry {
    /// The registry holding the config's routes.
    pub(crate) fn new(config: &Config) -> Result<Self, String> {
        let routes = config
            .routes
            .iter()
            .map(|r| KnownRoute {
                text: r.pattern.text.clone(),
                token: config.token_for(&r.pattern.text).map(str::to_owned),
            })
            .collect();
        Ok(Self {
            current: ArcSwap::from_pointee(RouteSnapshot::build(routes)?),
            global_token: config.agents.token.clone(),
            writer: Mutex::new(()),
        })
    }

    /// The route for a request, if any is known.
    pub(crate) fn lookup(&self, host: &[u8], path: &[u8]) -> Option<RouteId> {
        self.current.load().table.lookup(host, path).copied()
    }

    /// The canonical text of a route (for logs).
    pub(crate) fn route_text(&self, id: RouteId) -> String {
        let snapshot = self.current.load();
        snapshot
            .routes
            .get(id as usize)
            .map(|r| r.text.clone())
            .unwrap_or_default()
    }

    /// Checks an agent's token against every route it announces, makes unknown routes known, and
    /// returns their ids (in the order given).
    pub(crate) fn register(
        &self,
        routes: &[String],
        token: &str,
    ) -> Result<Vec<RouteId>, RegisterError> {
        let mut texts = Vec::with_capacity(routes.len());
        for given in routes {
            match RoutePattern::parse(given) {
                Ok(p) => texts.push(p.to_string()),
                Err(e) => {
                    return Err(RegisterError::InvalidRoute {
                        route: given.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        for (text, given) in texts.iter().zip(routes) {
            let snapshot = self.current.load();
            let required = match snapshot.find(text) {
                Some(id) => snapshot.routes[id as usize].token.clone(),
                None => self.global_token.clone(),
            };
            if let Some(required) = required {
                if !token_eq(required.as_bytes(), token.as_bytes()) {
                    return Err(RegisterError::BadToken {
                        route: given.clone(),
                    });
                }
            }
        }
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot = self.current.load_full();
        let mut routes = snapshot.routes.clone();
        let mut ids = Vec::with_capacity(texts.len());
        for text in &texts {
            let id = match routes.iter().position(|r| &r.text == text) {
                Some(i) => i,
                None => {
                    routes.push(KnownRoute {
                        text: text.clone(),
                        token: self.global_token.clone(),
                    });
                    routes.len() - 1
                }
            };
            ids.push(RouteId::try_from(id).unwrap_or(RouteId::MAX));
        }
        if routes.len() != snapshot.routes.len() {
            match RouteSnapshot::build(routes) {
                Ok(next) => self.current.store(Arc::new(next)),
                Err(reason) => {
                    return Err(RegisterError::InvalidRoute {
                        route: texts.join(","),
                        reason,
                    })
                }
            }
        }
        Ok(ids)
    }
}

/// Compares tokens without an early exit on the first differing byte.
fn token_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn config_routes_are_known() {
        let r = Registry::new(&config("[[route]]\npattern = \"a.test/api\"\n")).unwrap();
        assert_eq!(r.lookup(b"a.test", b"/api/x"), Some(0));
        assert_eq!(r.lookup(b"b.test", b"/"), None);
    }

    #[test]
    fn agents_add_routes_and_tokens_are_checked() {
        let r = Registry::new(&config(
            "[agents]\ntoken = \"g\"\n[[route]]\npattern = \"a.test\"\ntoken = \"r\"\n",
        ))
        .unwrap();
        assert!(matches!(
            r.register(&["a.test".into()], "g"),
            Err(RegisterError::BadToken { .. })
        ));
        assert_eq!(r.register(&["a.test".into()], "r").unwrap(), vec![0]);
        assert!(r.register(&["b.test/x".into()], "r").is_err());
        assert!(r
            .register(&["B.test/x".into(), "a.test/".into()], "g")
            .is_err());
        assert_eq!(r.register(&["B.test/x".into()], "g").unwrap(), vec![1]);
        assert_eq!(r.lookup(b"b.test", b"/x/y"), Some(1));
        // Registering again does not add a route.
        assert_eq!(r.register(&["b.test/x".into()], "g").unwrap(), vec![1]);
    }

    #[test]
    fn no_token_configured_accepts_any() {
        let r = Registry::new(&config("")).unwrap();
        assert_eq!(r.register(&["c.test".into()], "whatever").unwrap(), vec![0]);
    }
}
