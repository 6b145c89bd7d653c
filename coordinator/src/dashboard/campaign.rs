//! A campaign's page: its stages (bases, auxiliary images, domains, copies) as progress bars,
//! failed jobs with their reasons on top, and every domain with old → new image, state, duration,
//! the Domain patch once its image is where it pulls from, and a link to the job and its log.

use super::{data, Dashboard};
use maud::{html, Markup};
use patchfarm_jobs::campaign::{by_digest, domain_json_patch, domain_patch, request_id};
use patchfarm_proto::v1::{Job, JobState};
use serde_json::Value;
use std::collections::HashMap;

/// The stages in the order a campaign runs them, by the prefix of its job keys.
const STAGES: [(&str, &str); 4] = [
    ("base/", "bases"),
    ("aux/", "auxiliary images"),
    ("domain/", "domains"),
    ("copy/", "copies"),
];

pub fn state_name(job: &Job) -> String {
    job.state().as_str_name().to_lowercase()
}

fn seconds(job: &Job) -> String {
    format!(
        "{:.1} s",
        (job.updated_unix_ms - job.submitted_unix_ms).max(0) as f64 / 1000.0
    )
}

struct Domain<'a> {
    name: String,
    source_type: String,
    old_image: String,
    job: Option<&'a Job>,
    new_image: Option<String>,
    patch: Option<Value>,
    state: String,
}

/// The domains of `plan` as the campaign's jobs (by key) say they stand.
fn domains<'a>(plan: &Value, by_key: &HashMap<String, &'a Job>) -> Vec<Domain<'a>> {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let done = |key: &str| {
        by_key
            .get(key)
            .filter(|j| j.state() == JobState::Succeeded)
            .and_then(|j| j.digests.first())
            .map(|d| by_digest(d))
    };
    let mut out = Vec::new();
    for domain in plan["domains"].as_array().into_iter().flatten() {
        let job = by_key.get(&text(domain, "imageFrom")).copied();
        let new_image = done(&text(domain, "pulledFrom"));
        let mut aux = Vec::new();
        let mut aux_failed = false;
        for refresh in domain["auxiliaryRefresh"].as_array().into_iter().flatten() {
            let key = text(refresh, "pulledFrom");
            aux_failed |= by_key
                .get(&key)
                .is_some_and(|j| matches!(j.state(), JobState::Failed | JobState::Cancelled));
            if let Some(new) = done(&key) {
                let index = refresh["index"].as_u64().unwrap_or_default() as usize;
                aux.push((index, text(refresh, "oldImage"), new));
            }
        }
        let wanted = domain["auxiliaryRefresh"].as_array().map_or(0, Vec::len);
        let patch = match &new_image {
            Some(image) if aux.len() == wanted && wanted == 0 => Some(domain_patch(image)),
            Some(image) if aux.len() == wanted => Some(domain_json_patch(image, &aux)),
            _ => None,
        };
        let state = if aux_failed {
            "failed".to_string()
        } else {
            job.map_or("unknown".into(), state_name)
        };
        out.push(Domain {
            name: format!("{}/{}", text(domain, "namespace"), text(domain, "name")),
            source_type: text(domain, "domainHomeSourceType"),
            old_image: text(domain, "oldImage"),
            job,
            new_image,
            patch,
            state,
        });
    }
    out
}

fn bar(jobs: &[&Job]) -> Markup {
    let total = jobs.len().max(1);
    let count = |s: JobState| jobs.iter().filter(|j| j.state() == s).count();
    let (ok, failed, running) = (
        count(JobState::Succeeded),
        count(JobState::Failed) + count(JobState::Cancelled),
        count(JobState::Leased),
    );
    let width = |n: usize| format!("width:{:.1}%", n as f64 * 100.0 / total as f64);
    html! {
        div.bar title={ (ok) " done, " (failed) " failed, " (running) " running of " (jobs.len()) } {
            span.ok style=(width(ok)) {}
            span.failed style=(width(failed)) {}
            span.running style=(width(running)) {}
        }
        span.count { (ok) "/" (jobs.len()) " done" @if failed > 0 { ", " (failed) " failed" } @if running > 0 { ", " (running) " running" } }
    }
}

/// The whole campaign page.
pub async fn page(dashboard: &Dashboard, name: &str) -> Result<Markup, String> {
    let campaign = data::campaigns(dashboard)
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no campaign {name:?}"))?;
    let plan: Value = serde_json::from_str(&campaign.plan_json)
        .map_err(|e| format!("campaign {name}: its plan does not read: {e}"))?;
    let jobs = data::campaign_jobs(dashboard, name).await?;
    let by_request: HashMap<&str, &Job> = jobs.iter().map(|j| (j.request_id.as_str(), j)).collect();
    let mut by_key = HashMap::new();
    for planned in plan["jobs"].as_array().into_iter().flatten() {
        let key = planned["key"].as_str().unwrap_or_default();
        if let Some(job) = by_request.get(request_id(name, key).as_str()) {
            by_key.insert(key.to_string(), *job);
        }
    }
    let failed: Vec<(&String, &&Job)> = by_key
        .iter()
        .filter(|(_, j)| matches!(j.state(), JobState::Failed | JobState::Cancelled))
        .collect();
    let open = jobs.iter().any(|j| !j.ended());
    let overall = match (open, failed.is_empty()) {
        (true, _) => "running",
        (false, true) => "succeeded",
        (false, false) => "failed",
    };
    let domains = domains(&plan, &by_key);
    Ok(html! {
        h1 { "Campaign " (name) }
        p #campaign-state data-state=(overall) {
            span class={ "state " (overall) } { (overall) } " · " (jobs.len()) " jobs · "
            (plan["registries"].as_array().map_or(0, Vec::len)) " registries"
        }
        @if !failed.is_empty() {
            section.failures {
                h2 { "Failed" }
                @for (key, job) in &failed {
                    div.failure data-job=(job.id) {
                        a href={ "/jobs/" (job.id) "#log" } { (key) }
                        pre.reason { (job.error) }
                    }
                }
            }
        }
        section.stages {
            @for (prefix, label) in STAGES {
                @let stage: Vec<&Job> = by_key.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, j)| *j).collect();
                @if !stage.is_empty() {
                    div.stage data-stage=(label) { span.label { (label) } (bar(&stage)) }
                }
            }
        }
        h2 { "Domains" }
        div.scroll {
            table.domains {
                thead { tr { th { "domain" } th { "source" } th { "old → new image" } th { "state" } th { "time" } th { "patch" } } }
                tbody {
                    @for d in &domains {
                        tr.domain data-domain=(d.name) data-state=(d.state) {
                            td { (d.name) }
                            td { (d.source_type) }
                            td.images {
                                div.old { (d.old_image) }
                                div.new-image { @if let Some(new) = &d.new_image { "→ " (new) } @else { "→ …" } }
                            }
                            td { span class={ "state " (d.state) } { (d.state) } }
                            td { @if let Some(job) = d.job { (seconds(job)) } }
                            td {
                                @if let Some(patch) = &d.patch {
                                    details { summary { "Domain patch" } pre { (serde_json::to_string_pretty(patch).unwrap_or_default()) } }
                                }
                                @if let Some(job) = d.job { a.log href={ "/jobs/" (job.id) "#log" } { "job & log" } }
                            }
                        }
                    }
                }
            }
        }
    })
}
