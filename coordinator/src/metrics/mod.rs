//! The coordinator's Prometheus metrics, through `prometheus-client` (OpenMetrics text): jobs by
//! state and verb, queue depth, lease latency, job waits and durations, retries, agents, campaign
//! progress, raft, and `build_info`. Every series carries this node's id.

mod jobs;

pub use jobs::JobTally;

use crate::scheduler::Scheduler;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;

/// OpenMetrics' content type, as scrapers negotiate it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything `/metrics` shows on a coordinator.
pub struct FarmMetrics {
    registry: Registry,
    pub jobs: Arc<JobTally>,
    /// How long the leader takes to answer an agent's lease call (choice and raft round).
    pub lease_latency: Histogram,
}

impl FarmMetrics {
    pub fn new(node: u64, raft: Arc<crate::raft::Metrics>, scheduler: Arc<Scheduler>) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "patchfarm",
            [("node".into(), node.to_string().into())].into_iter(),
        );
        registry.register(
            "build",
            "This coordinator's release",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let jobs = Arc::new(JobTally::new(&mut registry));
        let lease_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register_with_unit(
            "lease_latency",
            "Time to answer an agent's lease call on the leader",
            Unit::Seconds,
            lease_latency.clone(),
        );
        registry.register_collector(Box::new(raft));
        registry.register_collector(Box::new(AgentsSeen(scheduler)));
        FarmMetrics {
            registry,
            jobs,
            lease_latency,
        }
    }

    /// The OpenMetrics text of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The agents as this node's scheduler sees them (heartbeats reach the leader only).
struct AgentsSeen(Arc<Scheduler>);

impl std::fmt::Debug for AgentsSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentsSeen")
    }
}

impl Collector for AgentsSeen {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let statuses = self.0.agent_statuses(crate::raft::now_ms());
        let (granted, with_inputs) = self.0.affinity_counts();
        let up = statuses.iter().filter(|s| s.up).count() as i64;
        let slots: i64 = statuses
            .iter()
            .filter(|s| s.up)
            .map(|s| s.agent.as_ref().map_or(0, |a| a.slots as i64))
            .sum();
        let running: i64 = statuses.iter().map(|s| s.running as i64).sum();
        let cache: i64 = statuses.iter().map(|s| s.cache_bytes as i64).sum();
        for (name, help, value) in [
            ("agents_up", "Agents up", up),
            (
                "agents_known",
                "Agents ever registered",
                statuses.len() as i64,
            ),
            ("agents_slots", "Job slots of the agents up", slots),
            ("agents_running_jobs", "Jobs leased to agents", running),
            (
                "agents_cache_bytes",
                "Bytes in the agents' caches, as their heartbeats report",
                cache,
            ),
            (
                "leases_with_inputs_cached",
                "Leases this node granted to an agent already holding every input",
                with_inputs as i64,
            ),
            (
                "leases_granted",
                "Leases this node granted (the affinity ratio's denominator)",
                granted as i64,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn every_series_carries_the_node_and_the_text_ends_as_openmetrics_asks() {
        let raft = Arc::new(crate::raft::Metrics::default());
        raft.is_leader.store(1, Ordering::Relaxed);
        let scheduler = Scheduler::new(Default::default());
        let metrics = FarmMetrics::new(3, raft, scheduler);
        metrics.lease_latency.observe(0.002);
        let text = metrics.render();
        assert!(
            text.contains("patchfarm_raft_is_leader{node=\"3\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("patchfarm_build_info{node=\"3\",version=\""),
            "{text}"
        );
        assert!(
            text.contains("# TYPE patchfarm_lease_latency_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("patchfarm_queue_depth{node=\"3\"} 0"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
