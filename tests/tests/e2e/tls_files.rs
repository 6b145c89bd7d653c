//! Certificates named one by one (`--tls-cert/--tls-key/--tls-ca`), as a Kubernetes Secret in
//! cert-manager's layout mounts them (`tls.crt`, `tls.key`, `ca.crt`): a coordinator and an
//! agent started that way serve, register and are reached over mTLS; half a set is refused.

use patchfarm_e2e::farm::{agent_bin, Farm};
use std::path::Path;
use std::time::{Duration, Instant};

/// `name`'s files from the farm's set, laid out as cert-manager writes a Secret.
fn secret(certs: &Path, name: &str, to: &Path) -> Vec<String> {
    std::fs::create_dir_all(to).unwrap();
    for (from, file) in [
        (format!("{name}.crt"), "tls.crt"),
        (format!("{name}.key"), "tls.key"),
        ("ca.crt".to_string(), "ca.crt"),
    ] {
        std::fs::copy(certs.join(from), to.join(file)).unwrap();
    }
    ["cert", "key", "ca"]
        .iter()
        .zip(["tls.crt", "tls.key", "ca.crt"])
        .map(|(flag, file)| format!("--tls-{flag}={}", to.join(file).display()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_and_an_agent_take_certificates_in_cert_managers_layout() {
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let certs = farm.cluster.certs_dir().to_path_buf();
    let secrets = farm.dir.path().join("secrets");

    let coordinator = secret(&certs, "coordinator-1", &secrets.join("coordinator-1"));
    farm.cluster.kill(1);
    farm.cluster.restart_with(1, &coordinator);
    farm.cluster.wait_leader(&[1]).await;

    let agent = secret(&certs, "agent-1", &secrets.join("agent-1"));
    let agent_args: Vec<&str> = agent.iter().map(String::as_str).collect();
    farm.start_agent("agent-1", &agent_args);
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let listed: serde_json::Value =
            serde_json::from_str(&farm.ok(&["--json", "agents", "list"])).unwrap();
        if listed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "agent-1")
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "agent-1 never registered: {}",
            farm.agent_log("agent-1")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let half = std::process::Command::new(agent_bin())
        .args([
            "--name=x",
            "--coordinator=127.0.0.1:1",
            "--cache-dir=/nonexistent",
        ])
        .arg(&agent[0])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&half.stderr);
    assert!(
        !half.status.success() && said.contains("--tls-key"),
        "{said}"
    );
}
