//! The client API (`patchfarm.v1.Farm`): jobs, catalog, cluster status and membership.
//! Writes are proposals (any node; raft forwards to the leader); reads wait for ReadIndex.

use super::{internal, outcome, request_id};
use crate::raft::NodeHandle;
use crate::scheduler::Scheduler;
use crate::state::Change;
use futures_util::future::join_all;
use patchfarm_client::connect_lazy;
use patchfarm_proto::state::{command::Op, command_result::Outcome};
use patchfarm_proto::v1::farm_server::Farm;
use patchfarm_proto::v1::raft_client::RaftClient;
use patchfarm_proto::v1::*;
use sha2::Digest as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::transport::ClientTlsConfig;
use tonic::{Request, Response, Status};

pub struct FarmService {
    pub node: NodeHandle,
    pub peer_tls: Option<ClientTlsConfig>,
    /// This node's own address, as peers and clients reach it.
    pub address: String,
    pub scheduler: Arc<Scheduler>,
    pub artifacts: super::artifacts::Uploads,
    /// What this farm takes in jobs beyond what any spec may say.
    pub policy: JobPolicy,
}

/// What this farm takes in a job beyond what the spec itself allows.
#[derive(Clone, Debug, Default)]
pub struct JobPolicy {
    /// The benchmark's no-op jobs (`--allow-noop-jobs`).
    pub allow_noop: bool,
    /// Agents' directories where jobs may read and write OCI layouts (`--allow-layout`); none by
    /// default: an `oci:` path is the agent's file system, and farm jobs use registries.
    pub layouts: Vec<std::path::PathBuf>,
}

impl JobPolicy {
    fn allows_layout(&self, dir: &std::path::Path) -> bool {
        let plain = dir.is_absolute()
            && dir
                .components()
                .all(|c| !matches!(c, std::path::Component::ParentDir));
        plain && self.layouts.iter().any(|allowed| dir.starts_with(allowed))
    }

    /// Reads a submitted spec as a typed job (INVALID_ARGUMENT naming the field if it is not
    /// one, or if this farm does not allow it), and derives the job's inputs (cache affinity)
    /// from the verb rather than trusting the submitter's list.
    /// `artifact_store` is this farm's store (`--artifact-store`), where jobs' files are.
    fn validate(
        &self,
        spec: &mut Option<JobSpec>,
        at: &str,
        artifact_store: Option<String>,
    ) -> Result<(), Status> {
        let Some(given) = spec.as_mut() else {
            return Err(Status::invalid_argument(format!("{at}spec: is missing")));
        };
        let mut job = patchfarm_jobs::Job::from_spec(given)
            .map_err(|e| Status::invalid_argument(format!("{at}{e}")))?;
        patchfarm_jobs::base_keys(given)
            .map_err(|e| Status::invalid_argument(format!("{at}{e}")))?;
        patchfarm_jobs::compression(given)
            .map_err(|e| Status::invalid_argument(format!("{at}{e}")))?;
        if matches!(job, patchfarm_jobs::Job::Noop) && !self.allow_noop {
            return Err(Status::invalid_argument(format!(
                "{at}noop: exists only for the scheduling benchmark (coordinators started with --allow-noop-jobs)"
            )));
        }
        for (field, image) in job.images() {
            if let patchfarm_engine::image::ImageRef::Engine(name) = image {
                return Err(Status::invalid_argument(format!(
                    "{at}{field}: {image} names no registry, so it is an image of one machine's container engine; farm jobs read and push registry images: name one ({})",
                    name.in_registry()
                )));
            }
            if let patchfarm_engine::image::ImageRef::Layout(layout) = image {
                if !self.allows_layout(&layout.dir) {
                    return Err(Status::invalid_argument(format!(
                        "{at}{field}: {image} is a directory on the agents; farm jobs read and push registry images (a farm's coordinators allow layouts under a directory with --allow-layout DIR)"
                    )));
                }
            }
        }
        // Files come from the artifact store only: a path would be read on the agent, which
        // holds its own key and registry credentials.
        let files = job
            .artifact_files()
            .map_err(|(field, e)| Status::invalid_argument(format!("{at}{field}: {e}")))?;
        given.artifact_store = match (artifact_store, files.first()) {
            (_, None) => String::new(),
            (Some(store), Some(_)) => store,
            (None, Some((field, _))) => {
                return Err(Status::invalid_argument(format!(
                "{at}{field}: this farm has no artifact store (--artifact-store) to hold job files"
            )))
            }
        };
        given.inputs = job.inputs();
        Ok(())
    }
}

