//! The agent API (`patchfarm.v1.AgentApi`): agents register, lease jobs under fencing tokens,
//! report progress and complete. Only agent certificates may call it; the agent's name is the
//! certificate's, so one agent cannot speak for another.

use super::{outcome, request_id};
use crate::raft::NodeHandle;
use crate::tls::{require, Role};
use patchfarm_proto::state::{command::Op, command_result::Outcome, LeaseJobs};
use patchfarm_proto::v1::agent_api_server::AgentApi;
use patchfarm_proto::v1::*;
use tonic::{Request, Response, Status};

/// How long a lease lasts before the job may be given to another agent.
pub const LEASE_MS: i64 = 60_000;
/// Heartbeats are due this often.
pub const HEARTBEAT_TTL_MS: i64 = 10_000;

pub struct AgentService {
    pub node: NodeHandle,
    pub insecure: bool,
}

fn unexpected() -> Status {
    Status::internal("command applied with an unexpected outcome")
}

#[tonic::async_trait]
impl AgentApi for AgentService {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Agent>, Status> {
        let caller = require(&request, self.insecure, &[Role::Agent])?;
        let req = request.into_inner();
        let agent = Agent {
            name: caller.name,
            slots: req.slots.max(1),
            labels: req.labels,
            platforms: req.platforms,
            ..Default::default()
        };
        let id = request_id(&req.request_id);
        match outcome(self.node.propose(&id, Op::RegisterAgent(agent)).await?)? {
            Outcome::Agent(agent) => Ok(Response::new(agent)),
            _ => Err(unexpected()),
        }
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let caller = require(&request, self.insecure, &[Role::Agent])?;
        let req = request.into_inner();
        // A running job the agent must drop: cancelled, or leased to someone else by now.
        let mut cancel_jobs = Vec::new();
        for id in req.running_jobs {
            let job = self.node.state.job(&id).map_err(super::internal)?;
            let still_ours = job.as_ref().is_some_and(|j| {
                j.state() == JobState::Leased
                    && j.lease.as_ref().is_some_and(|l| l.agent == caller.name)
            });
            if !still_ours {
                cancel_jobs.push(id);
            }
        }
        Ok(Response::new(HeartbeatResponse {
            cancel_jobs,
            ttl_ms: HEARTBEAT_TTL_MS,
        }))
    }

    async fn lease(
        &self,
        request: Request<LeaseRequest>,
    ) -> Result<Response<LeaseResponse>, Status> {
        let caller = require(&request, self.insecure, &[Role::Agent])?;
        let req = request.into_inner();
        let op = Op::LeaseJobs(LeaseJobs {
            agent: caller.name,
            max_jobs: req.max_jobs.max(1),
            lease_ms: LEASE_MS,
        });
        let id = request_id(&req.request_id);
        match outcome(self.node.propose(&id, op).await?)? {
            Outcome::Leased(leased) => Ok(Response::new(leased)),
            _ => Err(unexpected()),
        }
    }

    async fn progress(&self, request: Request<ProgressRequest>) -> Result<Response<Empty>, Status> {
        require(&request, self.insecure, &[Role::Agent])?;
        let req = request.into_inner();
        let id = super::new_request_id();
        outcome(self.node.propose(&id, Op::Progress(req)).await?)?;
        Ok(Response::new(Empty {}))
    }

    async fn complete(&self, request: Request<CompleteRequest>) -> Result<Response<Job>, Status> {
        require(&request, self.insecure, &[Role::Agent])?;
        let req = request.into_inner();
        let id = request_id(&req.request_id);
        match outcome(self.node.propose(&id, Op::CompleteJob(req)).await?)? {
            Outcome::Job(job) => Ok(Response::new(job)),
            _ => Err(unexpected()),
        }
    }
}
