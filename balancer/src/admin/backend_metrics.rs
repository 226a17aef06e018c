//! The static backends' part of `GET /metrics`, read from the process-wide book (no worker is
//! asked): each backend's health-check state and how often workers took it out.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::backends::BackendBook;

/// A collector over the book.
#[derive(Debug)]
pub(crate) struct BackendMetrics(pub(crate) Arc<BackendBook>);

impl Collector for BackendMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let members = || {
            self.0.routes.iter().flat_map(|route| {
                route.groups.iter().flat_map(move |group| {
                    let members = group.members().clone();
                    (0..members.len()).map(move |i| (route.text.clone(), members[i].clone()))
                })
            })
        };
        {
            let mut family = encoder.encode_descriptor(
                "ringway_backend_up",
                "Whether the active health checks let requests go to a static backend (1) or took it out (0); 1 without checks.",
                None,
                MetricType::Gauge,
            )?;
            for (route, member) in members() {
                let labels = [("route", route), ("backend", member.addr.to_string())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&i64::from(member.is_up()))?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "ringway_backend_ejections",
                "Times a worker took a static backend out after backends.max_fails consecutive failed requests (passive checks).",
                None,
                MetricType::Counter,
            )?;
            for (route, member) in members() {
                let labels = [("route", route), ("backend", member.addr.to_string())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<(), _, u64>(&member.ejections(), None)?;
            }
        }
        Ok(())
    }
}
