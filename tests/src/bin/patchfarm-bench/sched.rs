//! Scheduling throughput: 10,000 no-op jobs through 3 coordinators (release, mTLS, loopback) and
//! 100 simulated agents in this process — each registers, heartbeats, long-polls for as many jobs
//! as it has slots and completes them at once. Prints jobs/s end to end, lease latency
//! percentiles, the leader's RSS after the run and an idle real agent's RSS; the baseline, in the
//! same run and on the same cluster, is plain SubmitJob writes/s (a scheduled job costs at least
//! three writes: its submission, its share of a lease and its completion).

use patchfarm_client::new_request_id;
use patchfarm_client::FarmClient;
use patchfarm_e2e::cluster::Cluster;
use patchfarm_proto::v1::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const JOBS: usize = 10_000;
pub(crate) const AGENTS: usize = 100;
const SLOTS: u32 = 4;
pub(crate) const SUBMIT_BATCH: usize = 500;

/// Submits `jobs` no-op jobs in batches of `SUBMIT_BATCH` from 4 submitters.
pub(crate) async fn submit_noop_jobs(client: &FarmClient, jobs: usize) {
    for _ in 0..jobs / SUBMIT_BATCH {
        let batch = (0..SUBMIT_BATCH)
            .map(|i| SubmitJobRequest {
                request_id: new_request_id(),
                spec: Some(JobSpec {
                    verb: Some(job_spec::Verb::Noop(NoopJob {})),
                    submitter: format!("team-{}", i % 4),
                    ..Default::default()
                }),
            })
            .collect::<Vec<_>>();
        let request = SubmitJobsRequest { jobs: batch };
        client
            .call(|mut c| {
                let request = request.clone();
                async move { c.submit_jobs(request).await }
            })
            .await
            .unwrap();
    }
}

pub fn sched_bench() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(JOBS, AGENTS, 0));
}

/// Fleet scale: today's run as the anchor, then 100,000 jobs over 1,000 simulated agents whose
/// heartbeats carry a 500-digest cache (as changes, once the leader holds the list).
pub fn fleet_bench() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        run(JOBS, AGENTS, 0).await;
        run(100_000, 1_000, 500).await;
    });
}

