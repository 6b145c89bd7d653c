//! What the pages show, read as the CLI reads it: through the farm service (ReadIndex first),
//! agents from the leader (heartbeats live in its memory), errors as one line for the page.

use super::Dashboard;
use patchfarm_proto::v1::farm_client::FarmClient;
use patchfarm_proto::v1::farm_server::Farm as _;
use patchfarm_proto::v1::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::Request;

/// A page asks the leader for agents within this.
const LEADER_DEADLINE: Duration = Duration::from_secs(2);
/// The jobs page shows at most this many (the newest), filters first.
pub const JOBS_SHOWN: usize = 500;

fn message(status: tonic::Status) -> String {
    status.message().to_string()
}

pub async fn campaigns(dashboard: &Dashboard) -> Result<Vec<Campaign>, String> {
    let list = dashboard
        .farm
        .list_campaigns(Request::new(ListCampaignsRequest {}))
        .await
        .map_err(message)?;
    let mut campaigns = list.into_inner().campaigns;
    campaigns.sort_by_key(|c| std::cmp::Reverse(c.submitted_unix_ms));
    Ok(campaigns)
}

pub async fn campaign_jobs(dashboard: &Dashboard, name: &str) -> Result<Vec<Job>, String> {
    let list = dashboard
        .farm
        .list_jobs(Request::new(ListJobsRequest {
            campaign: name.to_string(),
            ..Default::default()
        }))
        .await
        .map_err(message)?;
    Ok(list.into_inner().jobs)
}

/// The jobs matching the page's filters (`state`, `campaign`, `verb`, `q` in the id), newest
/// first.
pub async fn jobs(
    dashboard: &Dashboard,
    query: &BTreeMap<String, String>,
) -> Result<Vec<Job>, String> {
    let state = query
        .get("state")
        .filter(|s| !s.is_empty())
        .map(|s| {
            JobState::from_str_name(&s.to_uppercase()).ok_or_else(|| format!("no job state {s:?}"))
        })
        .transpose()?
        .unwrap_or(JobState::Unspecified);
    let list = dashboard
        .farm
        .list_jobs(Request::new(ListJobsRequest {
            state: state as i32,
            campaign: query.get("campaign").cloned().unwrap_or_default(),
            ..Default::default()
        }))
        .await
        .map_err(message)?;
    let verb = query.get("verb").filter(|v| !v.is_empty());
    let text = query.get("q").filter(|q| !q.is_empty());
    let mut jobs: Vec<Job> = list
        .into_inner()
        .jobs
        .into_iter()
        .filter(|job| {
            verb.is_none_or(|v| {
                job.spec
                    .as_ref()
                    .is_some_and(|s| patchfarm_jobs::verb_name(s) == v)
            })
        })
        .filter(|job| text.is_none_or(|q| job.id.contains(q.as_str())))
        .collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.submitted_unix_ms));
    jobs.truncate(JOBS_SHOWN);
    Ok(jobs)
}

pub async fn job(dashboard: &Dashboard, id: &str) -> Result<Job, String> {
    dashboard
        .farm
        .get_job(Request::new(GetJobRequest { id: id.to_string() }))
        .await
        .map(|r| r.into_inner())
        .map_err(message)
}

/// The agents as the leader knows them: asked here when this node leads, else from the leader.
pub async fn agents(dashboard: &Dashboard) -> Result<Vec<AgentStatus>, String> {
    let farm = &dashboard.farm;
    let status = farm.node.local_status();
    let listed = if status.role == "leader" || status.leader == 0 {
        farm.list_agents(Request::new(ListAgentsRequest {}))
            .await
            .map_err(message)?
            .into_inner()
    } else {
        let address =
            farm.node.transport.address(status.leader).ok_or_else(|| {
                format!("the leader (node {}) has no known address", status.leader)
            })?;
        let channel = leader_channel(dashboard, &address)?;
        let mut client = FarmClient::new(channel);
        let ask = client.list_agents(ListAgentsRequest {});
        tokio::time::timeout(LEADER_DEADLINE, ask)
            .await
            .map_err(|_| format!("the leader at {address} did not answer in time"))?
            .map_err(message)?
            .into_inner()
    };
    Ok(listed.agents)
}

/// A channel to the leader at `address`, kept while it leads (a live agents page asks every
/// second; a new TLS connection each time would be waste).
fn leader_channel(
    dashboard: &Dashboard,
    address: &str,
) -> Result<tonic::transport::Channel, String> {
    let mut kept = dashboard
        .leader_channel
        .lock()
        .expect("leader channel lock");
    if let Some((at, channel)) = kept.as_ref() {
        if at == address {
            return Ok(channel.clone());
        }
    }
    let channel = patchfarm_client::connect_lazy(address, dashboard.farm.peer_tls.clone())
        .map_err(|e| format!("the leader at {address}: {e}"))?;
    *kept = Some((address.to_string(), channel.clone()));
    Ok(channel)
}

pub async fn cluster(dashboard: &Dashboard) -> Result<ClusterStatusResponse, String> {
    dashboard
        .farm
        .cluster_status(Request::new(ClusterStatusRequest {}))
        .await
        .map(|r| r.into_inner())
        .map_err(message)
}
