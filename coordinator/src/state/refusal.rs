//! Why the state machine refuses a command. A refusal changes nothing, is remembered under the
//! command's request id like any result (a retry hears the same answer), and keeps its kind so
//! the API answers with the matching gRPC code.

use patchfarm_proto::state::{command_result::Outcome, refusal::Kind, CommandResult};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The farm's state does not allow it now: the job has ended, the lease moved on.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    InvalidArgument(String),
}

impl Refusal {
    fn kind(&self) -> Kind {
        match self {
            Refusal::FailedPrecondition(_) => Kind::FailedPrecondition,
            Refusal::NotFound(_) => Kind::NotFound,
            Refusal::AlreadyExists(_) => Kind::AlreadyExists,
            Refusal::PermissionDenied(_) => Kind::PermissionDenied,
            Refusal::InvalidArgument(_) => Kind::InvalidArgument,
        }
    }

    /// The outcome recorded for a refused command.
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome::Refused(patchfarm_proto::state::Refusal {
            kind: self.kind() as i32,
            message: self.to_string(),
        })
    }

    /// The refusal a result records, if it is one (an older release's bare message is a failed
    /// precondition, as it was answered then).
    pub fn of(result: &CommandResult) -> Option<Refusal> {
        match &result.outcome {
            Some(Outcome::Refused(refused)) => {
                let message = refused.message.clone();
                Some(match refused.kind() {
                    Kind::FailedPrecondition => Refusal::FailedPrecondition(message),
                    Kind::NotFound => Refusal::NotFound(message),
                    Kind::AlreadyExists => Refusal::AlreadyExists(message),
                    Kind::PermissionDenied => Refusal::PermissionDenied(message),
                    Kind::InvalidArgument => Refusal::InvalidArgument(message),
                })
            }
            Some(Outcome::Error(message)) => Some(Refusal::FailedPrecondition(message.clone())),
            _ => None,
        }
    }
}
