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
use crate::reload::ReloadCounts;
use crate::stats::{RouteCounts, WorkerSnapshot, CLASSES, DURATION_BUCKETS};

/// The label value of requests that matched no route.
pub(crate) const UNROUTED: &str = "(none)";

/// The workers' numbers, merged.
#[derive(Debug, Default)]
struct Merged {
    routes: BTreeMap<String, RouteCounts>,
    retries: u64,
    parked: u64,
    /// Per worker: (index, driver, open user connections, accepted user connections).
    workers: Vec<(u16, &'static str, u64, u64)>,
    /// Agent connections by route.
    agent_conns: BTreeMap<String, u64>,
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
            m.workers
                .push((s.worker, s.driver, c.user_conns_open, c.user_conns_total));
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
