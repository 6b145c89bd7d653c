//! The agent's plain HTTP port (`--http-listen`): `/healthz` (the process answers), `/readyz`
//! (registered with the farm and its last heartbeat answered within [`FRESH`]: 503 with the
//! reason otherwise) and `/metrics` (slots, running jobs, build steps, heartbeat age).

use crate::metrics::AgentMetrics;
use patchfarm_client::plain_http::{self, Answer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A heartbeat older than this and the agent is not ready: the farm may have given its leases up.
const FRESH: Duration = Duration::from_secs(10);

/// What the daemon tells its probes, updated as it goes.
#[derive(Default, Debug)]
pub struct Vitals {
    pub slots: u32,
    pub build_steps: bool,
    registered: AtomicBool,
    /// Unix ms of the last heartbeat the farm answered (0: none yet).
    last_heartbeat_ms: AtomicI64,
    running: AtomicUsize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Vitals {
    pub fn new(slots: u32, build_steps: bool) -> Self {
        Vitals {
            slots,
            build_steps,
            ..Default::default()
        }
    }

    pub fn registered(&self, yes: bool) {
        self.registered.store(yes, Ordering::Relaxed);
    }

    /// The farm answered a heartbeat sent with `running` jobs.
    pub fn heartbeat_answered(&self, running: usize) {
        self.last_heartbeat_ms.store(now_ms(), Ordering::Relaxed);
        self.running.store(running, Ordering::Relaxed);
    }

    fn heartbeat_age(&self) -> Option<Duration> {
        match self.last_heartbeat_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_millis((now_ms() - at).max(0) as u64)),
        }
    }

    fn not_ready(&self) -> Option<String> {
        if !self.registered.load(Ordering::Relaxed) {
            return Some("not registered with the farm".into());
        }
        match self.heartbeat_age() {
            None => Some("no heartbeat answered yet".into()),
            Some(age) if age > FRESH => Some(format!(
                "the farm last answered a heartbeat {} s ago",
                age.as_secs()
            )),
            Some(_) => None,
        }
    }

    fn answer(&self, path: &str, metrics: &AgentMetrics) -> Answer {
        match path {
            "/metrics" => plain_http::metrics(metrics.render()),
            "/healthz" => plain_http::alive(),
            "/readyz" => plain_http::readiness(self.not_ready()),
            _ => plain_http::not_found(),
        }
    }
}

/// Serves the port until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    vitals: Arc<Vitals>,
    metrics: Arc<AgentMetrics>,
    shutdown: CancellationToken,
) {
    plain_http::serve(listener, shutdown, move |path| {
        let (vitals, metrics) = (vitals.clone(), metrics.clone());
        async move { vitals.answer(&path, &metrics) }
    })
    .await
}

impl Collector for Vitals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let age = self.heartbeat_age().map_or(-1.0, |age| age.as_secs_f64());
        for (name, help, value) in [
            ("slots", "Jobs this agent runs at once", self.slots as i64),
            (
                "running_jobs",
                "Jobs running, as of the last heartbeat",
                self.running.load(Ordering::Relaxed) as i64,
            ),
            (
                "build_steps",
                "Whether this agent runs build steps (1) or not (0)",
                i64::from(self.build_steps),
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let gauge = ConstGauge::new(age);
        gauge.encode(encoder.encode_descriptor(
            "heartbeat_age",
            "Since the farm last answered a heartbeat (-1: never)",
            Some(&Unit::Seconds),
            gauge.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_once_registered_and_heard_from() {
        let vitals = Arc::new(Vitals::new(2, true));
        let cache = tempfile::tempdir().unwrap();
        let fetcher = crate::fetcher::Fetcher::new(cache.path().into(), Default::default());
        let metrics = AgentMetrics::new("agent-1", vitals.clone(), fetcher);
        let answer = |path: &str| vitals.answer(path, &metrics);
        assert!(answer("/readyz").0.starts_with("503"));
        vitals.registered(true);
        assert!(answer("/readyz").2.contains("no heartbeat"));
        vitals.heartbeat_answered(1);
        assert_eq!(answer("/readyz").0, "200 OK");
        vitals
            .last_heartbeat_ms
            .store(now_ms() - 60_000, Ordering::Relaxed);
        let stale = answer("/readyz");
        assert!(
            stale.0.starts_with("503") && stale.2.contains("60 s ago"),
            "{stale:?}"
        );
        let text = answer("/metrics").2;
        assert!(
            text.contains("patchfarm_agent_running_jobs{agent=\"agent-1\"} 1"),
            "{text}"
        );
        assert!(text.contains("patchfarm_agent_build_steps{agent=\"agent-1\"} 1"));
        assert!(text.contains("patchfarm_agent_cache_hits_total{agent=\"agent-1\"} 0"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(answer("/x").0.starts_with("404"));
        assert_eq!(answer("/healthz").0, "200 OK");
    }
}
