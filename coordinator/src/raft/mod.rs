//! Consensus: the raft node task (`node`), its sled storage (`storage`) and the gRPC transport
//! between coordinators (`transport`). Handlers use `NodeHandle`: propose a command and wait for
//! its applied result, or wait for a ReadIndex round before reading the state.

pub mod node;
pub mod storage;
pub mod transport;

pub use node::NodeHandle;

use node::Msg;
use patchfarm_proto::state::{command::Op, Command, CommandResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a handler keeps retrying a write or read before answering "unavailable".
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// One proposal attempt: if it is not applied by then (lost with a leader), propose again —
/// the request id makes the retry safe.
const ATTEMPT: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("not committed: {0}")]
    NotCommitted(String),
    #[error("no leader committed the request within {0:?}; the cluster may have lost its quorum")]
    Timeout(Duration),
    #[error("the raft node has stopped")]
    Stopped,
    #[error(transparent)]
    Storage(#[from] storage::StoreError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("corrupt raft log: {0}")]
    Corrupt(String),
}

impl From<NodeError> for tonic::Status {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Timeout(_) | NodeError::NotCommitted(_) | NodeError::Stopped => {
                tonic::Status::unavailable(e.to_string())
            }
            other => tonic::Status::internal(other.to_string()),
        }
    }
}

/// What one node knows about itself.
#[derive(Clone, Debug, Default)]
pub struct LocalStatus {
    pub id: u64,
    pub role: &'static str,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub leader: u64,
    pub voters: Vec<u64>,
}

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

impl NodeHandle {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn local_status(&self) -> LocalStatus {
        self.status.borrow().clone()
    }

    /// Proposes `op` under `request_id` and returns its applied result. Retries (same request
    /// id, so at most one effect) until the deadline when the proposal is lost or no leader is
    /// known.
    pub async fn propose(&self, request_id: &str, op: Op) -> Result<CommandResult, NodeError> {
        let command = Command {
            request_id: request_id.to_string(),
            now_unix_ms: now_ms(),
            op: Some(op),
        };
        self.retry(|reply| Msg::Propose {
            command: command.clone(),
            reply,
        })
        .await
    }

    /// Adds (`remove == false`) or removes a voter; waits until the change is applied.
    pub async fn change_members(
        &self,
        request_id: &str,
        id: u64,
        address: &str,
        remove: bool,
    ) -> Result<CommandResult, NodeError> {
        if remove && self.local_status().leader == id {
            self.move_leadership_away_from(id).await?;
        }
        let (change, peer) = node::membership_change(id, address, remove);
        let command = Command {
            request_id: request_id.to_string(),
            now_unix_ms: now_ms(),
            op: Some(Op::SetPeer(peer)),
        };
        self.retry(|reply| Msg::ChangeMembers {
            change: change.clone(),
            command: command.clone(),
            reply,
        })
        .await
    }

    /// Before the leader is removed it hands over to another voter, so the removal is decided
    /// by a leader that stays.
    async fn move_leadership_away_from(&self, leaving: u64) -> Result<(), NodeError> {
        let voters = self.local_status().voters;
        let Some(&to) = voters
            .iter()
            .find(|v| **v == self.id && **v != leaving)
            .or_else(|| voters.iter().find(|v| **v != leaving))
        else {
            return Ok(());
        };
        let mut status = self.status.clone();
        let started = Instant::now();
        while started.elapsed() < REQUEST_DEADLINE {
            self.inbox
                .send(Msg::TransferLeader(to))
                .await
                .map_err(|_| NodeError::Stopped)?;
            let moved = tokio::time::timeout(ATTEMPT, async {
                loop {
                    let leader = status.borrow_and_update().leader;
                    if leader != 0 && leader != leaving {
                        return;
                    }
                    if status.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
            if moved.is_ok() {
                return Ok(());
            }
        }
        Err(NodeError::Timeout(REQUEST_DEADLINE))
    }

    async fn retry(
        &self,
        message: impl Fn(node::Reply) -> Msg,
    ) -> Result<CommandResult, NodeError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(20);
        loop {
            let (reply, answer) = oneshot::channel();
            self.inbox
                .send(message(reply))
                .await
                .map_err(|_| NodeError::Stopped)?;
            match tokio::time::timeout(ATTEMPT, answer).await {
                Ok(Ok(Ok(result))) => return Ok(result),
                Ok(Ok(Err(NodeError::NotCommitted(_)))) | Err(_) => {}
                Ok(Ok(Err(other))) => return Err(other),
                Ok(Err(_)) => return Err(NodeError::Stopped),
            }
            if started.elapsed() >= REQUEST_DEADLINE {
                return Err(NodeError::Timeout(REQUEST_DEADLINE));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    /// Waits until this node has applied everything committed when the call began (ReadIndex):
    /// a read of the state after this returns is linearizable, on any node.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let started = Instant::now();
        loop {
            let (reply, answer) = oneshot::channel();
            self.inbox
                .send(Msg::ReadIndex { reply })
                .await
                .map_err(|_| NodeError::Stopped)?;
            match tokio::time::timeout(ATTEMPT, answer).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) | Err(_) if started.elapsed() >= REQUEST_DEADLINE => {
                    return Err(NodeError::Timeout(REQUEST_DEADLINE))
                }
                _ => {}
            }
        }
    }

    /// Hands raft messages from a peer to the node.
    pub(crate) async fn step(
        &self,
        messages: Vec<raft::prelude::Message>,
    ) -> Result<(), NodeError> {
        self.inbox
            .send(Msg::Raft(messages))
            .await
            .map_err(|_| NodeError::Stopped)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
