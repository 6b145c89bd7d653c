//! gRPC handlers: thin — check the caller's role, send a command or a read barrier to the raft
//! node through its handle, translate the answer. They hold channels, never the node.

pub mod agent;
pub mod artifacts;
pub mod farm;
pub mod peer;

use crate::state::Refusal;
use patchfarm_proto::state::{command_result::Outcome, CommandResult};
use tonic::Status;

/// The gRPC answer to a refusal: its kind is the code.
fn status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::FailedPrecondition(m) => Status::failed_precondition(m),
        Refusal::NotFound(m) => Status::not_found(m),
        Refusal::AlreadyExists(m) => Status::already_exists(m),
        Refusal::PermissionDenied(m) => Status::permission_denied(m),
        Refusal::InvalidArgument(m) => Status::invalid_argument(m),
    }
}

/// The outcome of an applied command, or the state machine's refusal with its code.
pub(crate) fn outcome(result: CommandResult) -> Result<Outcome, Status> {
    if let Some(refused) = Refusal::of(&result) {
        return Err(status(refused));
    }
    result
        .outcome
        .ok_or_else(|| Status::internal("command applied without an outcome"))
}

/// A request id from the client, or a fresh one (then a retry by the client is a new request).
pub(crate) fn request_id(given: &str) -> String {
    if given.is_empty() {
        patchfarm_client::new_request_id()
    } else {
        given.to_string()
    }
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
