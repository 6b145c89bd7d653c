//! The raft node's counters and gauges, rendered for the metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and gauges for the metrics endpoint.
#[derive(Default, Debug)]
pub struct Metrics {
    pub proposals: AtomicU64,
    pub applied: AtomicU64,
    pub raft_sent: AtomicU64,
    pub raft_received: AtomicU64,
    pub raft_send_failures: AtomicU64,
    pub snapshots_installed: AtomicU64,
    pub term: AtomicU64,
    pub commit: AtomicU64,
    pub is_leader: AtomicU64,
}

impl Metrics {
    /// Prometheus text exposition.
    pub fn render(&self, node: u64) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "patchfarm_raft_proposals_total",
                "counter",
                "Proposals made on this node.",
                get(&self.proposals),
            ),
            (
                "patchfarm_raft_applied_entries_total",
                "counter",
                "Log entries applied to the state machine.",
                get(&self.applied),
            ),
            (
                "patchfarm_raft_messages_sent_total",
                "counter",
                "Raft messages sent to peers.",
                get(&self.raft_sent),
            ),
            (
                "patchfarm_raft_messages_received_total",
                "counter",
                "Raft messages received from peers.",
                get(&self.raft_received),
            ),
            (
                "patchfarm_raft_send_failures_total",
                "counter",
                "Batches to peers that failed.",
                get(&self.raft_send_failures),
            ),
            (
                "patchfarm_raft_snapshots_installed_total",
                "counter",
                "Snapshots received from a leader and installed.",
                get(&self.snapshots_installed),
            ),
            (
                "patchfarm_raft_term",
                "gauge",
                "Current raft term.",
                get(&self.term),
            ),
            (
                "patchfarm_raft_commit_index",
                "gauge",
                "Highest committed log index known here.",
                get(&self.commit),
            ),
            (
                "patchfarm_raft_is_leader",
                "gauge",
                "1 on the leader.",
                get(&self.is_leader),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{node}\"}} {value}\n"
            ));
        }
        out
    }
}
