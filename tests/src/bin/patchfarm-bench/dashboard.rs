//! What watching the farm costs: the scheduling run (10,000 no-op jobs, 100 simulated agents,
//! 3 coordinators, 1,000 of the jobs a campaign of 1,000 domains) once alone and once with a
//! browser-like client fetching the campaign's page and a scraper fetching `/metrics` from the
//! leader every second, on fresh clusters in the same run; then the finished 1,000-domain page's
//! server time (curl's time to first byte minus its time to send the request).

use crate::sched::{percentile, SimulatedFleet, AGENTS, JOBS};
use patchfarm_client::new_request_id;
use patchfarm_e2e::cluster::Cluster;
use patchfarm_proto::v1::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAINS: usize = 1_000;
const CAMPAIGN: &str = "bench";

pub fn dashboard_bench() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("\n## Dashboard and metrics cost: {JOBS} no-op jobs ({DOMAINS} of them a campaign of {DOMAINS} domains), {AGENTS} simulated agents, 3 coordinators");
        let (alone, _) = one_run(false).await;
        let (watched, page_ms) = one_run(true).await;
        println!("jobs/s alone: {alone:.0}; with a page poll and a scrape every second: {watched:.0}; {:.1} % fewer (target <= 5 %)",
            (1.0 - watched / alone) * 100.0);
        println!("campaign page of {DOMAINS} domains, server time over 10 fetches after the run: p50 {:.1} ms, max {:.1} ms (target <= 200 ms)",
            percentile(&page_ms, 0.5), percentile(&page_ms, 1.0));
    });
}

/// Server time of one GET (ms): first byte minus request sent.
async fn server_ms(url: &str, token: &str) -> Option<Duration> {
    let out = tokio::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "--max-time", "10", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args([
            "-w",
            "%{http_code} %{time_pretransfer} %{time_starttransfer}",
        ])
        .arg(url)
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = text.split_whitespace();
    if words.next()? != "200" {
        return None;
    }
    let sent: f64 = words.next()?.parse().ok()?;
    let first: f64 = words.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((first - sent).max(0.0)))
}

/// A campaign record whose plan names `DOMAINS` domains, each built by one of its no-op jobs.
fn campaign() -> SubmitCampaignRequest {
    let keys: Vec<String> = (0..DOMAINS)
        .map(|i| format!("domain/prod/d{i:04}"))
        .collect();
    let plan = serde_json::json!({
        "campaign": CAMPAIGN,
        "registries": ["registry.example:5000"],
        "jobs": keys.iter().map(|k| serde_json::json!({"key": k, "kind": "rebase", "after": [], "inputs": [], "pushes": "x"})).collect::<Vec<_>>(),
        "domains": keys.iter().enumerate().map(|(i, k)| serde_json::json!({
            "name": format!("d{i:04}"), "namespace": "prod", "domainResource": format!("d{i:04}"),
            "domainHomeSourceType": "Image", "oldImage": format!("registry.example:5000/d{i:04}:1"),
            "imageFrom": k, "pulledFrom": k, "action": "rebase", "auxiliaryImages": []})).collect::<Vec<_>>(),
        "skipped": [],
    });
    SubmitCampaignRequest {
        request_id: new_request_id(),
        campaign: Some(Campaign {
            name: CAMPAIGN.into(),
            file: String::new(),
            plan_json: plan.to_string(),
            submitted_unix_ms: 0,
        }),
        jobs: keys
            .iter()
            .map(|k| SubmitJobRequest {
                request_id: patchfarm_jobs::campaign::request_id(CAMPAIGN, k),
                spec: Some(JobSpec {
                    verb: Some(job_spec::Verb::Noop(NoopJob {})),
                    campaign: CAMPAIGN.into(),
                    ..Default::default()
                }),
            })
            .collect(),
    }
}

/// One scheduling run on a fresh cluster: jobs/s, and (watched) the page's server times after.
async fn one_run(watched: bool) -> (f64, Vec<Duration>) {
    let cluster = Cluster::start_with_agents(
        3,
        AGENTS,
        &["--allow-noop-jobs", "--heartbeat-ttl-ms=10000"],
    );
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let fleet = SimulatedFleet::start(&cluster, AGENTS, 0).await;
    let stop = Arc::new(AtomicBool::new(false));
    let token = cluster.dashboard_token();
    let base = cluster.dashboard_url(leader);
    let watchers: Vec<_> = if watched {
        [
            format!("{base}/campaigns/{CAMPAIGN}"),
            format!("{base}/metrics"),
        ]
        .into_iter()
        .map(|url| {
            let (stop, token) = (stop.clone(), token.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let _ = server_ms(&url, &token).await;
                }
            })
        })
        .collect()
    } else {
        Vec::new()
    };

    let client = cluster.client();
    let started = Instant::now();
    let request = campaign();
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.submit_campaign(request).await }
        })
        .await
        .unwrap();
    crate::sched::submit_noop_jobs(&client, JOBS - DOMAINS).await;
    fleet.wait_for(JOBS).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    fleet.stop().await;
    for task in watchers {
        let _ = task.await;
    }
    let mut page = Vec::new();
    if watched {
        for _ in 0..10 {
            if let Some(took) = server_ms(&format!("{base}/campaigns/{CAMPAIGN}"), &token).await {
                page.push(took);
            }
        }
        page.sort();
        assert_eq!(page.len(), 10, "the campaign page did not answer 200");
    }
    (JOBS as f64 / elapsed.as_secs_f64(), page)
}
