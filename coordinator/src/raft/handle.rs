//! `NodeHandle`: how handlers reach the raft node — propose a command and wait for its applied
//! result, change membership, or wait for a ReadIndex round before reading the state. It holds
//! channels and read-only views, never the node.

use super::messages::{membership_change, now_ms, LocalStatus, Msg, NodeError, Reply};
use super::metrics::Metrics;
use super::transport::Transport;
use crate::state::{Change, StateMachine};
use patchfarm_proto::state::{command::Op, Command, CommandResult};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How long a handler keeps retrying a write or read before answering "unavailable".
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// One proposal attempt: if it is not applied by then (lost with a leader), propose again —
/// the request id makes the retry safe.
const ATTEMPT: Duration = Duration::from_millis(1500);

/// How handlers reach the node: cheap to clone, holds channels and read-only views.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) id: u64,
    pub(crate) inbox: mpsc::Sender<Msg>,
    pub state: StateMachine,
    pub status: watch::Receiver<LocalStatus>,
    pub changes: broadcast::Sender<Change>,
    pub metrics: Arc<Metrics>,
    pub(crate) transport: Transport,
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
        let (change, peer) = membership_change(id, address, remove);
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

    async fn retry(&self, message: impl Fn(Reply) -> Msg) -> Result<CommandResult, NodeError> {
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
