//! Starting an in-process agent for the tests.

use std::net::SocketAddr;

use ringway_agent::{Agent, AgentConfig, AgentHandle, Transport};
use ringway_tuning::runtime::{DriverKind, IoDriver};

/// Both IO drivers where io_uring works here, else epoll only.
pub fn drivers() -> Vec<IoDriver> {
    match ringway_tuning::runtime::auto_driver() {
        DriverKind::Uring => vec![IoDriver::Epoll, IoDriver::Uring],
        DriverKind::Epoll => vec![IoDriver::Epoll],
    }
}

pub fn config(balancer: SocketAddr, backend: SocketAddr) -> AgentConfig {
    let mut config = AgentConfig::new(
        vec![balancer.to_string()],
        "s3cret".into(),
        vec!["example.com".into(), "api.example.com/v1".into()],
        backend,
    );
    config.agent_id = "test-agent".into();
    // The fake balancer speaks the tunnel protocol in plaintext.
    config.transport = Transport::InsecurePlaintext;
    config.io_driver = IoDriver::Epoll;
    config
}

pub fn start(balancer: SocketAddr, backend: SocketAddr) -> AgentHandle {
    Agent::start(config(balancer, backend)).unwrap()
}

pub fn start_on(driver: IoDriver, balancer: SocketAddr, backend: SocketAddr) -> AgentHandle {
    let mut config = config(balancer, backend);
    config.io_driver = driver;
    Agent::start(config).unwrap()
}

pub fn stop(agent: AgentHandle) {
    agent.kill();
    agent.join();
}
