//! The dashboard in a real browser (headless Chromium driven by selenium, `tests/dashboard/
//! drive.py`) on a 3-coordinator farm: a campaign's page shows it queued, then every domain done
//! with its new digest without a reload; a failing campaign's reason and the job's log are one
//! click away; a killed agent shows down; a killed leader changes the cluster page. Screenshots
//! land in `target/test-artifacts/dashboard/`. Also: 401 without a credential, no write API
//! behind the token, and the coordinators' and agents' metrics parsed by `prometheus_client`
//! with job counters equal to the jobs run.

use super::campaign::{fleet, today};
use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::tools::{free_ports, in_ci};
use patchfarm_e2e::wls::{self, PSU};
use patchfarm_e2e::Registry;
use patchfarm_proto::v1::ListJobsRequest;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

/// Whether selenium and Chromium are here; in CI their absence fails the test.
fn browser_available() -> bool {
    let selenium = Command::new("python3")
        .args(["-c", "import selenium, prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    let chromium =
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists();
    if !(selenium && chromium) {
        assert!(!in_ci(), "the dashboard test needs chromium, chromium-driver and selenium in CI (tests/deps.sh installs them)");
        eprintln!("SKIP dashboard: chromium, chromium-driver or selenium missing");
    }
    selenium && chromium
}

/// A campaign whose one domain's image does not exist: its rebase fails for good.
fn failing(farm: &Farm, name: &str) -> String {
    let host = farm.registry.host();
    let file = farm.dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            r#"
name: {name}
registries: ["{host}"]
bases:
  - {{name: wls14, version: 12.2.1.4.0, jdkVersion: "17", fromImage: "{base}",
     patches: ["{psu}"], tag: "wls/base:2026-10"}}
domains:
  - {{name: ghost, namespace: prod, domainHomeSourceType: DomainInImage, image: "{host}/domains/ghost:1", base: wls14}}
"#,
            base = farm.base,
            psu = wls::key(PSU),
        ),
    )
    .unwrap();
    file.display().to_string()
}

/// `curl` against a dashboard: status code and body.
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

