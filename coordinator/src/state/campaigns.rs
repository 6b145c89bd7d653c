//! Campaigns: the record (file and plan) and all its jobs, applied in one log entry.

use super::{jobs, Applied, StateError, StateMachine, Txn};
use patchfarm_proto::v1::{Campaign, SubmitCampaignRequest, SubmitCampaignResponse};

pub(crate) fn submit(
    txn: &mut Txn<'_>,
    index: u64,
    now: i64,
    req: &SubmitCampaignRequest,
) -> Applied<SubmitCampaignResponse> {
    let mut campaign = req.campaign.clone().unwrap_or_default();
    campaign.submitted_unix_ms = now;
    let submitted = match jobs::submit_batch(txn, index, now, &req.jobs)? {
        Ok(submitted) => submitted,
        Err(refusal) => return Ok(Err(refusal)),
    };
    txn.put(&format!("campaign/{}", campaign.name), &campaign);
    Ok(Ok(SubmitCampaignResponse {
        campaign: Some(campaign),
        jobs: submitted.jobs,
    }))
}

impl StateMachine {
    pub fn campaigns(&self) -> Result<Vec<Campaign>, StateError> {
        self.list("campaign", "campaign/")
    }
}
