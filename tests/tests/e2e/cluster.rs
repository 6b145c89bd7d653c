//! The coordinator cluster as separate processes on loopback: failover with `kill -9`, restarts
//! from the data directory, partitions through cuttable links, concurrent clients during a
//! leader kill (no duplicate jobs), and membership changes at run time.

use patchfarm_client::new_request_id;
use patchfarm_client::FarmClient;
use patchfarm_e2e::cluster::Cluster;
use patchfarm_proto::v1::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn spec(submitter: &str, n: usize) -> JobSpec {
    JobSpec {
        verb: Some(job_spec::Verb::Copy(CopyJob {
            from: "registry.example/source:1".into(),
            to: format!("registry.example/{submitter}:{n}"),
            platform: "linux/amd64".into(),
        })),
        submitter: submitter.into(),
        ..Default::default()
    }
}

async fn submit(client: &FarmClient, submitter: &str, n: usize) -> Job {
    let request = SubmitJobRequest {
        request_id: new_request_id(),
        spec: Some(spec(submitter, n)),
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.submit_job(request).await }
        })
        .await
        .unwrap_or_else(|e| panic!("submitting {submitter} #{n}: {e}"))
}

async fn all_jobs(client: &FarmClient) -> Vec<Job> {
    client
        .call(|mut c| async move { c.list_jobs(ListJobsRequest::default()).await })
        .await
        .unwrap()
        .jobs
}