pub(crate) fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Simulated agents running in this process, and what they completed.
pub(crate) struct SimulatedFleet {
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SimulatedFleet {
    /// `agents` simulated agents (`agent-1` …) with `cached` digests each, registered.
    pub(crate) async fn start(cluster: &Cluster, agents: usize, cached: usize) -> Self {
        let addresses = cluster.addresses();
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for k in 1..=agents {
            let client =
                FarmClient::new(&addresses, Some(cluster.certs_dir()), &format!("agent-{k}"))
                    .unwrap();
            tasks.push(tokio::spawn(simulated_agent(
                client,
                stop.clone(),
                completed.clone(),
                latencies.clone(),
                cached,
            )));
        }
        tokio::time::sleep(Duration::from_secs(1 + agents as u64 / 200)).await; // registrations
        SimulatedFleet {
            stop,
            completed,
            latencies,
            tasks,
        }
    }

    /// Waits until `jobs` jobs completed (at most 300 s).
    pub(crate) async fn wait_for(&self, jobs: usize) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while (self.completed.load(Ordering::Relaxed) as usize) < jobs {
            assert!(
                Instant::now() < deadline,
                "only {} of {jobs} jobs completed in 300 s",
                self.completed.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every agent; the lease latencies of the calls that got work, sorted.
    pub(crate) async fn stop(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let mut latencies = self.latencies.lock().unwrap().clone();
        latencies.sort();
        latencies
    }
}

/// One simulated agent: register, heartbeat, lease, complete at once.
pub(crate) async fn simulated_agent(
    client: FarmClient,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    cached: usize,
) {
    client
        .call_agent(|mut c| async move {
            c.register(RegisterRequest {
                request_id: new_request_id(),
                slots: SLOTS,
                ..Default::default()
            })
            .await
        })
        .await
        .unwrap();
    let beat = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            // A cache of `cached` digests, one replaced per beat; the whole list goes only when
            // the leader asks for it, as a real agent does.
            let mut held: Vec<String> = (0..cached).map(|i| format!("sha256:{i:064x}")).collect();
            let mut whole = true;
            let mut turn = cached;
            while !stop.load(Ordering::Relaxed) {
                let request = if whole {
                    HeartbeatRequest {
                        cached_digests: held.clone(),
                        ..Default::default()
                    }
                } else {
                    turn += 1;
                    let added = format!("sha256:{turn:064x}");
                    let removed = if held.is_empty() {
                        Vec::new()
                    } else {
                        vec![held.remove(0)]
                    };
                    held.push(added.clone());
                    HeartbeatRequest {
                        cached_delta: true,
                        cached_added: vec![added],
                        cached_removed: removed,
                        ..Default::default()
                    }
                };
                let answer = client
                    .call_agent(|mut c| {
                        let request = request.clone();
                        async move { c.heartbeat(request).await }
                    })
                    .await;
                whole = answer.map_or(true, |a| a.send_cache || a.register);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let leased = client
            .call_agent(|mut c| async move {
                c.lease(LeaseRequest {
                    request_id: new_request_id(),
                    max_jobs: SLOTS,
                    wait_ms: 500,
                    max_registry_jobs: 0,
                })
                .await
            })
            .await;
        let Ok(leased) = leased else { continue };
        if leased.jobs.is_empty() {
            continue;
        }
        latencies.lock().unwrap().push(asked.elapsed());
        let completions = leased.jobs.into_iter().map(|job| {
            let client = client.clone();
            async move {
                let request = CompleteRequest {
                    request_id: new_request_id(),
                    job_id: job.id.clone(),
                    fencing_token: job.lease.as_ref().unwrap().fencing_token,
                    success: true,
                    ..Default::default()
                };
                client
                    .call_agent(|mut c| {
                        let request = request.clone();
                        async move { c.complete(request).await }
                    })
                    .await
                    .is_ok()
            }
        });
        let done = futures_util::future::join_all(completions).await;
        completed.fetch_add(
            done.iter().filter(|ok| **ok).count() as u64,
            Ordering::Relaxed,
        );
    }
    beat.abort();
}

async fn run(jobs: usize, agents: usize, cached: usize) {
    println!("\n## Scheduling: {jobs} no-op jobs, {agents} simulated agents x {SLOTS} slots ({cached} cached digests each), 3 coordinators");
    let cluster = Cluster::start_with_agents(
        3,
        agents + 1,
        &["--allow-noop-jobs", "--heartbeat-ttl-ms=10000"],
    );
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let addresses = cluster.addresses();
    let fleet = SimulatedFleet::start(&cluster, agents, cached).await;

    let client = cluster.client();
    let started = Instant::now();
    submit_noop_jobs(&client, jobs).await;
    let submitted = started.elapsed();
    fleet.wait_for(jobs).await;
    let elapsed = started.elapsed();
    let leader_rss = rss_mib(cluster.pid(leader).unwrap());
    let lat = fleet.stop().await;
    let jobs_per_s = jobs as f64 / elapsed.as_secs_f64();

    // Baseline on the same cluster: plain writes, one job per call, 100 callers.
    let writes_per_s =
        crate::raft::submissions_per_second(&cluster, leader, 1, 100, Duration::from_secs(3)).await;

    // An idle real agent's memory.
    let work = tempfile::tempdir().unwrap();
    let mut agent = std::process::Command::new(patchfarm_e2e::farm::agent_bin())
        .arg(format!("--name=agent-{}", agents + 1))
        .arg(format!("--coordinator={}", addresses.join(",")))
        .arg(format!(
            "--cache-dir={}",
            work.path().join("cache").display()
        ))
        .arg(format!("--tls-dir={}", cluster.certs_dir().display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let agent_rss = rss_mib(agent.id());
    let _ = agent.kill();
    let _ = agent.wait();

    println!(
        "submitted {jobs} jobs in {:.2} s (SubmitJobs of {SUBMIT_BATCH})",
        submitted.as_secs_f64()
    );
    println!(
        "end to end (first submission to last completion): {:.2} s = {:.0} jobs/s (target >= 500)",
        elapsed.as_secs_f64(),
        jobs_per_s
    );
    println!(
        "lease latency, calls that got work ({} calls): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    println!(
        "baseline: plain SubmitJob on the same cluster {writes_per_s:.0} writes/s; scheduled jobs/s / writes/s = {:.2} (a job is >= 3 writes)",
        jobs_per_s / writes_per_s
    );
    println!("leader RSS after {jobs} jobs: {leader_rss:.0} MiB (target <= 300)");
    println!("idle agent RSS: {agent_rss:.1} MiB (target <= 64)");
}
