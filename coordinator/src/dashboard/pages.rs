//! The pages' HTML (maud escapes every value): the layout with its navigation and live script,
//! and the campaigns list, jobs list and page, agents and cluster.

use super::campaign::state_name;
use maud::{html, Markup, DOCTYPE};
use patchfarm_proto::v1::{AgentStatus, Campaign, ClusterStatusResponse, Job};
use std::collections::BTreeMap;

const NAV: [(&str, &str); 4] = [
    ("/campaigns", "Campaigns"),
    ("/jobs", "Jobs"),
    ("/agents", "Agents"),
    ("/cluster", "Cluster"),
];
const STATES: [&str; 5] = ["queued", "leased", "succeeded", "failed", "cancelled"];
const VERBS: [&str; 7] = [
    "create",
    "update",
    "rebase",
    "createAuxImage",
    "refreshAuxImage",
    "copy",
    "noop",
];

/// A whole page: `main` inside the layout; the script keeps `main` in step with `live`.
pub fn layout(path: &str, live: &str, seen: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "patchfarm · " (path.trim_start_matches('/')) }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/live.js" defer {}
            }
            body {
                header {
                    a.brand href="/campaigns" { "patchfarm" }
                    nav { @for (href, label) in NAV {
                        a class=[path.starts_with(href).then_some("here")] href=(href) { (label) }
                    } }
                    span #connection title="live updates" { "●" }
                }
                main #live data-live=(live) data-seen=(seen) { (main) }
            }
        }
    }
}

pub fn unavailable(why: &str) -> Markup {
    html! { p.unavailable { "Not available: " (why) } }
}

/// A record's time as the CLI prints it (UTC, RFC 3339).
fn when(unix_ms: i64) -> String {
    patchfarm_engine::recipe::rfc3339((unix_ms.max(0) / 1000) as u64)
}

pub fn campaigns(campaigns: Vec<Campaign>) -> Markup {
    html! {
        h1 { "Campaigns" }
        @if campaigns.is_empty() { p { "No campaign submitted yet (" code { "patchfarm campaign run FILE --farm …" } ")." } }
        ul.campaigns { @for c in &campaigns {
            li data-campaign=(c.name) { a href={ "/campaigns/" (c.name) } { (c.name) } " · submitted " (when(c.submitted_unix_ms)) }
        } }
    }
}

fn verb(job: &Job) -> &'static str {
    job.spec.as_ref().map_or("none", patchfarm_jobs::verb_name)
}

pub fn jobs(jobs: &[Job], query: &BTreeMap<String, String>) -> Markup {
    let chosen = |k: &str| query.get(k).cloned().unwrap_or_default();
    html! {
        h1 { "Jobs" }
        form.filters method="get" action="/jobs" {
            select name="state" { option value="" { "any state" } @for s in STATES { option value=(s) selected[chosen("state") == s] { (s) } } }
            select name="verb" { option value="" { "any verb" } @for v in VERBS { option value=(v) selected[chosen("verb") == v] { (v) } } }
            input name="campaign" placeholder="campaign" value=(chosen("campaign"));
            input name="q" placeholder="id contains" value=(chosen("q"));
            button type="submit" { "Filter" }
        }
        p.count { (jobs.len()) " shown" @if jobs.len() == super::data::JOBS_SHOWN { " (the newest)" } }
        div.scroll { table.jobs {
            thead { tr { th { "job" } th { "verb" } th { "campaign" } th { "state" } th { "attempts" } th { "progress / error" } } }
            tbody { @for job in jobs {
                tr.job data-job=(job.id) data-state=(state_name(job)) {
                    td { a href={ "/jobs/" (job.id) } { (job.id) } }
                    td { (verb(job)) }
                    td { @if let Some(spec) = &job.spec { (spec.campaign) } }
                    td { span class={ "state " (state_name(job)) } { (state_name(job)) } }
                    td { (job.attempts) }
                    td { @if job.error.is_empty() { (job.progress) } @else { span.error { (job.error) } } }
                }
            } }
        } }
    }
}