/// Where a batch's bad job is: `jobs[3] (request id …): `.
fn batch_position(index: usize, request_id: &str) -> String {
    format!("jobs[{index}] (request id {request_id:?}): ")
}

fn job_of(outcome: Outcome) -> Result<Job, Status> {
    match outcome {
        Outcome::Job(job) => Ok(job),
        _ => Err(Status::internal(
            "command applied with an unexpected outcome",
        )),
    }
}

impl FarmService {
    /// `job` with why it waits, if it is queued and no agent may take it now.
    fn with_waiting(&self, mut job: Job) -> Job {
        if job.state() == JobState::Queued {
            job.waiting = self
                .scheduler
                .waiting(&job.id, crate::raft::now_ms())
                .unwrap_or_default();
        }
        job
    }

    /// A submitted spec checked against this farm's policy and artifact store.
    fn validate(&self, spec: &mut Option<JobSpec>, at: &str) -> Result<(), Status> {
        let store = self.artifacts.store.as_ref().map(|s| s.location());
        self.policy.validate(spec, at, store)
    }

    async fn submit(&self, req: SubmitJobRequest) -> Result<Job, Status> {
        let id = request_id(&req.request_id);
        let req = SubmitJobRequest {
            request_id: id.clone(),
            ..req
        };
        let result = self.node.propose(&id, Op::SubmitJob(req)).await?;
        job_of(outcome(result)?)
    }

    /// Every voter's own view, asked in parallel; a node that does not answer is unhealthy.
    async fn cluster(&self) -> Result<ClusterStatusResponse, Status> {
        let local = self.node.local_status();
        let asks = local.voters.iter().map(|&id| async move {
            if id == local.id {
                return NodeStatus {
                    id,
                    address: self.address.clone(),
                    role: local.role.to_string(),
                    term: local.term,
                    commit: local.commit,
                    applied: local.applied,
                    healthy: local.leader != 0,
                    leader: local.leader,
                };
            }
            let address = self.node.transport.address(id).unwrap_or_default();
            let unreachable = NodeStatus {
                id,
                address: address.clone(),
                role: "unreachable".into(),
                ..Default::default()
            };
            let Ok(channel) = connect_lazy(&address, self.peer_tls.clone()) else {
                return unreachable;
            };
            let mut client = RaftClient::new(channel);
            let ask = client.local_status(Empty {});
            match tokio::time::timeout(Duration::from_millis(800), ask).await {
                Ok(Ok(reply)) => {
                    let mut status = reply.into_inner();
                    status.address = address;
                    status
                }
                _ => unreachable,
            }
        });
        let nodes = join_all(asks).await;
        let leader = if local.leader != 0 {
            local.leader
        } else {
            nodes
                .iter()
                .map(|n| n.leader)
                .find(|l| *l != 0)
                .unwrap_or(0)
        };
        Ok(ClusterStatusResponse { leader, nodes })
    }
}

type JobStream = Pin<Box<dyn Stream<Item = Result<Job, Status>> + Send>>;

#[tonic::async_trait]
impl Farm for FarmService {
    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<Job>, Status> {
        let mut req = request.into_inner();
        self.validate(&mut req.spec, "")?;
        Ok(Response::new(self.submit(req).await?))
    }