/// `patchfarm cluster remove-node ID --json`: the printed status and its member ids.
fn remove_node(cluster: &Cluster, id: u64) -> (serde_json::Value, Vec<u64>) {
    let out = cluster.cli(&["cluster", "remove-node", &id.to_string(), "--json"]);
    assert!(
        out.status.success(),
        "remove-node {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    (status, ids)
}

async fn commit_of(cluster: &Cluster, id: u64) -> u64 {
    let status = cluster.status_from(id).await.expect("node answers");
    status.nodes.iter().find(|n| n.id == id).unwrap().commit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_kill_keeps_acknowledged_jobs_and_restarts_catch_up() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let mut acknowledged = Vec::new();
    for (n, id) in [1u64, 2, 3].iter().cycle().take(12).enumerate() {
        // Through every node: followers forward writes to the leader inside raft.
        let job = submit(&cluster.client_for(&[cluster.address(*id)]), "before", n).await;
        acknowledged.push(job.id);
    }

    cluster.kill(leader);
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_leader(&survivors).await;
    assert_ne!(new_leader, leader);
    let survivor_client = cluster.client_for(&[cluster.address(survivors[0])]);
    for n in 0..6 {
        acknowledged.push(submit(&survivor_client, "after", n).await.id);
    }
    let ids: BTreeSet<String> = all_jobs(&survivor_client)
        .await
        .into_iter()
        .map(|j| j.id)
        .collect();
    for id in &acknowledged {
        assert!(
            ids.contains(id),
            "acknowledged job {id} lost after the leader's kill"
        );
    }

    // The killed node restarts from its data dir and catches up.
    cluster.restart(leader);
    let commit = commit_of(&cluster, new_leader).await;
    cluster.wait_applied(leader, commit).await;
    let restarted = cluster.client_for(&[cluster.address(leader)]);
    let seen: BTreeSet<String> = all_jobs(&restarted)
        .await
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(seen, ids, "the restarted node sees the same jobs");

    // All three stopped (kill -9) and started again: state intact.
    for id in [1, 2, 3] {
        cluster.kill(id);
    }
    for id in [1, 2, 3] {
        cluster.restart(id);
    }
    cluster.wait_leader(&[1, 2, 3]).await;
    let after_restart: BTreeSet<String> = all_jobs(&cluster.client())
        .await
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(after_restart, ids);
    assert_eq!(after_restart.len(), 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_during_leader_kill_create_each_job_exactly_once() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    const PER_CLIENT: usize = 40;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..4usize {
        // Each client starts at a different node and fails over to the others.
        let mut addresses = cluster.addresses();
        addresses.rotate_left(c % 3);
        let client = cluster.client_for(&addresses);
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..PER_CLIENT {
                let job = submit(&client, &format!("client-{c}"), n).await;
                acked.push((n, job.id));
                progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            acked
        }));
    }
    // Kill the leader while the four clients are busy.
    while progress.load(std::sync::atomic::Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    cluster.kill(leader);
    let at_kill = progress.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        at_kill < 4 * PER_CLIENT,
        "the clients finished before the kill"
    );
    let mut acked = BTreeMap::new();
    for (c, task) in tasks.into_iter().enumerate() {
        for (n, id) in task.await.unwrap() {
            acked.insert((format!("client-{c}"), n), id);
        }
    }
    assert_eq!(acked.len(), 4 * PER_CLIENT);
    let jobs = all_jobs(&cluster.client()).await;
    let mut by_submission: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for job in &jobs {
        let spec = job.spec.clone().unwrap();
        let Some(job_spec::Verb::Copy(copy)) = spec.verb else {
            panic!("{} is not the copy job submitted", job.id)
        };
        by_submission
            .entry((spec.submitter, copy.to))
            .or_default()
            .push(job.id.clone());
    }
    for ((submitter, n), id) in &acked {
        let key = (
            submitter.clone(),
            format!("registry.example/{submitter}:{n}"),
        );
        let found = by_submission.get(&key).cloned().unwrap_or_default();
        assert_eq!(
            found,
            vec![id.clone()],
            "{submitter} #{n}: exactly the acknowledged job"
        );
    }
    assert_eq!(
        jobs.len(),
        4 * PER_CLIENT,
        "no duplicate jobs from retried proposals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_minority_cannot_commit_and_converges_after_healing() {
    let cluster = Cluster::start_with_links(3);
    let old_leader = cluster.wait_leader(&[1, 2, 3]).await;
    let everyone = cluster.client();
    submit(&everyone, "before", 0).await;

    // Cut the leader off: it becomes the minority.
    let minority = old_leader;
    for ((from, to), link) in &cluster.links {
        if *from == minority || *to == minority {
            link.cut();
        }
    }
    let majority: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != minority).collect();
    let commit_before = commit_of(&cluster, minority).await;
    let minority_client = cluster
        .client_for(&[cluster.address(minority)])
        .with_deadline(Duration::from_secs(3));
    let request = SubmitJobRequest {
        request_id: new_request_id(),
        spec: Some(spec("minority", 0)),
    };
    let refused = minority_client
        .call(|mut c| {
            let request = request.clone();
            async move { c.submit_job(request).await }
        })
        .await;
    assert!(
        refused.is_err(),
        "the minority acknowledged a write: {refused:?}"
    );

    let new_leader = cluster.wait_leader(&majority).await;
    let majority_client = cluster.client_for(
        &majority
            .iter()
            .map(|id| cluster.address(*id))
            .collect::<Vec<_>>(),
    );
    for n in 0..5 {
        submit(&majority_client, "majority", n).await;
    }
    assert_eq!(
        commit_of(&cluster, minority).await,
        commit_before,
        "the minority's commit index moved while it was cut off"
    );

    for link in cluster.links.values() {
        link.heal();
    }
    let commit = commit_of(&cluster, new_leader).await;
    cluster.wait_applied(minority, commit).await;
    let seen = all_jobs(&cluster.client_for(&[cluster.address(minority)])).await;
    let submitters: Vec<String> = seen
        .iter()
        .map(|j| j.spec.clone().unwrap().submitter)
        .collect();
    assert_eq!(
        submitters,
        ["before", "majority", "majority", "majority", "majority", "majority"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_and_a_member_leaves_while_the_cluster_keeps_committing() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let client = cluster.client();
    for n in 0..5 {
        submit(&client, "three", n).await;
    }
    let out = cluster.cli(&["cluster", "status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["leader"].as_u64(), Some(leader), "{status}");
    for node in status["nodes"].as_array().unwrap() {
        for field in [
            "id", "address", "role", "term", "commit", "applied", "healthy",
        ] {
            assert!(!node[field].is_null(), "{field} missing in {node}");
        }
        assert_eq!(node["healthy"], true, "{node}");
        let expected_role = if node["id"].as_u64() == Some(leader) {
            "leader"
        } else {
            "follower"
        };
        assert_eq!(node["role"], expected_role, "{node}");
    }
    let metrics = cluster.metrics(leader);
    assert!(
        metrics.contains(&format!("patchfarm_raft_is_leader{{node=\"{leader}\"}} 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE patchfarm_raft_applied_entries counter"),
        "{metrics}"
    );

    let address = cluster.start_joining(4);
    let out = cluster.cli(&["cluster", "add-node", &format!("4={address}"), "--json"]);
    assert!(
        out.status.success(),
        "add-node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 4, "{status}");
    for n in 0..5 {
        submit(&client, "four", n).await;
    }
    let commit = commit_of(&cluster, leader).await;
    cluster.wait_applied(4, commit).await;
    let on_four = all_jobs(&cluster.client_for(std::slice::from_ref(&address))).await;
    assert_eq!(on_four.len(), 10, "the new node holds every job");
    // And it knows every voter, not just the changes it replayed (else it could elect itself).
    let four = cluster.status_from(4).await.expect("node 4 answers");
    let mut voters: Vec<u64> = four.nodes.iter().map(|n| n.id).collect();
    voters.sort_unstable();
    assert_eq!(voters, [1, 2, 3, 4], "node 4's own membership");

    // Remove a member that is not the leader; the remaining three keep committing.
    let leaving = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let (status, ids) = remove_node(&cluster, leaving);
    assert!(!ids.contains(&leaving) && ids.len() == 3, "{status}");
    cluster.kill(leaving);
    let remaining: Vec<String> = cluster
        .nodes
        .keys()
        .filter(|id| **id != leaving)
        .map(|id| cluster.address(*id))
        .collect();
    let client = cluster.client_for(&remaining);
    let started = Instant::now();
    for n in 0..5 {
        submit(&client, "after-remove", n).await;
    }
    assert_eq!(all_jobs(&client).await.len(), 15);
    eprintln!("5 commits after the removal in {:?}", started.elapsed());

    // Remove the leader itself: it hands over first, and the other two keep committing.
    let (status, ids) = remove_node(&cluster, leader);
    assert!(!ids.contains(&leader) && ids.len() == 2, "{status}");
    assert_ne!(status["leader"].as_u64(), Some(leader), "{status}");
    let last_two: Vec<String> = ids.iter().map(|id| cluster.address(*id)).collect();
    let client = cluster.client_for(&last_two);
    for n in 0..3 {
        submit(&client, "after-leader-removed", n).await;
    }
    assert_eq!(all_jobs(&client).await.len(), 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_behind_the_compacted_log_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start_with_args(3, &["--compact-after=40"]);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let behind = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster.kill(behind);
    let client = cluster.client_for(&[cluster.address(leader)]);
    // One submission at a time: one log entry each, well past two compactions.
    for n in 0..120 {
        submit(&client, "while-down", n).await;
    }
    cluster.restart(behind);
    let commit = commit_of(&cluster, leader).await;
    cluster.wait_applied(behind, commit).await;
    let seen = all_jobs(&cluster.client_for(&[cluster.address(behind)])).await;
    assert_eq!(
        seen.len(),
        120,
        "the restarted node holds every job after the snapshot"
    );
    let metrics = cluster.metrics(behind);
    assert!(
        !metrics.contains(&format!(
            "patchfarm_raft_snapshots_installed_total{{node=\"{behind}\"}} 0"
        )) && metrics.contains("patchfarm_raft_snapshots_installed_total"),
        "the restarted node caught up without a snapshot: {metrics}"
    );
    // And it keeps following the log after the snapshot.
    submit(&client, "after", 0).await;
    let commit = commit_of(&cluster, leader).await;
    cluster.wait_applied(behind, commit).await;
    assert_eq!(
        all_jobs(&cluster.client_for(&[cluster.address(behind)]))
            .await
            .len(),
        121
    );
}

/// `/healthz` answers while the process runs; `/readyz` is 200 while the node knows a leader,
/// 503 once it is cut off from the majority, and 200 again when the majority is back; any
/// other path is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_majority() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    // The answer to `/readyz` once it starts with `status` (a follower hears of the leader
    // with its first message from it).
    async fn readyz(cluster: &Cluster, node: u64, status: &str) -> String {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let answer = cluster.http_get(node, "/readyz");
            if answer.starts_with(&format!("HTTP/1.1 {status}")) {
                return answer;
            }
            assert!(std::time::Instant::now() < until, "not {status}: {answer}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let status = |cluster: &Cluster, path: &str| {
        let answer = cluster.http_get(survivor, path);
        answer.lines().next().unwrap_or_default().to_string()
    };
    // The standard gRPC health service says the same on the gRPC port.
    async fn grpc_health(cluster: &Cluster, node: u64, want: ServingStatus) {
        let client = cluster.client_for(&[cluster.address(node)]);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let answer = client
                .call_service(|channel| async move {
                    HealthClient::new(channel)
                        .check(HealthCheckRequest {
                            service: "patchfarm.v1.Farm".into(),
                        })
                        .await
                })
                .await;
            if answer.as_ref().is_ok_and(|a| a.status() == want) {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "not {want:?}: {answer:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    readyz(&cluster, survivor, "200").await;
    grpc_health(&cluster, survivor, ServingStatus::Serving).await;
    assert!(status(&cluster, "/healthz").contains("200"));
    assert!(status(&cluster, "/nope").contains("404"));
    assert!(status(&cluster, "/metrics").contains("200"));

    let others: Vec<u64> = (1..=3).filter(|id| *id != survivor).collect();
    for id in &others {
        cluster.kill(*id);
    }
    let alone = readyz(&cluster, survivor, "503").await;
    assert!(alone.contains("knows no leader"), "{alone}");
    grpc_health(&cluster, survivor, ServingStatus::NotServing).await;
    assert!(
        status(&cluster, "/healthz").contains("200"),
        "alive all the same"
    );

    cluster.restart(others[0]);
    readyz(&cluster, survivor, "200").await;
    grpc_health(&cluster, survivor, ServingStatus::Serving).await;
}

/// One node under `rust_log` (`None`: the daemon's default filter) until it leads; its log.
fn single_node_log(rust_log: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let ports = patchfarm_e2e::tools::free_ports(2);
    let http = format!("127.0.0.1:{}", ports[1]);
    let log_path = dir.path().join("node.log");
    let mut command = std::process::Command::new(patchfarm_e2e::cluster::coordinator_bin());
    command
        .args(["--node-id=1", "--insecure"])
        .arg(format!("--listen=127.0.0.1:{}", ports[0]))
        .arg(format!("--metrics-listen={http}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("RUST_LOG")
        .stderr(std::fs::File::create(&log_path).unwrap());
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !patchfarm_e2e::tools::http_get(&http, "/readyz").starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "the node never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(log_path).unwrap()
}

#[test]
fn raft_logs_follow_the_slog_filter() {
    // The default (`slog=warn`): raft-rs's INFO lines (elections) are left out.
    let quiet = single_node_log(None);
    assert!(!quiet.contains("became leader"), "{quiet}");
    // Asked for: they are there, under the target `slog`, naming raft's module.
    let chatty = single_node_log(Some("info,slog=info"));
    let line = chatty
        .lines()
        .find(|l| l.contains("became leader"))
        .unwrap_or_else(|| panic!("{chatty}"));
    assert!(
        line.contains("slog") && line.contains("raft=\"raft::raft\""),
        "{line}"
    );
}

/// A coordinator that lost its data directory comes back under its old id: removed from the
/// membership, emptied, started with --join at its address and added again — and it catches up.
/// (Its peers name it on their command lines: re-adding it once left it without messages.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_lost_its_data_comes_back_under_its_id() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let lost = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let others: Vec<String> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != lost)
        .map(|id| cluster.address(id))
        .collect();
    let client = cluster.client_for(&others);
    for n in 0..5 {
        submit(&client, "before", n).await;
    }
    let (status, ids) = remove_node(&cluster, lost);
    assert!(!ids.contains(&lost), "{status}");
    cluster.kill(lost);
    let dir = cluster.nodes[&lost].data_dir.clone();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    cluster.restart_with(lost, &["--join".into()]);
    let out = cluster.cli(&[
        "cluster",
        "add-node",
        &format!("{lost}={}", cluster.address(lost)),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "add-node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in 0..5 {
        submit(&client, "after", n).await;
    }
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let commit = commit_of(&cluster, leader).await;
    cluster.wait_applied(lost, commit).await;
    let seen = all_jobs(&cluster.client_for(&[cluster.address(lost)])).await;
    assert_eq!(seen.len(), 10, "the re-joined node holds every job");
}