pub fn job(job: &Job) -> Markup {
    let state = state_name(job);
    html! {
        h1 { "Job " (job.id) }
        dl.facts {
            dt { "state" } dd #job-state data-state=(state) { span class={ "state " (state) } { (state) } }
            dt { "verb" } dd { (verb(job)) }
            @if let Some(spec) = &job.spec { @if !spec.campaign.is_empty() {
                dt { "campaign" } dd { a href={ "/campaigns/" (spec.campaign) } { (spec.campaign) } }
            } }
            dt { "attempts" } dd { (job.attempts) }
            dt { "submitted" } dd { (when(job.submitted_unix_ms)) }
            dt { "updated" } dd { (when(job.updated_unix_ms)) }
            @if let Some(lease) = &job.lease { @if !lease.agent.is_empty() {
                dt { "agent" } dd { (lease.agent) " (lease " (lease.fencing_token) ")" }
            } }
            @if !job.waiting.is_empty() { dt { "waiting" } dd { (job.waiting) } }
            @if !job.progress.is_empty() { dt { "progress" } dd { (job.progress) } }
        }
        @if !job.error.is_empty() { section.failures { h2 { "Error" } pre.reason { (job.error) } } }
        @for digest in &job.digests { p.digest { "pushed " code { (digest) } } }
        h2 #log-title { "Log" }
        pre #log { (job.log) }
        details { summary { "Outcome" } pre { (format!("{:#?}", job.outcome)) } }
        details { summary { "Typed spec" } pre { (format!("{:#?}", job.spec)) } }
    }
}

pub fn agents(agents: &[AgentStatus]) -> Markup {
    html! {
        h1 { "Agents" }
        div.scroll { table.agents {
            thead { tr { th { "agent" } th { "up" } th { "slots" } th { "running" } th { "cache" } th { "hit ratio" } th { "last heartbeat" } th { "build steps" } } }
            tbody { @for status in agents {
                @let agent = status.agent.clone().unwrap_or_default();
                @let lookups = status.cache_hits + status.cache_misses;
                tr.agent data-agent=(agent.name) data-up=(status.up) {
                    td { (agent.name) }
                    td { span class={ "state " (if status.up { "up" } else { "down" }) } { (if status.up { "up" } else { "down" }) } }
                    td { (agent.slots) }
                    td { (status.running) }
                    td { (format!("{:.1} MiB", status.cache_bytes as f64 / 1048576.0)) " · " (status.cached_items) " items" }
                    td { @if lookups > 0 { (format!("{:.0} %", status.cache_hits as f64 * 100.0 / lookups as f64)) } @else { "–" } }
                    td { @if status.last_heartbeat_ms_ago < 0 { "none yet" } @else { (format!("{:.1} s ago", status.last_heartbeat_ms_ago as f64 / 1000.0)) } }
                    td { @match &agent.steps {
                        Some(steps) if steps.available => { "yes" @if steps.network_refused { " (no network)" } }
                        Some(steps) => { "no: " (steps.unavailable_reason) }
                        None => { "–" }
                    } }
                }
            } }
        } }
    }
}

pub fn cluster(cluster: &ClusterStatusResponse) -> Markup {
    html! {
        h1 { "Cluster" }
        p #leader data-leader=(cluster.leader) {
            @if cluster.leader == 0 { span.state.failed { "no leader known" } } @else { "leader: node " (cluster.leader) }
        }
        div.scroll { table.nodes {
            thead { tr { th { "node" } th { "address" } th { "role" } th { "term" } th { "commit" } th { "applied" } th { "healthy" } } }
            tbody { @for node in &cluster.nodes {
                tr.node data-node=(node.id) data-role=(node.role) {
                    td { (node.id) } td { (node.address) }
                    td { span class={ "state " (node.role) } { (node.role) } }
                    td { (node.term) } td { (node.commit) } td { (node.applied) }
                    td { (if node.healthy { "yes" } else { "no" }) }
                }
            } }
        } }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(super::when(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::when(1_796_083_200_000), "2026-12-01T00:00:00Z");
    }
}