    async fn submit_jobs(
        &self,
        request: Request<SubmitJobsRequest>,
    ) -> Result<Response<SubmitJobsResponse>, Status> {
        // One log entry for the whole batch; every submission keeps its own request id.
        let mut batch = request.into_inner();
        if batch.jobs.is_empty() {
            return Ok(Response::new(SubmitJobsResponse::default()));
        }
        let mut ids = String::new();
        for (i, job) in batch.jobs.iter_mut().enumerate() {
            let at = batch_position(i, &job.request_id);
            self.validate(&mut job.spec, &at)?;
            job.request_id = request_id(&job.request_id);
            ids.push_str(&job.request_id);
            ids.push('\n');
        }
        let batch_id = format!(
            "batch-{}",
            hex::encode(sha2::Sha256::digest(ids.as_bytes()))
        );
        match outcome(self.node.propose(&batch_id, Op::SubmitJobs(batch)).await?)? {
            Outcome::Submitted(submitted) => Ok(Response::new(submitted)),
            _ => Err(Status::internal("batch applied with an unexpected outcome")),
        }
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<Job>, Status> {
        self.node.read_barrier().await?;
        let id = request.into_inner().id;
        match self.node.state.job(&id).map_err(internal)? {
            Some(job) => Ok(Response::new(self.with_waiting(job))),
            None => Err(Status::not_found(format!("no job {id:?}"))),
        }
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        self.node.read_barrier().await?;
        let req = request.into_inner();
        let jobs = self
            .node
            .state
            .jobs(&req.after, req.limit as usize, |job| {
                (req.state == 0 || job.state == req.state)
                    && (req.campaign.is_empty()
                        || job
                            .spec
                            .as_ref()
                            .is_some_and(|s| s.campaign == req.campaign))
            })
            .map_err(internal)?
            .into_iter()
            .map(|job| self.with_waiting(job))
            .collect();
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    type WatchJobStream = JobStream;

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let id = request.into_inner().id;
        // Subscribe before reading so no change falls between the read and the stream.
        let mut changes = self.node.changes.subscribe();
        self.node.read_barrier().await?;
        let current = self
            .node
            .state
            .job(&id)
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
        let current = self.with_waiting(current);
        let state = self.node.state.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut done = current.ended();
            if tx.send(Ok(current)).await.is_err() {
                return;
            }
            while !done {
                let job = match changes.recv().await {
                    Ok(Change::Job(job)) if job.id == id => *job,
                    Ok(_) => continue,
                    // Fell behind: the state has the latest version.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        match state.job(&id) {
                            Ok(Some(job)) => job,
                            _ => break,
                        }
                    }
                    Err(_) => break,
                };
                done = job.ended();
                if tx.send(Ok(job)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<Job>, Status> {
        let req = request.into_inner();
        let id = request_id(&req.request_id);
        let result = self.node.propose(&id, Op::CancelJob(req)).await?;
        Ok(Response::new(job_of(outcome(result)?)?))
    }

    async fn catalog_put(
        &self,
        request: Request<CatalogPutRequest>,
    ) -> Result<Response<CatalogEntry>, Status> {
        let req = request.into_inner();
        let entry = req
            .entry
            .ok_or_else(|| Status::invalid_argument("catalog put without an entry"))?;
        if entry.key.is_empty() || entry.digest.is_empty() {
            return Err(Status::invalid_argument(
                "a catalog entry needs a key and a digest",
            ));
        }
        let id = request_id(&req.request_id);
        match outcome(self.node.propose(&id, Op::CatalogPut(entry)).await?)? {
            Outcome::Entry(entry) => Ok(Response::new(entry)),
            _ => Err(Status::internal(
                "catalog put applied with an unexpected outcome",
            )),
        }
    }

    async fn catalog_list(
        &self,
        _request: Request<CatalogListRequest>,
    ) -> Result<Response<CatalogListResponse>, Status> {
        self.node.read_barrier().await?;
        let entries = self.node.state.catalog().map_err(internal)?;
        Ok(Response::new(CatalogListResponse { entries }))
    }

    async fn catalog_delete(
        &self,
        request: Request<CatalogDeleteRequest>,
    ) -> Result<Response<Empty>, Status> {
        let req = request.into_inner();
        let id = request_id(&req.request_id);
        outcome(self.node.propose(&id, Op::CatalogDelete(req.key)).await?)?;
        Ok(Response::new(Empty {}))
    }

    async fn put_artifact(
        &self,
        request: Request<tonic::Streaming<ArtifactChunk>>,
    ) -> Result<Response<CatalogEntry>, Status> {
        let entry = self
            .artifacts
            .receive(&self.node, request.into_inner())
            .await?;
        Ok(Response::new(entry))
    }

    async fn submit_campaign(
        &self,
        request: Request<SubmitCampaignRequest>,
    ) -> Result<Response<SubmitCampaignResponse>, Status> {
        let mut req = request.into_inner();
        for (i, job) in req.jobs.iter_mut().enumerate() {
            let at = batch_position(i, &job.request_id);
            self.validate(&mut job.spec, &at)?;
            if job.request_id.is_empty() {
                return Err(Status::invalid_argument(
                    "every campaign job needs its own request id (dependencies name them)",
                ));
            }
        }
        let id = request_id(&req.request_id);
        match outcome(self.node.propose(&id, Op::SubmitCampaign(req)).await?)? {
            Outcome::Campaign(done) => Ok(Response::new(done)),
            _ => Err(Status::internal(
                "campaign applied with an unexpected outcome",
            )),
        }
    }

    async fn list_campaigns(
        &self,
        _request: Request<ListCampaignsRequest>,
    ) -> Result<Response<ListCampaignsResponse>, Status> {
        self.node.read_barrier().await?;
        let campaigns = self.node.state.campaigns().map_err(internal)?;
        Ok(Response::new(ListCampaignsResponse { campaigns }))
    }

    async fn list_agents(
        &self,
        _request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        super::require_leader(&self.node)?;
        Ok(Response::new(ListAgentsResponse {
            agents: self.scheduler.agent_statuses(crate::raft::now_ms()),
        }))
    }

    async fn cluster_status(
        &self,
        _request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        Ok(Response::new(self.cluster().await?))
    }

    async fn add_node(
        &self,
        request: Request<AddNodeRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        let req = request.into_inner();
        if req.id == 0 || req.address.is_empty() {
            return Err(Status::invalid_argument(
                "add-node needs a node id above 0 and an address",
            ));
        }
        if self.node.local_status().voters.contains(&req.id) {
            return Err(Status::already_exists(format!(
                "node {} is already a member",
                req.id
            )));
        }
        let id = request_id(&req.request_id);
        outcome(
            self.node
                .change_members(&id, req.id, &req.address, false)
                .await?,
        )?;
        Ok(Response::new(self.cluster().await?))
    }

    async fn remove_node(
        &self,
        request: Request<RemoveNodeRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        let req = request.into_inner();
        let voters = self.node.local_status().voters;
        if !voters.contains(&req.id) {
            return Err(Status::not_found(format!(
                "node {} is not a member (members: {voters:?})",
                req.id
            )));
        }
        let id = request_id(&req.request_id);
        outcome(self.node.change_members(&id, req.id, "", true).await?)?;
        Ok(Response::new(self.cluster().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::JobPolicy;
    use std::path::Path;

    #[test]
    fn layouts_only_under_the_allowed_directories() {
        let none = JobPolicy::default();
        assert!(!none.allows_layout(Path::new("/srv/layouts/a")));
        let some = JobPolicy {
            layouts: vec!["/srv/layouts".into()],
            ..Default::default()
        };
        assert!(some.allows_layout(Path::new("/srv/layouts/a")));
        assert!(!some.allows_layout(Path::new("/srv/layouts/../../root/.ssh")));
        assert!(!some.allows_layout(Path::new("/srv/layouts-evil/a")));
        assert!(!some.allows_layout(Path::new("srv/layouts/a")));
    }
}
