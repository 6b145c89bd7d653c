//! gRPC handlers: thin — check the caller's role, send a command or a read barrier to the raft
//! node through its handle, translate the answer. They hold channels, never the node.

pub mod agent;
pub mod artifacts;
pub mod farm;
pub mod peer;

use crate::raft::node::refusal;
use patchfarm_proto::state::{command_result::Outcome, CommandResult};
use tonic::Status;

/// The outcome of an applied command, or the state machine's refusal as `failed_precondition`.
pub(crate) fn outcome(result: CommandResult) -> Result<Outcome, Status> {
    if let Some(refused) = refusal(&result) {
        return Err(Status::failed_precondition(refused.to_string()));
    }
    result
        .outcome
        .ok_or_else(|| Status::internal("command applied without an outcome"))
}

/// A request id from the client, or a fresh one (then a retry by the client is a new request).
pub(crate) fn request_id(given: &str) -> String {
    if given.is_empty() {
        new_request_id()
    } else {
        given.to_string()
    }
}

pub fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// Heartbeats, leases and agent listings live in the leader's memory: elsewhere the caller is
/// told to try another node (clients rotate through their `--farm`/`--coordinator` addresses).
pub(crate) fn require_leader(node: &crate::raft::NodeHandle) -> Result<(), Status> {
    let status = node.local_status();
    if status.role == "leader" {
        Ok(())
    } else {
        Err(Status::unavailable(format!(
            "coordinator {} is not the leader (leader: {})",
            status.id,
            if status.leader == 0 {
                "unknown".to_string()
            } else {
                status.leader.to_string()
            }
        )))
    }
}
