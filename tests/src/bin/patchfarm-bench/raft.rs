//! Coordinator throughput: committed job submissions per second on a 3-node cluster on loopback
//! with concurrent clients, next to a 3-member etcd cluster measured in the same run with
//! `etcdctl check perf --load=l`; then the time from killing the leader to the first commit
//! under its successor.

use patchfarm_client::new_request_id;
use patchfarm_e2e::cluster::Cluster;
use patchfarm_e2e::tools::free_port;
use patchfarm_proto::v1::farm_client::FarmClient;
use patchfarm_proto::v1::{job_spec, CopyJob, JobSpec, SubmitJobRequest, SubmitJobsRequest};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHANNELS: usize = 8;
const IN_FLIGHT_PER_CHANNEL: usize = 64;
const MEASURE: Duration = Duration::from_secs(10);
/// Jobs per `SubmitJobs` call in the batched run.
const BATCH: usize = 32;

pub fn raft_bench() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "\n## Coordinator cluster: committed state transitions per second (3 nodes, loopback)"
    );
    let (single, batched, failover) = runtime.block_on(patchfarm_cluster());
    let etcd = etcd_cluster();
    println!("{:<44} {:>14}", "system", "writes/s");
    println!(
        "{:<44} {:>14.0}",
        format!(
            "patchfarm, SubmitJob x{} in flight",
            CHANNELS * IN_FLIGHT_PER_CHANNEL
        ),
        single
    );
    println!(
        "{:<44} {:>14.0}",
        format!(
            "patchfarm, SubmitJobs of {BATCH} x{} in flight",
            CHANNELS * IN_FLIGHT_PER_CHANNEL / 4
        ),
        batched
    );
    match etcd {
        Some(etcd) => {
            println!("{:<44} {:>14.0}", "etcd 3 members (etcdctl check perf --load=l)", etcd);
            println!(
                "ratio patchfarm / etcd: {:.2}x one job per call, {:.2}x batched calls (target >= 2x)",
                single / etcd,
                batched / etcd
            );
        }
        None => println!("etcd: not measured (etcd-server/etcd-client missing: apt-get install etcd-server etcd-client)"),
    }
    println!(
        "leader kill -> first commit under the new leader: {:.2} s (target <= 2 s)",
        failover.as_secs_f64()
    );
}

async fn patchfarm_cluster() -> (f64, f64, Duration) {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let single = submissions_per_second(&cluster, leader, 1, IN_FLIGHT_PER_CHANNEL, MEASURE).await;
    let batched =
        submissions_per_second(&cluster, leader, BATCH, IN_FLIGHT_PER_CHANNEL / 4, MEASURE).await;
    let failover = failover(&mut cluster, leader).await;
    (single, batched, failover)
}

/// A small typed job (a copy between two repositories): what one submission carries.
fn bench_verb() -> job_spec::Verb {
    job_spec::Verb::Copy(CopyJob {
        from: "registry.example/bench/source:1".into(),
        to: "registry.example/bench/aux:1".into(),
        platform: "linux/amd64".into(),
    })
}

fn job_request() -> SubmitJobRequest {
    SubmitJobRequest {
        request_id: new_request_id(),
        spec: Some(JobSpec {
            verb: Some(bench_verb()),
            submitter: "bench".into(),
            ..Default::default()
        }),
    }
}

/// Committed submissions per second with `in_flight` callers per channel, `batch` jobs per call.
pub(crate) async fn submissions_per_second(
    cluster: &Cluster,
    leader: u64,
    batch: usize,
    in_flight: usize,
    measure: Duration,
) -> f64 {
    let tls = patchfarm_client::tls::TlsFiles::new(cluster.certs_dir(), "client")
        .client()
        .unwrap();
    let committed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CHANNELS {
        let channel =
            patchfarm_client::connect_lazy(&cluster.address(leader), Some(tls.clone())).unwrap();
        for _ in 0..in_flight {
            let mut client = FarmClient::new(channel.clone());
            let committed = committed.clone();
            tasks.push(tokio::spawn(async move {
                while started.elapsed() < measure {
                    if batch == 1 {
                        if client.submit_job(job_request()).await.is_ok() {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        let jobs = (0..batch).map(|_| job_request()).collect();
                        if let Ok(reply) = client.submit_jobs(SubmitJobsRequest { jobs }).await {
                            committed
                                .fetch_add(reply.into_inner().jobs.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    committed.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn failover(cluster: &mut Cluster, leader: u64) -> Duration {
    // Failover: kill -9 the leader, then submit through the survivors until one commits.
    let survivors: Vec<String> = [1u64, 2, 3]
        .into_iter()
        .filter(|id| *id != leader)
        .map(|id| cluster.address(id))
        .collect();
    let client = cluster.client_for(&survivors);
    // Warm the survivors' connections so the measurement is the election, not TLS handshakes.
    let _ = client
        .call(|mut c| async move {
            c.cluster_status(patchfarm_proto::v1::ClusterStatusRequest {})
                .await
        })
        .await;
    let killed = Instant::now();
    cluster.kill(leader);
    let request = SubmitJobRequest {
        request_id: new_request_id(),
        spec: Some(JobSpec {
            verb: Some(bench_verb()),
            submitter: "failover".into(),
            ..Default::default()
        }),
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.submit_job(request).await }
        })
        .await
        .unwrap();
    killed.elapsed()
}

/// The etcd processes and their data directory, removed together.
struct Etcd(Vec<Child>, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn etcd_cluster() -> Option<f64> {
    if which("etcd").is_none() || which("etcdctl").is_none() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<(String, u16, u16)> = (1..=3)
        .map(|i| (format!("e{i}"), free_port(), free_port()))
        .collect();
    let initial = members
        .iter()
        .map(|(name, _, peer)| format!("{name}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut children = Vec::new();
    for (name, client, peer) in &members {
        children.push(
            Command::new("etcd")
                .args(["--name", name, "--data-dir"])
                .arg(dir.path().join(name))
                .args([
                    &format!("--listen-client-urls=http://127.0.0.1:{client}"),
                    &format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                    &format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                    &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                    &format!("--initial-cluster={initial}"),
                    "--initial-cluster-state=new",
                    "--initial-cluster-token=patchfarm-bench",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let _etcd = Etcd(children, dir);
    let endpoints = members
        .iter()
        .map(|(_, client, _)| format!("http://127.0.0.1:{client}"))
        .collect::<Vec<_>>()
        .join(",");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoints, "endpoint", "health"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "etcd did not become healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoints, "check", "perf", "--load=l"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let throughput = regex::Regex::new(r"Throughput (?:is|too low:) (\d+) writes/s")
        .unwrap()
        .captures(&text)
        .and_then(|c| c[1].parse::<f64>().ok());
    if throughput.is_none() {
        println!("etcdctl check perf printed no throughput:\n{text}");
    }
    throughput
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}
