//! Heartbeat with a fake clock: pings keep a quiet connection alive, silence kills it.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ringway_core::tunnel::pair::{Direction, Pair};
use ringway_core::tunnel::{Config, Event, Frame};
use support::{open_pair, pending_frames};

const SEC: Duration = Duration::from_secs(1);

fn dead(events: &[Event]) -> bool {
    events.contains(&Event::Dead)
}

#[test]
fn pings_keep_an_idle_connection_alive() {
    let mut pair = open_pair(&Config::default());
    for _ in 0..60 {
        pair.advance(SEC);
    }
    assert!(!dead(&pair.take_balancer_events()) && !dead(&pair.take_agent_events()));
    assert!(pair.balancer.is_open() && pair.agent.is_open());
}

#[test]
fn a_ping_goes_out_after_an_interval_of_silence_and_is_answered() {
    let config = Config::default();
    let mut pair = open_pair(&config);
    pair.clock += config.ping_interval - SEC;
    pair.balancer.handle_timeout(pair.clock);
    assert!(pending_frames(&mut pair.balancer).is_empty(), "not yet");
    pair.clock += SEC;
    assert_eq!(pair.balancer.poll_timeout(), Some(pair.clock));
    pair.balancer.handle_timeout(pair.clock);
    assert_eq!(pending_frames(&mut pair.balancer), vec![Frame::Ping(1)]);
    let now = pair.clock;
    support::inject(&mut pair.agent, &[Frame::Ping(1)], now).unwrap();
    assert_eq!(pending_frames(&mut pair.agent), vec![Frame::Pong(1)]);
}

#[test]
fn a_silent_peer_is_dead_after_the_missed_pings() {
    let config = Config::default();
    let mut pair = open_pair(&config);
    // Everything the agent sends is lost from now on.
    pair.set_hook(|direction, bytes| {
        if direction == Direction::ToBalancer {
            bytes.clear();
        }
    });
    let deadline = config.ping_interval * config.dead_after_missed_pings;
    let mut elapsed = Duration::ZERO;
    while elapsed + SEC < deadline {
        pair.advance(SEC);
        elapsed += SEC;
        assert!(
            !dead(&pair.take_balancer_events()),
            "dead too early at {elapsed:?}"
        );
    }
    pair.advance(SEC);
    assert!(dead(&pair.take_balancer_events()), "dead at {deadline:?}");
    assert!(pair.balancer.is_closed());
    assert_eq!(pair.balancer.poll_timeout(), None);
    // The agent still hears the balancer's pings until the balancer died.
    assert!(!dead(&pair.take_agent_events()));
}

#[test]
fn a_peer_that_never_says_hello_is_dead_too() {
    let config = Config::default();
    let mut pair = Pair::new(&config);
    pair.set_hook(|direction, bytes| {
        if direction == Direction::ToBalancer {
            bytes.clear();
        }
    });
    for _ in 0..15 {
        pair.advance(SEC);
    }
    assert!(dead(&pair.take_balancer_events()));
    assert!(dead(&pair.take_agent_events()), "no ack either");
}
