//! `GET /metrics`: the workers' snapshots, merged, in the Prometheus text format (OpenMetrics),
//! written by the `prometheus-client` crate through a collector that reads the merged numbers.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use std::sync::Arc;

use super::backend_metrics::BackendMetrics;
use crate::backends::BackendBook;
use crate::limits::RouteLimitCounts;
use crate::reload::ReloadCounts;
use crate::stats::{Rejection, RouteCounts, WorkerSnapshot, CLASSES, DURATION_BUCKETS};

/// The label value of requests that matched no route.
pub(crate) const UNROUTED: &str = "(none)";

/// The workers' numbers, merged.
#[derive(Debug, Default)]
struct Merged {
    routes: BTreeMap<String, RouteCounts>,
    retries: u64,
    parked: u64,
    proxy_protocol_errors: u64,
    /// Agent hellos refused, by reason.
    agent_rejections: [u64; Rejection::ALL.len()],
    /// Per worker: (index, driver, open user connections, accepted user connections).
    workers: Vec<(u16, &'static str, u64, u64)>,
    /// Agent connections by route.
    agent_conns: BTreeMap<String, u64>,
    /// Per worker: times its user listener stopped accepting (`max_connections_per_worker`).
    accept_paused: Vec<(u16, u64)>,
    /// Connections refused with 429 (`max_connections_per_client`).
    clients_refused: u64,
    /// The limited routes (`max_concurrent`).
    route_limits: BTreeMap<String, RouteLimitCounts>,
    /// Workers that did not answer the scrape in time.
    missing: u64,
    reloads: ReloadCounts,
}

impl Merged {
    fn of(snapshots: &[WorkerSnapshot], missing: usize, reloads: ReloadCounts) -> Self {
        let mut m = Self {
            missing: u64::try_from(missing).unwrap_or(u64::MAX),
            reloads,
            ..Self::default()
        };
        for s in snapshots {
            let c = &s.counters;
            for (route, counts) in &c.routes {
                m.routes.entry(route.clone()).or_default().merge(counts);
            }
            m.routes
                .entry(UNROUTED.to_owned())
                .or_default()
                .merge(&c.unrouted);
            m.retries += c.retries;
            m.parked += c.parked;
            m.proxy_protocol_errors += c.proxy_protocol_errors;
            for (sum, n) in m.agent_rejections.iter_mut().zip(c.agent_rejections) {
                *sum += n;
            }
            m.workers
                .push((s.worker, s.driver, c.user_conns_open, c.user_conns_total));
            m.accept_paused.push((s.worker, c.accept_paused));
            m.clients_refused += c.clients_refused;
            for (route, counts) in &c.route_limits {
                m.route_limits
                    .entry(route.clone())
                    .or_default()
                    .merge(counts);
            }
            for agent in &s.agents {
                for route in &agent.routes {
                    *m.agent_conns.entry(route.clone()).or_default() += 1;
                }
            }
        }
        m
    }
}

impl Collector for Merged {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        {
            let mut family = encoder.encode_descriptor(
                "ringway_requests",
                "Requests served, by route and by the status class the user got (none: no response).",
                None,
                MetricType::Counter,
            )?;
            for (route, counts) in &self.routes {
                for (class, n) in CLASSES.iter().zip(counts.by_class) {
                    let labels = [("route", route.as_str()), ("class", class)];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<(), _, u64>(&n, None)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_request_duration_seconds",
                "Time from a request's head to the end of its response, by route.",
                None,
                MetricType::Histogram,
            )?;
            for (route, counts) in &self.routes {
                let mut buckets: Vec<(f64, u64)> = DURATION_BUCKETS
                    .iter()
                    .copied()
                    .zip(counts.buckets)
                    .collect();
                buckets.push((f64::MAX, counts.over));
                let labels = [("route", route.as_str())];
                family.encode_family(&labels)?.encode_histogram::<()>(
                    counts.duration_sum,
                    counts.total(),
                    &buckets,
                    None,
                )?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_body_bytes",
                "Body bytes of requests, by route and direction: in = read from users (request bodies, upgraded bytes up), out = written to users.",
                None,
                MetricType::Counter,
            )?;
            for (route, counts) in &self.routes {
                for (direction, n) in [("in", counts.bytes_in), ("out", counts.bytes_out)] {
                    let labels = [("route", route.as_str()), ("direction", direction)];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<(), _, u64>(&n, None)?;
                }
            }
        }
        counter(
            &mut encoder,
            "ringway_retries",
            "Failed attempts retried on another agent or static backend.",
            self.retries,
        )?;
        counter(
            &mut encoder,
            "ringway_parked_requests",
            "Requests that waited for an agent of their route.",
            self.parked,
        )?;
        counter(
            &mut encoder,
            "ringway_proxy_protocol_errors",
            "User connections closed without an answer for want of a valid PROXY protocol header (listen.proxy_protocol).",
            self.proxy_protocol_errors,
        )?;
        encoder
            .encode_descriptor(
                "ringway_scrape_missing_workers",
                "Workers that did not answer this scrape in time (their numbers are missing from it).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&i64::try_from(self.missing).unwrap_or(i64::MAX))?;
        {
            let mut family = encoder.encode_descriptor(
                "ringway_user_connections",
                "User connections open now, by worker.",
                None,
                MetricType::Gauge,
            )?;
            for (worker, _, open, _) in &self.workers {
                let labels = [("worker", worker.to_string())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&i64::try_from(*open).unwrap_or(i64::MAX))?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_user_connections_accepted",
                "User connections accepted since the start, by worker.",
                None,
                MetricType::Counter,
            )?;
            for (worker, _, _, total) in &self.workers {
                let labels = [("worker", worker.to_string())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<(), _, u64>(total, None)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_accept_paused",
                "Times a worker stopped accepting user connections at limits.max_connections_per_worker, by worker.",
                None,
                MetricType::Counter,
            )?;
            for (worker, n) in &self.accept_paused {
                let labels = [("worker", worker.to_string())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<(), _, u64>(n, None)?;
            }
        }
        counter(
            &mut encoder,
            "ringway_client_connections_refused",
            "User connections answered 429 and closed at limits.max_connections_per_client.",
            self.clients_refused,
        )?;
        self.encode_route_limits(&mut encoder)?;
        {
            let mut family = encoder.encode_descriptor(
                "ringway_agent_connections",
                "Agent (tunnel) connections serving each route, over all workers.",
                None,
                MetricType::Gauge,
            )?;
            for (route, n) in &self.agent_conns {
                let labels = [("route", route.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&i64::try_from(*n).unwrap_or(i64::MAX))?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_agent_rejections",
                "Agent hellos refused, nothing registered, by reason: bad_token (UNAUTHORIZED), out_of_scope (a route outside the token's scope), bad_route (malformed or static), too_many_routes.",
                None,
                MetricType::Counter,
            )?;
            for (why, n) in Rejection::ALL.iter().zip(&self.agent_rejections) {
                family
                    .encode_family(&[("reason", why.label())])?
                    .encode_counter::<(), _, u64>(n, None)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_worker",
                "The workers and the IO driver each runs on.",
                None,
                MetricType::Info,
            )?;
            for (worker, driver, _, _) in &self.workers {
                let labels = [
                    ("worker", worker.to_string()),
                    ("driver", driver.to_string()),
                ];
                family.encode_info(&labels)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_reloads",
                "Configuration reloads (SIGHUP, POST /reload), by result.",
                None,
                MetricType::Counter,
            )?;
            for (result, n) in [("ok", self.reloads.ok), ("failed", self.reloads.failed)] {
                family
                    .encode_family(&[("result", result)])?
                    .encode_counter::<(), _, u64>(&n, None)?;
            }
        }
        encoder
            .encode_descriptor(
                "ringway_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful reload (or of the start).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.reloads.last_success)?;
        encoder
            .encode_descriptor(
                "ringway_config_generation",
                "The running configuration's generation: 1 at the start, one more per successful reload.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&i64::try_from(self.reloads.generation).unwrap_or(i64::MAX))?;
        Ok(())
    }
}

/// A gauge family of the limited routes: name, help, and its value in the counts.
type Gauge = (&'static str, &'static str, fn(&RouteLimitCounts) -> u64);

impl Merged {
    /// The families of the routes with `max_concurrent`, summed over the workers.
    fn encode_route_limits(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let gauges: [Gauge; 2] = [
            (
                "ringway_route_in_flight",
                "Requests holding a slot of their route's max_concurrent now, by route (over all workers).",
                |c| c.in_flight,
            ),
            (
                "ringway_route_queue_waiting",
                "Requests waiting for a slot of their route now, by route (over all workers).",
                |c| c.waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (route, counts) in &self.route_limits {
                let labels = [("route", route.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&i64::try_from(value(counts)).unwrap_or(i64::MAX))?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_route_queued",
                "Requests that waited for a slot of their route's max_concurrent, by route.",
                None,
                MetricType::Counter,
            )?;
            for (route, counts) in &self.route_limits {
                let labels = [("route", route.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<(), _, u64>(&counts.queued, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "ringway_route_rejected",
            "Requests answered 503 by their route's limit, by route and reason (queue_full: refused at once; queue_timeout: after waiting).",
            None,
            MetricType::Counter,
        )?;
        for (route, counts) in &self.route_limits {
            for (reason, n) in [
                ("queue_full", counts.rejected_queue_full),
                ("queue_timeout", counts.rejected_queue_timeout),
            ] {
                let labels = [("route", route.as_str()), ("reason", reason)];
                family
                    .encode_family(&labels)?
                    .encode_counter::<(), _, u64>(&n, None)?;
            }
        }
        Ok(())
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<(), _, u64>(&value, None)
}

/// The text of `GET /metrics` for these snapshots (`missing`: workers that did not answer).
pub(crate) fn render(
    snapshots: &[WorkerSnapshot],
    missing: usize,
    backends: &Arc<BackendBook>,
    reloads: ReloadCounts,
) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Merged::of(snapshots, missing, reloads)));
    registry.register_collector(Box::new(BackendMetrics(backends.clone())));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}
