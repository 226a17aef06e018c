//! Known routes, shared by all workers as an immutable snapshot behind `arc-swap`.
//!
//! A route becomes known from the config (`[[route]]`) or when an agent registers it. Config
//! routes stay known for the life of the process. A route only agents registered is counted:
//! while at least one agent connection holds it, it is served; once the last one has gone, users
//! get 503 (after the park time) for `agents.route_linger`, then the route is forgotten and they
//! get 404 (or the next less specific route).
//!
//! Readers (`lookup`, on every request) only load the current snapshot. Writers (a hello, a
//! closed agent connection) take one lock, change the book of routes, and publish a new snapshot
//! when what readers see changed: a route added or forgotten (a new routing table), or a route
//! losing its last agent or getting one back (a new forget time). Forgetting is lazy, with no
//! timer: every writer first drops routes whose time passed, and a lookup that lands on one
//! drops it (once, under the lock) and looks again, so a forgotten route is never answered and
//! a less specific route behind it is found.
//!
//! Which agents serve a route is not here: each worker keeps its own endpoint table (see
//! `worker`). Route ids are never reused, so a worker's tables never confuse a forgotten route
//! with a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ringway_core::route::{RoutePattern, RouteTable};

use crate::auth::{AgentAuth, Denial, Presented};
use crate::config::{Config, TokenDigest};
use ringway_io::IdMap;

/// Id of a known route; never reused for another route in the life of the process.
pub(crate) type RouteId = u64;

/// Why an agent's hello was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterError {
    /// A route pattern did not parse.
    #[error("invalid route {route:?}: {reason}")]
    InvalidRoute { route: String, reason: String },
    /// The token is not one that may register a route.
    #[error("wrong token for route {route:?}")]
    BadToken { route: String },
    /// The token is a known `[[agents.tokens]]` entry, but its scope does not cover a route.
    #[error("route {route:?} is outside the scope of token {token:?}")]
    OutOfScope { route: String, token: Arc<str> },
    /// The route is served by static backends from the config, not by agents.
    #[error("route {route:?} is served by static backends; agents may not register it")]
    StaticRoute { route: String },
    /// The agent would hold more routes than `agents.max_routes_per_agent`.
    #[error("agent {agent:?} would hold {count} routes, more than the limit of {max}")]
    TooManyRoutes {
        agent: String,
        count: usize,
        max: usize,
    },
}

/// The shared set of known routes.
pub(crate) struct Registry {
    current: ArcSwap<RouteSnapshot>,
    book: Mutex<Book>,
}

/// The settings of the config the registry follows (replaced by a reload).
struct Policy {
    auth: AgentAuth,
    max_routes_per_agent: usize,
    linger: Duration,
}

impl Policy {
    fn of(config: &Config) -> Self {
        Self {
            auth: AgentAuth::of(config),
            max_routes_per_agent: config.agents.max_routes_per_agent,
            linger: config.agents.route_linger,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::of(&Config::default())
    }
}

/// What a reload changed in the known routes (canonical texts, sorted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RouteChanges {
    /// Config routes that were not config routes before.
    pub(crate) added: Vec<String>,
    /// Config routes no longer in the config: from now on they are agent routes (served while
    /// agents hold them, then forgotten after the linger).
    pub(crate) removed: Vec<String>,
}

/// An agent connection's hold on its routes; dropping it lets them go (see [`Registry::register`]).
pub(crate) struct Registration {
    registry: Arc<Registry>,
    agent: String,
    ids: Vec<RouteId>,
    token: Presented,
}

impl Registry {
    /// The registry holding the config's routes.
    pub(crate) fn new(config: &Config) -> Result<Self, String> {
        let mut book = Book {
            policy: Policy::of(config),
            ..Book::default()
        };
        for r in &config.routes {
            if book.by_text.contains_key(&r.pattern.text) {
                continue;
            }
            let id = book.add(r.pattern.pattern.clone(), r.pattern.text.clone(), true);
            if let Some(route) = book.routes.get_mut(&id) {
                route.static_backends = r.is_static();
            }
        }
        let current = ArcSwap::from_pointee(RouteSnapshot::build(&book, None));
        Ok(Self {
            current,
            book: Mutex::new(book),
        })
    }

