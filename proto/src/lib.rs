//! patchfarm's gRPC contracts: generated tonic/prost code for `patchfarm.v1` (client, agent and
//! raft services) and `patchfarm.state.v1` (the replicated commands).

#[allow(clippy::all, missing_docs)]
mod generated {
    pub mod patchfarm {
        pub mod v1 {
            tonic::include_proto!("patchfarm.v1");
        }
        pub mod state {
            pub mod v1 {
                tonic::include_proto!("patchfarm.state.v1");
            }
        }
    }
}

/// The replicated log's commands and their results.
pub use generated::patchfarm::state::v1 as state;
/// The wire API: `Farm`, `AgentApi` and `Raft` services and their messages.
pub use generated::patchfarm::v1;

impl v1::Job {
    /// A job that will not change any more: succeeded, failed or cancelled.
    pub fn ended(&self) -> bool {
        matches!(
            self.state(),
            v1::JobState::Succeeded | v1::JobState::Failed | v1::JobState::Cancelled
        )
    }
}