/// Parses scrapes with prometheus_client: per file, sample name → labels → value.
fn parse_metrics(scrapes: &[(String, String)], dir: &Path) -> Vec<Value> {
    let mut files = Vec::new();
    for (name, text) in scrapes {
        let body = text
            .split_once("\r\n\r\n")
            .map_or(text.as_str(), |(_, b)| b);
        let file = dir.join(format!("{name}.metrics"));
        std::fs::write(&file, body).unwrap();
        files.push(file);
    }
    let out = Command::new("python3")
        .arg(repo().join("tests/dashboard/metrics.py"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    files
        .iter()
        .map(|f| parsed[f.display().to_string()].clone())
        .collect()
}

fn sum(samples: &Value, name: &str, label: Option<&str>) -> f64 {
    samples[name]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(labels, _)| label.is_none_or(|l| labels.split(',').any(|p| p == l)))
        .map(|(_, v)| v.as_f64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_campaign_live_and_the_farm_as_it_changes() {
    if !browser_available() {
        return;
    }
    let mut farm = Farm::start(3, &[]);
    let leader = farm.cluster.wait_leader(&[1, 2, 3]).await;
    farm.upload_weblogic();
    let ports = free_ports(2);
    let agent_http: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    farm.start_agent("agent-1", &[&format!("--http-listen={}", agent_http[0])]);
    let mirror = Registry::start();
    today(&farm);
    // No agent while the page first loads: the campaign waits, queued.
    assert!(farm.terminate_agent("agent-1"));
    let token = farm.cluster.dashboard_token();
    let leader_url = farm.cluster.dashboard_url(leader);
    let follower = [1, 2, 3].into_iter().find(|n| *n != leader).unwrap();

    // Credentials: none is 401 (pages and metrics), a wrong token too; probes answer anyone.
    for path in ["/campaigns", "/jobs", "/metrics", "/live?path=/jobs"] {
        assert_eq!(curl(&[&format!("{leader_url}{path}")]).0, "401", "{path}");
    }
    let wrong = "Authorization: Bearer test-dashboard-token-XXXXXXXXXX";
    assert_eq!(curl(&["-H", wrong, &format!("{leader_url}/jobs")]).0, "401");
    assert_eq!(curl(&[&format!("{leader_url}/healthz")]).0, "200");
    // A client certificate of the farm admits without a token.
    let certs = farm.cluster.certs_dir();
    let (code, body) = curl(&[
        "--cert",
        &certs.join("client.crt").display().to_string(),
        "--key",
        &certs.join("client.key").display().to_string(),
        &format!("{leader_url}/cluster"),
    ]);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("data-leader=\""), "{body}");
    // The token reaches no write API: the dashboard has none, and the farm's gRPC API wants a
    // certificate (the token is no credential there).
    let bearer = format!("Authorization: Bearer {token}");
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (code, _) = curl(&["-X", method, "-H", &bearer, &format!("{leader_url}/jobs")]);
        assert_eq!(code, "405", "{method}");
    }
    let grpc = farm.cluster.nodes[&leader].address.clone();
    let (code, _) = curl(&[
        "--http2",
        "-X",
        "POST",
        "-H",
        &bearer,
        "-H",
        "content-type: application/grpc",
        &format!("https://{grpc}/patchfarm.v1.Farm/CancelJob"),
    ]);
    assert_ne!(
        code, "200",
        "the gRPC port took a call with only the dashboard token"
    );

    let campaign = fleet(&farm, &mirror, "cpu-2026-10");
    farm.ok(&["campaign", "submit", &campaign]);
    let broken = failing(&farm, "ghost-2026-10");

    let artifacts = repo().join("target/test-artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&artifacts);
    let mut driver = Command::new("python3")
        .arg(repo().join("tests/dashboard/drive.py"))
        .args(["--leader", &leader_url])
        .args(["--follower", &farm.cluster.dashboard_url(follower)])
        .args(["--token", &token, "--campaign", "cpu-2026-10"])
        .args(["--failing", "ghost-2026-10", "--agent", "agent-2"])
        .arg("--out")
        .arg(&artifacts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_driver = driver.stdin.take().unwrap();
    let from_driver = BufReader::new(driver.stdout.take().unwrap());
    let mut passed = false;
    let mut domains_seen = String::new();
    for line in from_driver.lines() {
        let line = line.unwrap();
        eprintln!("drive.py: {line}");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["STEP", "start-agents"] => {
                farm.restart_agent("agent-1");
                farm.start_agent("agent-2", &[&format!("--http-listen={}", agent_http[1])]);
            }
            ["STEP", "submit-failing"] => {
                farm.ok(&["campaign", "submit", &broken]);
            }
            ["STEP", "kill-agent", agent] => {
                check_metrics(&farm, &agent_http, &artifacts).await;
                farm.kill_agent(agent);
            }
            ["STEP", "kill-leader", _] => farm.cluster.kill(leader),
            ["DOMAINS", list] => domains_seen = list.to_string(),
            ["PASS"] => passed = true,
            _ => {}
        }
        if words.first() == Some(&"STEP") {
            writeln!(to_driver, "GO").unwrap();
        }
    }
    let status = driver.wait().unwrap();
    assert!(
        status.success() && passed,
        "drive.py failed (screenshots in {})",
        artifacts.display()
    );
    // The page's new images are the report's.
    let out = farm.dir.path().join("report");
    farm.ok(&[
        "campaign",
        "report",
        "cpu-2026-10",
        "--out",
        &out.display().to_string(),
    ]);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    for d in report["domains"].as_array().unwrap() {
        let shown = format!(
            "{}/{}={}",
            d["namespace"].as_str().unwrap(),
            d["name"].as_str().unwrap(),
            d["newImage"].as_str().unwrap()
        );
        assert!(
            domains_seen.split(';').any(|s| s == shown),
            "{shown} not in {domains_seen}"
        );
    }
    for shot in [
        "campaign-running",
        "campaign-done",
        "campaign-phone",
        "job-failed",
        "agent-down",
        "cluster-new-leader",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "{shot}.png"
        );
    }
}

/// After both campaigns: the scrapes parse, and the counters equal the jobs the farm ran.
async fn check_metrics(farm: &Farm, agent_http: &[String], dir: &Path) {
    let jobs = farm
        .cluster
        .client()
        .call(|mut c| async move { c.list_jobs(ListJobsRequest::default()).await })
        .await
        .unwrap()
        .jobs;
    assert!(jobs.iter().all(|j| j.ended()), "jobs still open");
    let mut scrapes: Vec<(String, String)> = farm
        .cluster
        .nodes
        .keys()
        .map(|id| (format!("coordinator-{id}"), farm.cluster.metrics(*id)))
        .collect();
    for (i, address) in agent_http.iter().enumerate() {
        scrapes.push((
            format!("agent-{}", i + 1),
            patchfarm_e2e::tools::http_get(address, "/metrics"),
        ));
    }
    let parsed = parse_metrics(&scrapes, dir);
    let succeeded = jobs
        .iter()
        .filter(|j| j.state() == patchfarm_proto::v1::JobState::Succeeded)
        .count() as f64;
    for coordinator in &parsed[..3] {
        // Every node applies every job's end: its counter is the farm's.
        assert_eq!(
            sum(coordinator, "patchfarm_jobs_finished_total", None),
            jobs.len() as f64,
            "{coordinator}"
        );
        assert_eq!(
            sum(coordinator, "patchfarm_jobs", Some("state=succeeded")),
            succeeded
        );
        assert_eq!(sum(coordinator, "patchfarm_queue_depth", None), 0.0);
        assert_eq!(sum(coordinator, "patchfarm_build_info", None), 1.0);
    }
    // The agents ran every attempt of the campaigns' jobs (agent-1 restarted before them).
    let attempts: u32 = jobs
        .iter()
        .filter(|j| j.spec.as_ref().is_some_and(|s| !s.campaign.is_empty()))
        .map(|j| j.attempts)
        .sum();
    let agents: f64 = parsed[3..]
        .iter()
        .map(|a| sum(a, "patchfarm_agent_jobs_finished_total", None))
        .sum();
    assert_eq!(agents, attempts as f64, "{:?}", &parsed[3..]);
    let failed: f64 = parsed[3..]
        .iter()
        .map(|a| {
            sum(
                a,
                "patchfarm_agent_jobs_finished_total",
                Some("result=failed"),
            )
        })
        .sum();
    assert!(
        failed >= 1.0,
        "the ghost domain's rebase failed on an agent"
    );
    let uploaded: f64 = parsed[3..]
        .iter()
        .map(|a| {
            sum(
                a,
                "patchfarm_agent_registry_blobs_total",
                Some("how=uploaded"),
            )
        })
        .sum();
    assert!(uploaded > 0.0);
    grafana_names_what_the_daemons_export(&parsed);
}

/// Every metric deploy/grafana/patchfarm.json queries is one the daemons declare.
fn grafana_names_what_the_daemons_export(scrapes: &[Value]) {
    let dashboard: Value = serde_json::from_slice(
        &std::fs::read(repo().join("deploy/grafana/patchfarm.json")).unwrap(),
    )
    .unwrap();
    let declared: std::collections::BTreeSet<String> = scrapes
        .iter()
        .flat_map(|s| s["__families__"].as_object().unwrap().keys().cloned())
        .collect();
    let name = regex::Regex::new(r"patchfarm_[a-z_]+").unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            for found in name.find_iter(target["expr"].as_str().unwrap()) {
                let metric = found.as_str();
                let family = ["_total", "_bucket", "_sum", "_count", "_info"]
                    .iter()
                    .find_map(|suffix| metric.strip_suffix(suffix))
                    .unwrap_or(metric);
                assert!(
                    declared.contains(family),
                    "panel {:?} queries {metric}, which no daemon exports ({declared:?})",
                    panel["title"]
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 20, "{queried}");
}
