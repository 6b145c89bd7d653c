//! Verbs that talk to a running farm: `cluster status|add-node|remove-node` and
//! `jobs list|show|cancel`. `--farm` lists coordinators (any will do), `--tls-dir` holds the
//! client certificate, `--insecure` talks plaintext to a coordinator started with `--insecure`.

use super::Context;
use anyhow::{bail, Context as _};
use clap::{Args as ClapArgs, Subcommand};
use patchfarm_client::new_request_id;
use patchfarm_client::FarmClient;
use patchfarm_proto::v1::*;
use std::path::PathBuf;

/// Where the farm is and how to prove who we are.
#[derive(ClapArgs, Debug, Clone)]
pub struct FarmArgs {
    /// Coordinator addresses (HOST:PORT, comma-separated); any one of them is enough.
    #[arg(
        long,
        global = true,
        env = "PATCHFARM_FARM",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub farm: Vec<String>,
    /// Directory with ca.crt and client.crt/client.key (from `patchfarm certs init`).
    #[arg(
        long = "tls-dir",
        global = true,
        env = "PATCHFARM_TLS_DIR",
        value_name = "DIR"
    )]
    pub tls_dir: Option<PathBuf>,
    /// Talk plaintext gRPC (only to coordinators started with --insecure).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// With --farm: follow the submitted job to its end and print what it pushed.
    #[arg(long, global = true)]
    pub wait: bool,
    /// With --farm: attempts the job gets before it fails (default: the farm's, 3).
    #[arg(long = "max-attempts", global = true, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// With --farm: who submits (fairness between submitters); default $USER.
    #[arg(long, global = true, env = "PATCHFARM_SUBMITTER", value_name = "NAME")]
    pub submitter: Option<String>,
    /// With --farm: agent labels the job needs, KEY=VALUE (repeatable).
    #[arg(long = "constraint", global = true, value_name = "KEY=VALUE")]
    pub constraints: Vec<String>,
    /// With --farm: the submission's request id (default: a new one). The farm keeps one job per
    /// id, so a submission whose answer was lost is retried safely with the same id.
    #[arg(long = "request-id", global = true, value_name = "ID")]
    pub request_id: Option<String>,
}

impl FarmArgs {
    pub fn client(&self) -> anyhow::Result<FarmClient> {
        if self.farm.is_empty() {
            bail!("this command needs the farm: pass --farm ADDR[,ADDR...] or set PATCHFARM_FARM");
        }
        let tls_dir = match (&self.tls_dir, self.insecure) {
            (Some(dir), false) => Some(dir.as_path()),
            (None, true) => None,
            (Some(_), true) => bail!("--tls-dir and --insecure exclude each other"),
            (None, false) => bail!(
                "the farm speaks mTLS: pass --tls-dir DIR (from `patchfarm certs init`) or --insecure"
            ),
        };
        Ok(FarmClient::new(&self.farm, tls_dir, "client")?)
    }
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Every coordinator's role, term, commit and applied index, and the leader.
    Status,
    /// Add a coordinator (started with --join) as a voting member: ID=ADDR.
    #[command(name = "add-node")]
    AddNode {
        #[arg(value_name = "ID=ADDR")]
        node: String,
    },
    /// Remove a coordinator from the membership.
    #[command(name = "remove-node")]
    RemoveNode {
        #[arg(value_name = "ID")]
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Jobs in submission order.
    List {
        /// Only jobs in this state (queued, leased, succeeded, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this campaign.
        #[arg(long)]
        campaign: Option<String>,
    },
    /// One job in full.
    Show { id: String },
    /// Stop a queued or running job.
    Cancel { id: String },
    /// What the agents reported while running the job.
    Logs { id: String },
}

fn status_json(status: &ClusterStatusResponse) -> serde_json::Value {
    serde_json::json!({
        "leader": status.leader,
        "nodes": status.nodes.iter().map(|n| serde_json::json!({
            "id": n.id,
            "address": n.address,
            "role": n.role,
            "term": n.term,
            "commit": n.commit,
            "applied": n.applied,
            "healthy": n.healthy,
        })).collect::<Vec<_>>(),
    })
}

fn print_status(ctx: &Context, status: &ClusterStatusResponse) -> anyhow::Result<()> {
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&status_json(status))?);
        return Ok(());
    }
    println!("leader: {}", status.leader);
    println!(
        "{:>4}  {:<22} {:<13} {:>6} {:>10} {:>10}  healthy",
        "id", "address", "role", "term", "commit", "applied"
    );
    for n in &status.nodes {
        println!(
            "{:>4}  {:<22} {:<13} {:>6} {:>10} {:>10}  {}",
            n.id, n.address, n.role, n.term, n.commit, n.applied, n.healthy
        );
    }
    Ok(())
}

