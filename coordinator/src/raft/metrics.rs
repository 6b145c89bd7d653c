//! The raft node's counters and gauges, read by the metrics registry at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and gauges the node updates on its hot paths (plain atomics: no lock, no label
/// lookup per message).
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
    pub applied_index: AtomicU64,
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, help, value) in [
            (
                "raft_proposals",
                "Proposals made on this node.",
                &self.proposals,
            ),
            (
                "raft_applied_entries",
                "Log entries applied to the state machine.",
                &self.applied,
            ),
            (
                "raft_messages_sent",
                "Raft messages sent to peers.",
                &self.raft_sent,
            ),
            (
                "raft_messages_received",
                "Raft messages received from peers.",
                &self.raft_received,
            ),
            (
                "raft_send_failures",
                "Batches to peers that failed.",
                &self.raft_send_failures,
            ),
            (
                "raft_snapshots_installed",
                "Snapshots received from a leader and installed.",
                &self.snapshots_installed,
            ),
        ] {
            let counter = ConstCounter::new(get(value));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        for (name, help, value) in [
            ("raft_term", "Current raft term.", &self.term),
            (
                "raft_commit_index",
                "Highest committed log index known here.",
                &self.commit,
            ),
            (
                "raft_applied_index",
                "Last applied log index.",
                &self.applied_index,
            ),
            ("raft_is_leader", "1 on the leader.", &self.is_leader),
        ] {
            let gauge = ConstGauge::new(get(value) as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