    /// Follows a reloaded config: its routes become (or stay) config routes, routes it no
    /// longer has become agent routes (kept while agents hold them, then lingering), every
    /// token rule is the new one, and the agent limits and the linger are the new ones. Agents
    /// already registered keep their registrations; whether their token still allows their
    /// routes is [`Registry::token_check`].
    pub(crate) fn reload(&self, config: &Config) -> RouteChanges {
        let now = Instant::now();
        let mut book = self.lock();
        book.policy = Policy::of(config);
        let mut changes = RouteChanges::default();
        let mut table = book.sweep(now);
        let wanted: HashMap<&str, &crate::config::RouteConfig> = config
            .routes
            .iter()
            .map(|r| (r.pattern.text.as_str(), r))
            .collect();
        for route in book.routes.values_mut() {
            let in_config = wanted.contains_key(&*route.text);
            route.static_backends = wanted.get(&*route.text).is_some_and(|r| r.is_static());
            if route.from_config && !in_config {
                route.from_config = false;
                changes.removed.push(route.text.to_string());
                if route.conns == 0 {
                    route.orphaned_since = Some(now);
                }
            } else if !route.from_config && in_config {
                route.from_config = true;
                route.orphaned_since = None;
                changes.added.push(route.text.to_string());
            }
        }
        for (text, r) in wanted {
            if !book.by_text.contains_key(text) {
                let id = book.add(r.pattern.pattern.clone(), text.to_owned(), true);
                if let Some(route) = book.routes.get_mut(&id) {
                    route.static_backends = r.is_static();
                }
                changes.added.push(text.to_owned());
                table = true;
            }
        }
        self.publish(&book, table);
        drop(book);
        changes.added.sort();
        changes.removed.sort();
        changes
    }

    /// Whether the token of digest `token` (still) allows every route of `ids`; else the first
    /// route it does not allow, and why. After a reload removed a token or narrowed its scope, a
    /// connection for which it does not is sent away.
    pub(crate) fn token_check(
        &self,
        ids: &[RouteId],
        token: TokenDigest,
    ) -> Result<(), (String, Denial)> {
        let book = self.lock();
        let presented = book.policy.auth.identify(token);
        for id in ids {
            if let Some(r) = book.routes.get(id) {
                book.policy
                    .auth
                    .allows(&presented, &r.pattern, &r.text)
                    .map_err(|denial| (r.text.to_string(), denial))?;
            }
        }
        Ok(())
    }

    /// The route for a request, if any is known (and not forgotten).
    pub(crate) fn lookup(&self, host: &[u8], path: &[u8]) -> Option<RouteId> {
        let snapshot = self.current.load();
        let id = *snapshot.routes.table.lookup(host, path)?;
        let Some(&forget_at) = snapshot.forget_at.get(&id) else {
            return Some(id);
        };
        let now = Instant::now();
        if now < forget_at {
            return Some(id);
        }
        // Its time passed but no writer has come by since: forget it now and look again.
        drop(snapshot);
        let mut book = self.lock();
        if book.sweep(now) {
            self.publish(&book, true);
        }
        drop(book);
        let snapshot = self.current.load();
        let id = *snapshot.routes.table.lookup(host, path)?;
        let live = snapshot.forget_at.get(&id).is_none_or(|&t| now < t);
        live.then_some(id)
    }

    /// The texts of every route known now (from the config, or registered by an agent and not
    /// yet forgotten), sorted.
    pub(crate) fn known_routes(&self) -> Vec<String> {
        let snapshot = self.current.load();
        let mut texts: Vec<String> = snapshot
            .routes
            .texts
            .values()
            .map(|t| t.to_string())
            .collect();
        texts.sort();
        texts
    }

