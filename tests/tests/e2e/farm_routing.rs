//! The farm's scheduling and guards, end to end: cache affinity over a 40-job run with 3 agents
//! (each installer fetched at most once per agent; the hit rate is printed), inputs missing from
//! the catalog or corrupt in the artifact store (clear error, nothing pushed), agents without a
//! valid agent certificate (refused), and a cancel reaching a running job.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::tools::write_wdt_zip;
use patchfarm_proto::v1::JobState;
use std::collections::BTreeMap;
use std::time::Duration;

const VERSIONS: &[&str] = &["1.0.0", "2.0.0", "3.0.0", "4.0.0"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_follow_their_installers_and_each_is_fetched_once_per_agent() {
    // The artifact store is a registry repository here (the other tests use an oci: layout).
    let mut farm = Farm::start_with_registry_store(1);
    farm.cluster.wait_leader(&[1]).await;
    for version in VERSIONS {
        let zip = farm.dir.path().join(format!("wdt-{version}.zip"));
        write_wdt_zip(&zip, version);
        farm.add_installer("wdt", version, &zip);
    }
    // Each item is an OCI artifact in the registry, tagged by its digest.
    let listed: serde_json::Value =
        serde_json::from_str(&farm.ok(&["--json", "cache", "listItems"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), VERSIONS.len());
    for item in listed.as_array().unwrap() {
        let digest = item["digest"].as_str().unwrap();
        let location = item["location"].as_str().unwrap();
        assert_eq!(location, format!("{}/pf/artifacts", farm.registry.host()));
        let manifest = patchfarm_e2e::run(std::process::Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{location}:{}", digest.replace(':', "-")),
        ]));
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(
            manifest["artifactType"],
            "application/vnd.patchfarm.installer.v1"
        );
        assert_eq!(manifest["layers"][0]["digest"], digest);
    }
    // deleteEntry of a key the catalog lacks is said, not failed (as WIT's); emptying the whole
    // shared catalog at once is refused.
    let out = farm.ok(&["cache", "deleteEntry", "--key", "wdt_0.0.0"]);
    assert!(
        out.contains("nothing to delete for key: wdt_0.0.0"),
        "{out}"
    );
    let refused = farm.cli(&["cache", "deleteEntry", "--key", "DELETE_ALL_FOR_SURE"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("one --key at a time"),
        "{err}"
    );
    let model = farm.dir.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let model = model.display().to_string();
    for name in ["agent-1", "agent-2", "agent-3"] {
        farm.start_agent(name, &["--slots=1"]);
    }
    let host = farm.registry.host();
    let mut ids = Vec::new();
    for i in 0..40 {
        let version = VERSIONS[i % VERSIONS.len()];
        let tag = format!("{host}/aux/app:{i}");
        ids.push(farm.submit(&[
            "createAuxImage",
            "--tag",
            &tag,
            "--fromImage",
            &farm.base,
            "--wdtModel",
            &model,
            "--wdtVersion",
            version,
        ]));
    }
    let jobs = farm.wait_done(&ids, Duration::from_secs(240)).await;
    let mut hits = 0;
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    for job in &jobs {
        assert_eq!(
            job.state(),
            JobState::Succeeded,
            "{}: {}",
            job.id,
            job.error
        );
        if job.log.contains("inputs: 1 of 1 already in") {
            hits += 1;
        }
        let agent = job
            .log
            .lines()
            .find_map(|l| l.split(" on ").nth(1))
            .unwrap_or("?")
            .to_string();
        *per_agent.entry(agent).or_default() += 1;
    }
    let mut fetches = 0;
    for name in ["agent-1", "agent-2", "agent-3"] {
        for (digest, count) in farm.fetches(name) {
            assert_eq!(count, 1, "{name} fetched {digest} {count} times");
            fetches += 1;
        }
    }
    let hit_rate = hits as f64 / jobs.len() as f64;
    println!(
        "affinity: {hits}/{} jobs found their installer already on their agent (hit rate {:.0}%); \
         {fetches} fetches in all (without affinity up to {}); jobs per agent {per_agent:?}",
        jobs.len(),
        hit_rate * 100.0,
        3 * VERSIONS.len()
    );
    assert!(
        hit_rate >= 0.5,
        "most jobs should land where their installer is (hit rate {hit_rate})"
    );
    assert!(fetches <= 3 * VERSIONS.len());
}

/// Submits an auxiliary image whose base sits on `silent` (a registry that never answers) and
/// waits until an agent is running it.
async fn start_hung_job(
    farm: &Farm,
    silent: &std::net::TcpListener,
    model: &str,
    tag: &str,
) -> String {
    let hung = farm.submit(&[
        "createAuxImage",
        "--tag",
        &format!("{}/bad/{tag}", farm.registry.host()),
        "--fromImage",
        &format!("{}/base/none:1", silent.local_addr().unwrap()),
        "--wdtModel",
        model,
        "--wdtVersion",
        "none",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while farm.job(&hung).await.progress != "running createAuxImage" {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            farm.job(&hung).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hung
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_clearly_and_push_nothing_and_bad_agents_are_refused() {
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let zip = farm.dir.path().join("wdt.zip");
    write_wdt_zip(&zip, "9.9.9");
    farm.add_installer("wdt", "9.9.9", &zip);
    let model = farm.dir.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let model = model.display().to_string();
    farm.start_agent("agent-1", &["--drain-timeout-secs=1"]);
    let host = farm.registry.host();

    // An installer the catalog does not have.
    let missing = farm.submit(&[
        "createAuxImage",
        "--tag",
        &format!("{host}/bad/missing:1"),
        "--fromImage",
        &farm.base,
        "--wdtModel",
        &model,
        "--wdtVersion",
        "0.0.1",
    ]);
    // An installer whose bytes in the artifact store were damaged after the upload.
    let listed: serde_json::Value =
        serde_json::from_str(&farm.ok(&["--json", "cache", "listItems"])).unwrap();
    let digest = listed[0]["digest"].as_str().unwrap().to_string();
    let blob = farm
        .store_dir()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::write(&blob, b"not the zip that was uploaded").unwrap();
    let corrupt = farm.submit(&[
        "createAuxImage",
        "--tag",
        &format!("{host}/bad/corrupt:1"),
        "--fromImage",
        &farm.base,
        "--wdtModel",
        &model,
        "--wdtVersion",
        "9.9.9",
    ]);
    let jobs = farm
        .wait_done(&[missing.clone(), corrupt.clone()], Duration::from_secs(60))
        .await;
    for job in &jobs {
        assert_eq!(job.state(), JobState::Failed, "{job:?}");
        assert_eq!(job.attempts, 1, "bad input is not retried: {job:?}");
    }
    let shown = |id: &str| {
        let out = farm.ok(&["jobs", "show", id]);
        assert!(out.contains("failed"), "{out}");
        out
    };
    let text = shown(&missing);
    assert!(
        text.contains("wdt_0.0.1") && text.contains("not found") && text.contains("--farm"),
        "{text}"
    );
    let text = shown(&corrupt);
    assert!(
        text.contains("wdt_9.9.9") && text.contains("corrupt") && text.contains(&digest),
        "{text}"
    );
    assert!(farm.registry.tags("bad/missing").is_empty());
    assert!(farm.registry.tags("bad/corrupt").is_empty());

    // A cancel reaches a running job: this one hangs on a registry that never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = start_hung_job(&farm, &silent, &model, "hung:1").await;
    farm.ok(&["jobs", "cancel", &hung]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !farm.agent_log("agent-1").contains(&format!("job={hung}"))
        || !farm.agent_log("agent-1").contains("took this job back")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never stopped {hung}:\n{}",
            farm.agent_log("agent-1")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(farm.job(&hung).await.state(), JobState::Cancelled);

    // SIGTERM drains: a job still running when the drain timeout ends is handed back.
    let hung = start_hung_job(&farm, &silent, &model, "hung:2").await;
    assert!(farm.terminate_agent("agent-1"), "the agent exits cleanly");
    let handed_back = farm.job(&hung).await;
    assert_eq!(handed_back.state(), JobState::Queued, "{handed_back:?}");
    assert!(handed_back.error.contains("shut down"), "{handed_back:?}");
    farm.ok(&["jobs", "cancel", &hung]);

    // An agent presenting a client certificate, and one from another CA, are refused.
    farm.start_agent("client", &[]);
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(patchfarm_e2e::patchfarm_bin())
        .args(["certs", "init", "--out"])
        .arg(other.path())
        .args(["--coordinators", "1", "--agents", "4"])
        .output()
        .unwrap();
    assert!(out.status.success());
    farm.start_agent(
        "agent-2",
        &[&format!("--tls-dir={}", other.path().display())],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let client_log = farm.agent_log("client");
        let foreign_log = farm.agent_log("agent-2");
        if client_log.contains("cannot register") && foreign_log.contains("cannot register") {
            assert!(client_log.contains("role client"), "{client_log}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "client:\n{client_log}\nforeign:\n{foreign_log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed: serde_json::Value =
        serde_json::from_str(&farm.ok(&["--json", "agents", "list"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["agent-1"], "only the real agent ever registered");
}

/// Registry-only jobs (here copies) run beside an agent's slots, and the farm hands them out
/// in batches: six queued copies go to a one-slot agent in one lease and all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_only_jobs_are_leased_in_a_batch_beside_the_slots() {
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let host = farm.registry.host();
    let base = farm.base.clone();
    let ids: Vec<String> = (0..6)
        .map(|i| farm.submit(&["copy", &base, &format!("{host}/copies/c{i}:1")]))
        .collect();
    farm.start_agent("agent-1", &["--slots=1", "--registry-slots=8"]);
    let jobs = farm.wait_done(&ids, Duration::from_secs(120)).await;
    for job in &jobs {
        assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    }
    let log = farm.agent_log("agent-1");
    let batch = log
        .lines()
        .filter(|l| l.contains(" leased ") || l.ends_with(" leased"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("jobs=")?.parse::<usize>().ok())
        })
        .max();
    assert_eq!(batch, Some(6), "one lease of all six copies:\n{log}");
}