pub async fn cluster(
    ctx: &Context,
    farm: &FarmArgs,
    command: &ClusterCommand,
) -> anyhow::Result<()> {
    let client = farm.client()?;
    let status = match command {
        ClusterCommand::Status => {
            client
                .call(|mut c| async move { c.cluster_status(ClusterStatusRequest {}).await })
                .await?
        }
        ClusterCommand::AddNode { node } => {
            let (id, address) = patchfarm_client::parse_node(node)?;
            let request = AddNodeRequest {
                request_id: new_request_id(),
                id,
                address,
            };
            client
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.add_node(request).await }
                })
                .await
                .with_context(|| format!("adding node {id}"))?
        }
        ClusterCommand::RemoveNode { id } => {
            let request = RemoveNodeRequest {
                request_id: new_request_id(),
                id: *id,
            };
            client
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.remove_node(request).await }
                })
                .await
                .with_context(|| format!("removing node {id}"))?
        }
    };
    print_status(ctx, &status)
}

fn state_of(name: &str) -> anyhow::Result<JobState> {
    JobState::from_str_name(&name.to_uppercase()).with_context(|| {
        format!("unknown job state {name:?} (queued, leased, succeeded, failed, cancelled)")
    })
}

/// A job as JSON, with its state spelled out.
pub fn job_json(job: &Job) -> serde_json::Value {
    let spec = job.spec.clone().unwrap_or_default();
    serde_json::json!({
        "id": job.id,
        "state": job.state().as_str_name().to_lowercase(),
        "kind": patchfarm_jobs::verb_name(&spec),
        "spec": spec.verb,
        "outcome": job.outcome,
        "submitter": spec.submitter,
        "campaign": spec.campaign,
        "attempts": job.attempts,
        "agent": job.lease.as_ref().map(|l| l.agent.clone()),
        "fencingToken": job.lease.as_ref().map(|l| l.fencing_token),
        "requestId": job.request_id,
        "submittedUnixMs": job.submitted_unix_ms,
        "updatedUnixMs": job.updated_unix_ms,
        "error": job.error,
        "digests": job.digests,
        "progress": job.progress,
        "inputs": spec.inputs,
        "log": job.log,
        "notBeforeUnixMs": job.not_before_unix_ms,
        "waiting": job.waiting,
        "completions": job.completions.iter().map(|c| serde_json::json!({
            "agent": c.agent,
            "fencingToken": c.fencing_token,
            "leaseToken": c.lease_token,
            "success": c.success,
            "raftIndex": c.raft_index,
        })).collect::<Vec<_>>(),
    })
}

pub async fn jobs(ctx: &Context, farm: &FarmArgs, command: &JobsCommand) -> anyhow::Result<()> {
    let client = farm.client()?;
    let jobs = match command {
        JobsCommand::List { state, campaign } => {
            let request = ListJobsRequest {
                state: state
                    .as_deref()
                    .map(state_of)
                    .transpose()?
                    .unwrap_or_default() as i32,
                campaign: campaign.clone().unwrap_or_default(),
                ..Default::default()
            };
            client
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.list_jobs(request).await }
                })
                .await?
                .jobs
        }
        JobsCommand::Show { id } => {
            let request = GetJobRequest { id: id.clone() };
            vec![
                client
                    .call(|mut c| {
                        let request = request.clone();
                        async move { c.get_job(request).await }
                    })
                    .await?,
            ]
        }
        JobsCommand::Logs { id } => {
            let request = GetJobRequest { id: id.clone() };
            let job = client
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.get_job(request).await }
                })
                .await?;
            print!("{}", job.log);
            return Ok(());
        }
        JobsCommand::Cancel { id } => {
            let request = CancelJobRequest {
                request_id: new_request_id(),
                id: id.clone(),
                ..Default::default()
            };
            vec![client
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.cancel_job(request).await }
                })
                .await
                .with_context(|| format!("cancelling {id}"))?]
        }
    };
    if ctx.json {
        let out: Vec<_> = jobs.iter().map(job_json).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for job in &jobs {
            let spec = job.spec.clone().unwrap_or_default();
            println!(
                "{}  {:<10} {:<15} attempts={} {}",
                job.id,
                job.state().as_str_name().to_lowercase(),
                patchfarm_jobs::verb_name(&spec),
                job.attempts,
                if !job.error.is_empty() {
                    format!("error: {}", job.error)
                } else if !job.waiting.is_empty() {
                    format!("waiting: {}", job.waiting)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}