    /// The id of a known route by its canonical text (`host/prefix`).
    pub(crate) fn id_of(&self, text: &str) -> Option<RouteId> {
        self.lock().by_text.get(text).copied()
    }

    /// The canonical text of a route (for logs); empty once forgotten.
    pub(crate) fn route_text(&self, id: RouteId) -> String {
        let snapshot = self.current.load();
        snapshot
            .routes
            .texts
            .get(&id)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// Registers the routes of one connection of agent `agent`: checks that `token` allows every
    /// route (all or nothing: one refused route registers none), checks the agent's route limit, makes unknown routes known, and holds them until
    /// the returned [`Registration`] is dropped (when the connection closes). Its ids are in the
    /// order given, duplicates removed.
    pub(crate) fn register(
        self: &Arc<Self>,
        agent: &str,
        routes: &[String],
        token: &str,
    ) -> Result<Registration, RegisterError> {
        let mut wanted: Vec<(RoutePattern, String)> = Vec::with_capacity(routes.len());
        for given in routes {
            let pattern = RoutePattern::parse(given).map_err(|e| RegisterError::InvalidRoute {
                route: given.clone(),
                reason: e.to_string(),
            })?;
            let text = pattern.to_string();
            if !wanted.iter().any(|(_, t)| *t == text) {
                wanted.push((pattern, text));
            }
        }
        let now = Instant::now();
        let mut book = self.lock();
        let swept = book.sweep(now);
        let token = book.policy.auth.present(token);
        let result = self.register_locked(&mut book, agent, wanted, &token);
        let changed = result.as_ref().map_or(Changed::default(), |(_, c)| *c);
        if swept || changed.any() {
            self.publish(&book, swept || changed.table);
        }
        drop(book);
        let (ids, _) = result?;
        Ok(Registration {
            registry: self.clone(),
            agent: agent.to_owned(),
            ids,
            token,
        })
    }

    fn register_locked(
        &self,
        book: &mut Book,
        agent: &str,
        wanted: Vec<(RoutePattern, String)>,
        token: &Presented,
    ) -> Result<(Vec<RouteId>, Changed), RegisterError> {
        for (pattern, text) in &wanted {
            let route = book.by_text.get(text).and_then(|id| book.routes.get(id));
            if route.is_some_and(|r| r.static_backends) {
                return Err(RegisterError::StaticRoute {
                    route: text.clone(),
                });
            }
            let route = text.clone();
            book.policy
                .auth
                .allows(token, pattern, text)
                .map_err(|denial| match denial {
                    Denial::BadToken => RegisterError::BadToken { route },
                    Denial::OutOfScope { name } => RegisterError::OutOfScope { route, token: name },
                })?;
        }
        let held = book.agents.get(agent);
        let added = wanted
            .iter()
            .filter(|(_, text)| {
                let id = book.by_text.get(text);
                !id.is_some_and(|id| held.is_some_and(|h| h.contains_key(id)))
            })
            .count();
        let count = held.map_or(0, IdMap::len) + added;
        let max = book.policy.max_routes_per_agent;
        if count > max {
            return Err(RegisterError::TooManyRoutes {
                agent: agent.to_owned(),
                count,
                max,
            });
        }
        let mut changed = Changed::default();
        let mut ids = Vec::with_capacity(wanted.len());
        for (pattern, text) in wanted {
            let id = match book.by_text.get(&text) {
                Some(&id) => id,
                None => {
                    changed.table = true;
                    book.add(pattern, text, false)
                }
            };
            if let Some(route) = book.routes.get_mut(&id) {
                route.conns += 1;
                changed.forget_at |= route.orphaned_since.take().is_some();
            }
            *book
                .agents
                .entry(agent.to_owned())
                .or_default()
                .entry(id)
                .or_default() += 1;
            ids.push(id);
        }
        Ok((ids, changed))
    }

    /// A connection of `agent` holding `ids` closed.
    fn unregister(&self, agent: &str, ids: &[RouteId]) {
        let now = Instant::now();
        let mut book = self.lock();
        let swept = book.sweep(now);
        let mut orphaned = false;
        for id in ids {
            if let Some(route) = book.routes.get_mut(id) {
                route.conns = route.conns.saturating_sub(1);
                if route.conns == 0 && !route.from_config {
                    route.orphaned_since = Some(now);
                    orphaned = true;
                }
            }
        }
        if let Some(held) = book.agents.get_mut(agent) {
            for id in ids {
                if let Some(n) = held.get_mut(id) {
                    *n -= 1;
                    if *n == 0 {
                        held.remove(id);
                    }
                }
            }
            if held.is_empty() {
                book.agents.remove(agent);
            }
        }
        if swept || orphaned {
            self.publish(&book, swept);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Swaps in a snapshot of `book`; the routing table is rebuilt only when `routes_changed`.
    fn publish(&self, book: &Book, routes_changed: bool) {
        let keep = (!routes_changed).then(|| self.current.load().routes.clone());
        self.current
            .store(Arc::new(RouteSnapshot::build(book, keep)));
    }
}

impl Registration {
    /// The registered routes' ids.
    pub(crate) fn ids(&self) -> &[RouteId] {
        &self.ids
    }

    /// The token the routes were registered with (its digest and entry name).
    pub(crate) fn token(&self) -> &Presented {
        &self.token
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.unregister(&self.agent, &self.ids);
    }
}

/// What a registration changed for readers.
#[derive(Default, Clone, Copy)]
struct Changed {
    /// A route was added: the routing table must be rebuilt.
    table: bool,
    /// A route got an agent back: it has no forget time any more.
    forget_at: bool,
}

impl Changed {
    const fn any(self) -> bool {
        self.table || self.forget_at
    }
}

/// The writers' view of every known route, behind the registry's lock.
#[derive(Default)]
struct Book {
    policy: Policy,
    routes: IdMap<RouteId, BookRoute>,
    by_text: HashMap<String, RouteId>,
    /// Per agent id: the routes its connections hold, each with how many connections hold it.
    agents: HashMap<String, IdMap<RouteId, u32>>,
    next_id: RouteId,
}

struct BookRoute {
    pattern: RoutePattern,
    text: Arc<str>,
    /// From the config: never forgotten.
    from_config: bool,
    /// Served by static backends: agents may not register it.
    static_backends: bool,
    /// Agent connections holding the route now.
    conns: u32,
    /// When the last agent connection holding it went away (agent routes only).
    orphaned_since: Option<Instant>,
}

impl Book {
    fn add(&mut self, pattern: RoutePattern, text: String, from_config: bool) -> RouteId {
        let id = self.next_id;
        self.next_id += 1;
        self.by_text.insert(text.clone(), id);
        self.routes.insert(
            id,
            BookRoute {
                pattern,
                text: text.into(),
                from_config,
                static_backends: false,
                conns: 0,
                orphaned_since: None,
            },
        );
        id
    }

    /// Forgets every agent route whose last agent left at least the linger before `now`; true
    /// when any was.
    fn sweep(&mut self, now: Instant) -> bool {
        let linger = self.policy.linger;
        let before = self.routes.len();
        let by_text = &mut self.by_text;
        self.routes.retain(|_, route| {
            let expired = route
                .orphaned_since
                .is_some_and(|since| now.saturating_duration_since(since) >= linger);
            if expired {
                by_text.remove(&*route.text);
            }
            !expired
        });
        self.routes.len() != before
    }
}

/// What readers see: the routing table and, for agent routes without an agent, when they are
/// forgotten.
struct RouteSnapshot {
    routes: Arc<RouteSet>,
    forget_at: IdMap<RouteId, Instant>,
}

/// The routing table and the route texts; shared by snapshots until a route is added or
/// forgotten.
struct RouteSet {
    table: RouteTable<RouteId>,
    texts: IdMap<RouteId, Arc<str>>,
}

impl RouteSnapshot {
    /// A snapshot of `book`, reusing `routes` when given (the set of routes did not change).
    fn build(book: &Book, routes: Option<Arc<RouteSet>>) -> Self {
        let linger = book.policy.linger;
        let routes = routes.unwrap_or_else(|| {
            let mut builder = RouteTable::builder();
            let mut texts = IdMap::default();
            for (&id, route) in &book.routes {
                builder.insert(route.pattern.clone(), id);
                texts.insert(id, route.text.clone());
            }
            Arc::new(RouteSet {
                table: builder.build(),
                texts,
            })
        });
        let forget_at = book
            .routes
            .iter()
            .filter_map(|(&id, r)| Some((id, r.orphaned_since? + linger)))
            .collect();
        Self { routes, forget_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(text: &str) -> Arc<Registry> {
        Arc::new(Registry::new(&Config::parse(text).unwrap()).unwrap())
    }

    fn routes(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|&t| t.to_owned()).collect()
    }

    fn allows(r: &Registry, ids: &[RouteId], token: &str) -> bool {
        r.token_check(ids, TokenDigest::of(token)).is_ok()
    }

    fn scoped(name: &str, token: &str, scope: &str) -> String {
        format!(
            "[[agents.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\n{scope}\n",
            TokenDigest::of(token).to_hex()
        )
    }

    #[test]
    fn a_hello_with_one_route_out_of_scope_registers_none() {
        let r = registry(&scoped(
            "shop",
            "rwt_s",
            "hosts = [\"*.apps.test\"]\nprefixes = [\"/api\"]",
        ));
        let err = r
            .register(
                "a",
                &routes(&["x.apps.test/api", "x.apps.test/admin"]),
                "rwt_s",
            )
            .err();
        assert_eq!(
            err,
            Some(RegisterError::OutOfScope {
                route: "x.apps.test/admin".into(),
                token: "shop".into()
            })
        );
        assert!(r.known_routes().is_empty(), "nothing registered");
        assert!(r.lock().agents.is_empty());
        assert!(matches!(
            r.register("a", &routes(&["x.apps.test/api"]), "rwt_wrong"),
            Err(RegisterError::BadToken { .. })
        ));
        let ok = r
            .register("a", &routes(&["x.apps.test/api/v1"]), "rwt_s")
            .unwrap();
        assert_eq!(ok.token().name.as_deref(), Some("shop"));
        assert_eq!(r.known_routes(), ["x.apps.test/api/v1"]);
    }

    #[test]
    fn a_reload_that_narrows_or_removes_a_token_fails_its_check() {
        let wide = scoped("shop", "rwt_s", "hosts = [\"*.apps.test\"]");
        let r = registry(&wide);
        let held = r
            .register("a", &routes(&["x.apps.test/admin"]), "rwt_s")
            .unwrap();
        let digest = TokenDigest::of("rwt_s");
        assert_eq!(r.token_check(held.ids(), digest), Ok(()));
        r.reload(
            &Config::parse(&scoped(
                "shop",
                "rwt_s",
                "hosts = [\"*.apps.test\"]\nprefixes = [\"/api\"]",
            ))
            .unwrap(),
        );
        assert_eq!(
            r.token_check(held.ids(), digest),
            Err((
                "x.apps.test/admin".to_owned(),
                Denial::OutOfScope {
                    name: "shop".into()
                }
            ))
        );
        r.reload(&Config::parse(&scoped("other", "rwt_o", "hosts = [\"*\"]")).unwrap());
        assert_eq!(
            r.token_check(held.ids(), digest),
            Err(("x.apps.test/admin".to_owned(), Denial::BadToken))
        );
        r.reload(&Config::parse(&wide).unwrap());
        assert_eq!(r.token_check(held.ids(), digest), Ok(()), "back in scope");
    }

    #[test]
    fn config_routes_are_known() {
        let r = registry("[[route]]\npattern = \"a.test/api\"\n");
        assert_eq!(r.lookup(b"a.test", b"/api/x"), Some(0));
        assert_eq!(r.lookup(b"b.test", b"/"), None);
    }

    #[test]
    fn agents_may_not_register_a_static_route() {
        let r = registry(
            "[[route]]\npattern = \"shop.test\"\nbackends = [\"127.0.0.1:1\"]\n\
             [[route]]\npattern = \"app.test\"\n",
        );
        assert_eq!(r.id_of("shop.test/"), Some(0));
        assert!(matches!(
            r.register("x", &routes(&["app.test", "SHOP.test"]), ""),
            Err(RegisterError::StaticRoute { route }) if route == "shop.test/"
        ));
        assert_eq!(
            r.register("x", &routes(&["app.test"]), "").unwrap().ids(),
            [1]
        );
    }

    #[test]
    fn agents_add_routes_and_tokens_are_checked() {
        let r =
            registry("[agents]\ntoken = \"g\"\n[[route]]\npattern = \"a.test\"\ntoken = \"r\"\n");
        assert!(matches!(
            r.register("x", &routes(&["a.test"]), "g"),
            Err(RegisterError::BadToken { .. })
        ));
        assert_eq!(
            r.register("x", &routes(&["a.test"]), "r").unwrap().ids(),
            [0]
        );
        assert!(r.register("x", &routes(&["b.test/x"]), "r").is_err());
        assert!(r
            .register("x", &routes(&["B.test/x", "a.test/"]), "g")
            .is_err());
        let b = r.register("x", &routes(&["B.test/x"]), "g").unwrap();
        assert_eq!(b.ids(), [1]);
        assert_eq!(r.lookup(b"b.test", b"/x/y"), Some(1));
        // Registering again does not add a route; duplicates in one hello count once.
        let again = r
            .register("y", &routes(&["b.test/x", "B.TEST/x"]), "g")
            .unwrap();
        assert_eq!(again.ids(), [1]);
    }

    #[test]
    fn no_token_configured_accepts_any() {
        let r = registry("");
        assert_eq!(
            r.register("x", &routes(&["c.test"]), "whatever")
                .unwrap()
                .ids(),
            [0]
        );
    }

    #[test]
    fn an_agent_may_hold_only_so_many_routes_over_its_connections() {
        let r = registry("[agents]\nmax_routes_per_agent = 3\n");
        let first = r
            .register("a1", &routes(&["a.test", "b.test"]), "")
            .unwrap();
        // The same routes again (its connection to another worker) cost nothing.
        let second = r
            .register("a1", &routes(&["a.test", "b.test"]), "")
            .unwrap();
        let third = r.register("a1", &routes(&["c.test"]), "").unwrap();
        assert_eq!(
            r.register("a1", &routes(&["d.test"]), "").err(),
            Some(RegisterError::TooManyRoutes {
                agent: "a1".into(),
                count: 4,
                max: 3
            })
        );
        // Another agent has its own allowance.
        assert!(r.register("a2", &routes(&["d.test", "a.test"]), "").is_ok());
        assert!(r
            .register("a3", &routes(&["1.t", "2.t", "3.t", "4.t"]), "")
            .is_err());
        // Routes come back to the allowance when no connection of the agent holds them.
        drop(third);
        drop(first);
        let two_more = routes(&["d.test", "e.test"]);
        assert!(
            r.register("a1", &two_more, "").is_err(),
            "the second still holds a, b"
        );
        drop(second);
        let _d = r
            .register("a1", &routes(&["d.test", "e.test", "f.test"]), "")
            .unwrap();
    }

    #[test]
    fn agent_routes_are_forgotten_after_the_linger_config_routes_never() {
        let r = registry("[agents]\nroute_linger = \"0s\"\n[[route]]\npattern = \"cfg.test\"\n");
        let cfg = r
            .register("a", &routes(&["cfg.test", "agent.test"]), "")
            .unwrap();
        let agent_route = cfg.ids()[1];
        assert_eq!(r.lookup(b"agent.test", b"/"), Some(agent_route));
        drop(cfg);
        assert_eq!(r.lookup(b"agent.test", b"/"), None, "forgotten");
        assert_eq!(r.lookup(b"cfg.test", b"/"), Some(0), "config routes stay");
        assert_eq!(r.route_text(agent_route), "");
        // Registered again, it comes back under a new id.
        let again = r.register("a", &routes(&["agent.test"]), "").unwrap();
        assert_ne!(again.ids()[0], agent_route);
        assert_eq!(r.lookup(b"agent.test", b"/"), Some(again.ids()[0]));
    }

    #[test]
    fn a_route_lingers_while_its_agent_is_gone_and_stays_while_any_connection_holds_it() {
        let r = registry("[agents]\nroute_linger = \"1h\"\n");
        let one = r.register("a", &routes(&["x.test"]), "").unwrap();
        let two = r.register("a", &routes(&["x.test"]), "").unwrap();
        let id = one.ids()[0];
        drop(one);
        assert!(
            r.current.load().forget_at.is_empty(),
            "one connection still holds it"
        );
        drop(two);
        assert!(r.current.load().forget_at.contains_key(&id));
        assert_eq!(r.lookup(b"x.test", b"/"), Some(id), "lingers");
        let back = r.register("b", &routes(&["x.test"]), "").unwrap();
        assert_eq!(back.ids(), [id], "back before the linger: same route");
        assert!(r.current.load().forget_at.is_empty());
    }

    #[test]
    fn a_forgotten_route_uncovers_the_less_specific_one_behind_it() {
        let r = registry("[agents]\nroute_linger = \"0s\"\n[[route]]\npattern = \"a.test\"\n");
        let api = r.register("x", &routes(&["a.test/api"]), "").unwrap();
        let api_id = api.ids()[0];
        assert_eq!(r.lookup(b"a.test", b"/api/v1"), Some(api_id));
        drop(api);
        // Its time has passed, but no writer came by since: the lookup itself forgets it.
        assert!(r.lock().routes.contains_key(&api_id));
        assert_eq!(r.lookup(b"a.test", b"/api/v1"), Some(0));
        assert!(!r.lock().routes.contains_key(&api_id));
    }

    #[test]
    fn a_reload_adds_config_routes_demotes_removed_ones_and_changes_tokens() {
        let r = registry(
            "[agents]\nroute_linger = \"1h\"\n[[route]]\npattern = \"old.test\"\ntoken = \"t1\"\n",
        );
        let held = r.register("a", &routes(&["old.test"]), "t1").unwrap();
        let old_id = held.ids()[0];
        assert!(allows(&r, held.ids(), "t1"));
        let next = Config::parse(
            "[agents]\nroute_linger = \"1h\"\n[[route]]\npattern = \"new.test\"\n\
             [[route]]\npattern = \"kept.test\"\ntoken = \"t2\"\n",
        )
        .unwrap();
        let changes = r.reload(&next);
        assert_eq!(changes.added, ["kept.test/", "new.test/"]);
        assert_eq!(changes.removed, ["old.test/"]);
        assert!(
            r.lookup(b"new.test", b"/").is_some(),
            "added routes are known"
        );
        assert_eq!(
            r.lookup(b"old.test", b"/"),
            Some(old_id),
            "a removed route stays while an agent holds it"
        );
        assert!(allows(&r, held.ids(), "t1"), "no token required now");
        assert!(r.register("b", &routes(&["kept.test"]), "t1").is_err());
        let kept = r.register("b", &routes(&["kept.test"]), "t2").unwrap();
        let tighter =
            Config::parse("[[route]]\npattern = \"kept.test\"\ntoken = \"t3\"\n").unwrap();
        r.reload(&tighter);
        assert!(!allows(&r, kept.ids(), "t2"), "the token changed under it");
        drop(held);
        assert!(
            r.current.load().forget_at.contains_key(&old_id),
            "once its agent left, a removed route lingers like an agent route"
        );
    }
}
