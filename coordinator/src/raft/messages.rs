//! What crosses between the raft node's task and the rest: the node's inbox messages, its
//! status, its errors. Node, transport and handle all use these; none of them uses another.

use super::storage::StoreError;
use patchfarm_proto::state::{Command, CommandResult, SetPeer};
use raft::prelude::{ConfChange, ConfChangeType, Message};
use std::time::Duration;
use tokio::sync::oneshot;

pub(crate) type Reply = oneshot::Sender<Result<CommandResult, NodeError>>;

/// What the node's task accepts.
pub(crate) enum Msg {
    Propose {
        command: Command,
        reply: Reply,
    },
    ChangeMembers {
        change: ConfChange,
        command: Command,
        reply: Reply,
    },
    ReadIndex {
        reply: oneshot::Sender<()>,
    },
    Raft(Vec<Message>),
    Unreachable(u64),
    /// Ask the leader (directly, or forwarded by a follower) to hand over to this voter.
    TransferLeader(u64),
    SnapshotDone {
        to: u64,
        ok: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("not committed: {0}")]
    NotCommitted(String),
    #[error("no leader committed the request within {0:?}; the cluster may have lost its quorum")]
    Timeout(Duration),
    #[error("the raft node has stopped")]
    Stopped,
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("syncing the raft log to disk: {0}")]
    Sync(std::io::Error),
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

/// Conf changes carry their `SetPeer` command (request id + address) as context.
pub(crate) fn membership_change(id: u64, address: &str, remove: bool) -> (ConfChange, SetPeer) {
    let mut change = ConfChange {
        node_id: id,
        ..Default::default()
    };
    change.set_change_type(if remove {
        ConfChangeType::RemoveNode
    } else {
        ConfChangeType::AddNode
    });
    (
        change,
        SetPeer {
            id,
            address: address.to_string(),
            remove,
        },
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
