//! The agent's plain HTTP port (`--http-listen`): `/healthz` (the process answers), `/readyz`
//! (registered with the farm and its last heartbeat answered within [`FRESH`]: 503 with the
//! reason otherwise) and `/metrics` (slots, running jobs, build steps, heartbeat age).

use patchfarm_client::plain_http::{self, Answer};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A heartbeat older than this and the agent is not ready: the farm may have given its leases up.
const FRESH: Duration = Duration::from_secs(10);

/// What the daemon tells its probes, updated as it goes.
#[derive(Default)]
pub struct Vitals {
    pub name: String,
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
    pub fn new(name: &str, slots: u32, build_steps: bool) -> Self {
        Vitals {
            name: name.to_string(),
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

    fn metrics(&self) -> String {
        let agent = &self.name;
        let age = self.heartbeat_age().map_or(-1.0, |age| age.as_secs_f64());
        format!(
            "# HELP patchfarm_agent_slots Jobs this agent runs at once.\n# TYPE patchfarm_agent_slots gauge\npatchfarm_agent_slots{{agent=\"{agent}\"}} {}\n\
             # HELP patchfarm_agent_running_jobs Jobs running, as of the last heartbeat.\n# TYPE patchfarm_agent_running_jobs gauge\npatchfarm_agent_running_jobs{{agent=\"{agent}\"}} {}\n\
             # HELP patchfarm_agent_build_steps Whether this agent runs build steps (1) or not (0).\n# TYPE patchfarm_agent_build_steps gauge\npatchfarm_agent_build_steps{{agent=\"{agent}\"}} {}\n\
             # HELP patchfarm_agent_heartbeat_age_seconds Since the farm last answered a heartbeat (-1: never).\n# TYPE patchfarm_agent_heartbeat_age_seconds gauge\npatchfarm_agent_heartbeat_age_seconds{{agent=\"{agent}\"}} {age}\n",
            self.slots,
            self.running.load(Ordering::Relaxed),
            u8::from(self.build_steps),
        )
    }

    fn answer(&self, path: &str) -> Answer {
        match path {
            "/metrics" => plain_http::metrics(self.metrics()),
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
    shutdown: CancellationToken,
) {
    plain_http::serve(listener, shutdown, move |path| {
        let vitals = vitals.clone();
        async move { vitals.answer(&path) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_registered_and_heard_from() {
        let vitals = Vitals::new("agent-1", 2, true);
        assert!(vitals.answer("/readyz").0.starts_with("503"));
        vitals.registered(true);
        assert!(vitals.answer("/readyz").2.contains("no heartbeat"));
        vitals.heartbeat_answered(1);
        assert_eq!(vitals.answer("/readyz").0, "200 OK");
        vitals
            .last_heartbeat_ms
            .store(now_ms() - 60_000, Ordering::Relaxed);
        let stale = vitals.answer("/readyz");
        assert!(
            stale.0.starts_with("503") && stale.2.contains("60 s ago"),
            "{stale:?}"
        );
        let metrics = vitals.answer("/metrics").2;
        assert!(
            metrics.contains("patchfarm_agent_running_jobs{agent=\"agent-1\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("patchfarm_agent_build_steps{agent=\"agent-1\"} 1"));
        assert!(vitals.answer("/x").0.starts_with("404"));
        assert_eq!(vitals.answer("/healthz").0, "200 OK");
    }
}
