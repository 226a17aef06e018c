//! The ringway demo: the balancer, an in-process agent and the hello backend on loopback, from an
//! embedded configuration; the hello backend also serves a classic-mode route (a static backend
//! of the balancer, no agent).
//!
//! This crate sits on top of `ringway-balancer`, `ringway-agent` and `ringway-hello`, so that none
//! of those has to depend on another to offer a self-contained demo. [`Demo::start`] starts the
//! three parts; the `ringway-demo` binary prints what to try and runs until interrupted.
#![forbid(unsafe_code)]

pub mod cli;
pub mod pki;

use std::net::SocketAddr;

use ringway_agent::{Agent, AgentConfig, AgentHandle, TlsSettings, Transport};
use ringway_balancer::config::{BackendSpec, BackendTarget, RouteConfig, RouteSpec};
use ringway_balancer::{Balancer, Config};
use ringway_hello::HelloHandle;

/// The demo's balancer configuration (the binary's flags such as `--listen` or `--workers` apply
/// on top).
pub const DEMO_CONFIG: &str = r#"
[listen]
users = "127.0.0.1:8080"
agents = "127.0.0.1:7000"

[agents]
token = "demo-token"

[[route]]
pattern = "demo.localhost"
"#;

/// The route the demo serves in classic mode, from the hello backend as a static backend
/// (no agent): send `Host: classic.localhost`.
pub const CLASSIC_ROUTE: &str = "classic.localhost";

/// The token the demo's agent presents (the one in [`DEMO_CONFIG`]).
pub const DEMO_TOKEN: &str = "demo-token";
/// The route the demo's agent serves: send `Host: demo.localhost`.
pub const DEMO_ROUTE: &str = "demo.localhost";

/// The demo's configuration: [`DEMO_CONFIG`] parsed.
pub fn demo_config() -> Config {
    Config::parse(DEMO_CONFIG).unwrap_or_else(|e| unreachable!("the embedded demo config: {e}"))
}

/// A running demo: every part on loopback.
pub struct Demo {
    /// The balancer.
    pub balancer: Balancer,
    /// The in-process agent, serving [`DEMO_ROUTE`] from the hello backend.
    pub agent: AgentHandle,
    /// The hello backend (on a free loopback port).
    pub backend: HelloHandle,
    /// The tunnel's throwaway certificates (removed when the demo is dropped).
    pub pki: pki::DemoPki,
}

impl Demo {
    /// Starts the three parts; `config` is normally [`demo_config`] with flags applied. The
    /// hello backend serves [`DEMO_ROUTE`] through the agent and [`CLASSIC_ROUTE`] as the
    /// balancer's static backend.
    pub fn start(mut config: Config) -> Result<Self, String> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let backend = ringway_hello::spawn(loopback)
            .map_err(|e| format!("starting the hello backend: {e}"))?;
        let classic = RouteSpec::parse(CLASSIC_ROUTE)?;
        let mut route = RouteConfig::new(classic);
        route.backends = vec![BackendSpec {
            target: BackendTarget::Addr(backend.addr.into()),
            weight: 1,
        }];
        config.routes.push(route);
        // TLS on the tunnel, with certificates made for this run.
        let pki = pki::DemoPki::generate()?;
        config.agents.insecure_plaintext = false;
        config.agents.tls.cert = Some(pki.cert.clone());
        config.agents.tls.key = Some(pki.key.clone());
        let balancer = Balancer::start(config).map_err(|e| {
            format!(
                "starting the balancer: {e} (is the port taken? try --listen 127.0.0.1:0 \
                 --agent-listen 127.0.0.1:0)"
            )
        })?;
        let mut agent_config = AgentConfig::new(
            vec![balancer.agent_addr().to_string()],
            DEMO_TOKEN.to_owned(),
            vec![DEMO_ROUTE.to_owned()],
            backend.addr,
        );
        agent_config.agent_id = "demo-agent".to_owned();
        agent_config.transport = Transport::Tls(TlsSettings {
            ca_file: Some(pki.ca.clone()),
            ..TlsSettings::default()
        });
        let agent =
            Agent::start(agent_config).map_err(|e| format!("starting the demo agent: {e}"))?;
        Ok(Self {
            balancer,
            agent,
            backend,
            pki,
        })
    }

    /// The commands a user can paste to try it: the hello page, an echoed upload, a large body.
    pub fn try_commands(&self) -> [String; 4] {
        let users = self.balancer.user_addr();
        [
            format!("curl -H 'Host: {CLASSIC_ROUTE}' http://{users}/   # classic mode: no agent"),
            format!("curl -H 'Host: {DEMO_ROUTE}' http://{users}/"),
            format!("curl -H 'Host: {DEMO_ROUTE}' --data-binary 'echo me' http://{users}/echo"),
            format!("curl -H 'Host: {DEMO_ROUTE}' -o /dev/null http://{users}/bytes/100000000"),
        ]
    }

    /// Waits until the balancer's workers end (they run until the process exits).
    pub fn join(self) {
        self.balancer.join();
    }
}
