//! What the early answers need, per worker: the ACME thread's pending challenges, the
//! routes that redirect to HTTPS and the HTTPS port (apart from `early`'s request-path code,
//! so that `worker` holds it without importing the request path).

use std::sync::Arc;

use crate::acme::Challenges;
use crate::config::Config;
use crate::registry::{Registry, RouteId};

/// What the workers are started with for early answers.
#[derive(Clone, Default)]
pub(crate) struct EarlySetup {
    /// The ACME thread's pending challenges (`None`: no `[tls.acme]`).
    pub(crate) challenges: Option<Arc<Challenges>>,
    /// The port the HTTPS listener is bound to (the `Location` of a redirect names it).
    pub(crate) https_port: Option<u16>,
}

/// A worker's early answers, rebuilt by a reload (the routes that redirect may change).
pub(crate) struct EarlyAnswers {
    setup: EarlySetup,
    /// Routes with `redirect_https` (few: a scan).
    redirects: Vec<RouteId>,
}

impl EarlyAnswers {
    pub(crate) fn new(setup: EarlySetup, config: &Config, registry: &Registry) -> Self {
        let redirects = config
            .routes
            .iter()
            .filter(|r| r.redirect_https)
            .filter_map(|r| registry.id_of(&r.pattern.text))
            .collect();
        Self { setup, redirects }
    }

    /// The same set-up for another config (a reload's).
    pub(crate) fn rebuilt(&self, config: &Config, registry: &Registry) -> Self {
        Self::new(self.setup.clone(), config, registry)
    }

    pub(super) fn is_off(&self) -> bool {
        self.setup.challenges.is_none() && self.redirects.is_empty()
    }
}

impl EarlyAnswers {
    pub(super) fn challenges(&self) -> Option<&Arc<Challenges>> {
        self.setup.challenges.as_ref()
    }

    pub(super) fn redirects(&self, route: RouteId) -> bool {
        self.redirects.contains(&route)
    }

    pub(super) fn https_port(&self) -> Option<u16> {
        self.setup.https_port
    }
}
