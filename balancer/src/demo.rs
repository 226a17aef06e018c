//! `--demo`: the balancer, an in-process agent and the built-in hello backend on loopback, from an
//! embedded configuration. It prints the curl command to try and runs until interrupted.

use std::net::SocketAddr;

use ringway_agent::{Agent, AgentConfig};

use crate::cli::Cli;
use crate::config::Config;
use crate::Balancer;

/// The demo's configuration (flags such as `--listen` or `--workers` still apply on top).
pub const DEMO_CONFIG: &str = r#"
[listen]
users = "127.0.0.1:8080"
agents = "127.0.0.1:7000"

[agents]
token = "demo-token"

[[route]]
pattern = "demo.localhost"
"#;

/// The token and route the demo's agent registers with.
const DEMO_TOKEN: &str = "demo-token";
const DEMO_ROUTE: &str = "demo.localhost";

/// A running demo: every part on loopback.
pub struct Demo {
    /// The balancer.
    pub balancer: Balancer,
    /// The in-process agent.
    pub agent: ringway_agent::AgentHandle,
    /// The hello backend.
    pub backend: ringway_agent::hello::HelloHandle,
}

impl Demo {
    /// Starts the three parts; `config` is normally [`DEMO_CONFIG`] with flags applied.
    pub fn start(config: Config) -> Result<Self, String> {
        let loopback: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let backend = ringway_agent::hello::spawn(loopback)
            .map_err(|e| format!("starting the hello backend: {e}"))?;
        let balancer = Balancer::start(config).map_err(|e| {
            format!("starting the balancer: {e} (is the port taken? try --listen 127.0.0.1:0 --agent-listen 127.0.0.1:0)")
        })?;
        let mut agent_config = AgentConfig::new(
            vec![balancer.agent_addr().to_string()],
            DEMO_TOKEN.to_owned(),
            vec![DEMO_ROUTE.to_owned()],
            backend.addr,
        );
        agent_config.agent_id = "demo-agent".to_owned();
        let agent =
            Agent::start(agent_config).map_err(|e| format!("starting the demo agent: {e}"))?;
        Ok(Self {
            balancer,
            agent,
            backend,
        })
    }

    /// The command a user can paste to try it.
    pub fn curl_command(&self) -> String {
        format!(
            "curl -H 'Host: {DEMO_ROUTE}' http://{}/",
            self.balancer.user_addr()
        )
    }
}

/// Runs the demo until the process is interrupted.
pub fn run(cli: &Cli) -> Result<(), String> {
    let mut config = Config::parse(DEMO_CONFIG)?;
    cli.apply(&mut config)?;
    let demo = Demo::start(config)?;
    println!(
        "ringway demo: balancer on {} (agents on {}), hello backend on {}",
        demo.balancer.user_addr(),
        demo.balancer.agent_addr(),
        demo.backend.addr
    );
    println!(
        "ringway-balancer: users listening on {}",
        demo.balancer.user_addr()
    );
    println!(
        "ringway-balancer: agents listening on {}",
        demo.balancer.agent_addr()
    );
    println!();
    println!("try:");
    println!("  {}", demo.curl_command());
    println!(
        "  curl -H 'Host: {DEMO_ROUTE}' --data-binary 'echo me' http://{}/echo",
        demo.balancer.user_addr()
    );
    println!(
        "  curl -H 'Host: {DEMO_ROUTE}' -o /dev/null http://{}/bytes/100000000",
        demo.balancer.user_addr()
    );
    println!();
    println!("Ctrl-C to stop.");
    demo.balancer.join();
    Ok(())
}
