//! The agent's Prometheus metrics, through `prometheus-client` (OpenMetrics text): jobs run by
//! verb and result, their durations, cache hits, misses and bytes, what pushes sent to
//! registries, the probes' vitals, and `build_info`. Every series carries the agent's name.

use crate::fetcher::Fetcher;
use crate::probes::Vitals;
use patchfarm_proto::v1::JobOutcome;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbResult {
    verb: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Verb {
    verb: String,
}

/// How a pushed blob reached the registry.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct How {
    how: String,
}

pub struct AgentMetrics {
    registry: Registry,
    jobs: Family<VerbResult, Counter>,
    durations: Family<Verb, Histogram>,
    blobs: Family<How, Counter>,
    uploaded_bytes: Counter,
}

impl AgentMetrics {
    pub fn new(name: &str, vitals: Arc<Vitals>, fetcher: Arc<Fetcher>) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "patchfarm_agent",
            [("agent".into(), name.to_string().into())].into_iter(),
        );
        registry.register(
            "build",
            "This agent's release",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let metrics = AgentMetrics {
            jobs: Family::default(),
            durations: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.05, 2.5, 14))
            }),
            blobs: Family::default(),
            uploaded_bytes: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "jobs_finished",
            "Jobs this agent ran to an end, by verb and result",
            metrics.jobs.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "Time to run a job on this agent, inputs to push",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        registry.register(
            "registry_blobs",
            "Blobs of pushed images: uploaded, mounted from another repository, or already present (skipped)",
            metrics.blobs.clone(),
        );
        registry.register_with_unit(
            "registry_uploaded",
            "Bytes uploaded to registries",
            Unit::Bytes,
            metrics.uploaded_bytes.clone(),
        );
        registry.register_collector(Box::new(vitals));
        registry.register_collector(Box::new(CacheCounts(fetcher)));
        AgentMetrics {
            registry,
            ..metrics
        }
    }

    /// One job ended after `took`: counted by verb and result, and what it pushed.
    pub fn job_ended(
        &self,
        verb: &str,
        succeeded: bool,
        took: Duration,
        outcome: Option<&JobOutcome>,
    ) {
        let result = if succeeded { "succeeded" } else { "failed" };
        self.jobs
            .get_or_create(&VerbResult {
                verb: verb.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&Verb {
                verb: verb.to_string(),
            })
            .observe(took.as_secs_f64());
        for pushed in outcome.iter().flat_map(|o| &o.pushed) {
            for (how, count) in [
                ("uploaded", pushed.blobs_uploaded),
                ("mounted", pushed.blobs_mounted),
                ("present", pushed.blobs_present),
            ] {
                self.blobs
                    .get_or_create(&How { how: how.into() })
                    .inc_by(count as u64);
            }
            self.uploaded_bytes.inc_by(pushed.bytes_uploaded);
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

/// The local cache's counters, read at each scrape.
struct CacheCounts(Arc<Fetcher>);

impl std::fmt::Debug for CacheCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheCounts")
    }
}

impl Collector for CacheCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let fetcher = &self.0;
        for (name, help, unit, value) in [
            (
                "cache_hits",
                "Inputs a job found in the local cache",
                None,
                fetcher.hits.load(Ordering::Relaxed),
            ),
            (
                "cache_misses",
                "Inputs fetched from the artifact store",
                None,
                fetcher.fetches.load(Ordering::Relaxed),
            ),
            (
                "cache_fetched",
                "Bytes fetched from the artifact store into the cache",
                Some(&Unit::Bytes),
                fetcher.fetched_bytes.load(Ordering::Relaxed),
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                unit,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
