//! The agent API (`patchfarm.v1.AgentApi`): agents register, lease jobs under fencing tokens,
//! report progress and complete. Only agent certificates may call it; the agent's name is the
//! certificate's, so one agent cannot speak for another.

use super::{outcome, request_id, require_leader};
use crate::raft::{now_ms, NodeHandle};
use crate::roles::caller;
use crate::scheduler::Scheduler;
use patchfarm_proto::state::{command::Op, command_result::Outcome, LeaseJobs};
use patchfarm_proto::v1::agent_api_server::AgentApi;
use patchfarm_proto::v1::*;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The longest a lease call waits for work.
const MAX_LEASE_WAIT_MS: u32 = 10_000;

pub struct AgentService {
    pub node: NodeHandle,
    pub scheduler: Arc<Scheduler>,
    pub metrics: Arc<crate::metrics::FarmMetrics>,
}

fn unexpected() -> Status {
    Status::internal("command applied with an unexpected outcome")
}

#[tonic::async_trait]
impl AgentApi for AgentService {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Agent>, Status> {
        let caller = caller(&request)?.clone();
        let req = request.into_inner();
        let agent = Agent {
            name: caller.name,
            slots: req.slots.max(1),
            registry_slots: req.registry_slots,
            labels: req.labels,
            platforms: req.platforms,
            steps: req.steps,
            ..Default::default()
        };
        let id = request_id(&req.request_id);
        match outcome(self.node.propose(&id, Op::RegisterAgent(agent)).await?)? {
            Outcome::Agent(agent) => {
                // A registration counts as a heartbeat: the TTL starts now.
                self.scheduler.heartbeat(
                    &agent.name,
                    // No cache list here: the agent's next beat sends its whole list.
                    HeartbeatRequest {
                        cached_delta: true,
                        ..Default::default()
                    },
                    now_ms(),
                );
                Ok(Response::new(agent))
            }
            _ => Err(unexpected()),
        }
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let caller = caller(&request)?.clone();
        require_leader(&self.node)?;
        let req = request.into_inner();
        Ok(Response::new(self.scheduler.heartbeat(
            &caller.name,
            req,
            now_ms(),
        )))
    }

    /// Long poll: the scheduler picks jobs for this agent (reserving them), the pick is recorded
    /// through raft, and the leased jobs are returned; with nothing to pick, waits for work.
    async fn lease(
        &self,
        request: Request<LeaseRequest>,
    ) -> Result<Response<LeaseResponse>, Status> {
        let caller = caller(&request)?.clone();
        require_leader(&self.node)?;
        let req = request.into_inner();
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(req.wait_ms.min(MAX_LEASE_WAIT_MS) as u64);
        loop {
            // Registered before picking, so work arriving meanwhile is not missed.
            let work = self.scheduler.work.notified();
            tokio::pin!(work);
            work.as_mut().enable();
            let started = std::time::Instant::now();
            // Agents before registry slots ask for at least one job.
            let max = match req.max_registry_jobs {
                0 => req.max_jobs.max(1),
                _ => req.max_jobs,
            } as usize;
            let picked =
                self.scheduler
                    .pick(&caller.name, max, req.max_registry_jobs as usize, now_ms());
            if !picked.is_empty() {
                let op = Op::LeaseJobs(LeaseJobs {
                    agent: caller.name.clone(),
                    max_jobs: picked.len() as u32,
                    lease_ms: self.scheduler.options.lease_ms,
                    job_ids: picked.clone(),
                });
                let id = request_id(&req.request_id);
                let result = self.node.propose(&id, op).await;
                self.scheduler.release(&picked);
                self.metrics
                    .lease_latency
                    .observe(started.elapsed().as_secs_f64());
                return match outcome(result?)? {
                    Outcome::Leased(leased) => {
                        for job in &leased.jobs {
                            let campaign = job.spec.as_ref().map_or("", |s| s.campaign.as_str());
                            tracing::debug!(job = %job.id, campaign, agent = %caller.name, attempt = job.attempts, "leased");
                        }
                        Ok(Response::new(leased))
                    }
                    _ => Err(unexpected()),
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Response::new(LeaseResponse::default()));
            }
            // Backoffs and affinity waits end without a notification: look again soon.
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                work,
            )
            .await;
            if self.node.local_status().role != "leader" {
                return Err(Status::unavailable(
                    "leadership moved while waiting for work",
                ));
            }
        }
    }

    async fn progress(&self, request: Request<ProgressRequest>) -> Result<Response<Empty>, Status> {
        let req = request.into_inner();
        let id = patchfarm_client::new_request_id();
        outcome(self.node.propose(&id, Op::Progress(req)).await?)?;
        Ok(Response::new(Empty {}))
    }

    async fn complete(&self, request: Request<CompleteRequest>) -> Result<Response<Job>, Status> {
        let agent = caller(&request)?.name.clone();
        let req = request.into_inner();
        let id = request_id(&req.request_id);
        match outcome(self.node.propose(&id, Op::CompleteJob(req)).await?)? {
            Outcome::Job(job) => {
                let campaign = job.spec.as_ref().map_or("", |s| s.campaign.as_str());
                tracing::debug!(job = %job.id, campaign, %agent, state = job.state().as_str_name(), "completed");
                Ok(Response::new(job))
            }
            _ => Err(unexpected()),
        }
    }
}
