//! The files under `deploy/` that a platform team installs: the systemd units pass
//! `systemd-analyze verify` with no warning (an unknown or misspelt directive is one), the
//! Kubernetes manifests render with kustomize and validate against the Kubernetes API schemas,
//! and every flag either gives exists in the binary it starts.

use patchfarm_e2e::cluster::coordinator_bin;
use patchfarm_e2e::farm::agent_bin;
use patchfarm_e2e::require_tool;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

/// `unit` with its binaries pointed at the ones this build made (verify checks they exist).
fn with_built_binaries(unit: &str) -> String {
    unit.replace(
        "/usr/local/bin/patchfarm-coordinator",
        &coordinator_bin().display().to_string(),
    )
    .replace(
        "/usr/local/bin/patchfarm-agent",
        &agent_bin().display().to_string(),
    )
}

fn verify(dir: &Path, unit: &str) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join(unit))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn systemd_units_verify_and_start_the_binaries_with_flags_they_have() {
    require_tool("systemd-analyze");
    let work = tempfile::tempdir().unwrap();
    for (unit, binary) in [
        ("patchfarm-coordinator.service", coordinator_bin()),
        ("patchfarm-agent.service", agent_bin()),
    ] {
        let text = std::fs::read_to_string(deploy_dir().join(unit)).unwrap();
        std::fs::write(work.path().join(unit), with_built_binaries(&text)).unwrap();
        let (ok, said) = verify(work.path(), unit);
        assert!(ok && said.trim().is_empty(), "{unit}: {said}");

        let exec = text
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
        let help = String::from_utf8(Command::new(&binary).arg("--help").output().unwrap().stdout)
            .unwrap();
        for flag in exec.split_whitespace().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(flag),
                "{unit}: {} has no {flag}",
                binary.display()
            );
        }
    }
    // The check bites: a misspelt directive is reported.
    let unit = "patchfarm-coordinator.service";
    let text = std::fs::read_to_string(work.path().join(unit)).unwrap();
    std::fs::write(
        work.path().join(unit),
        text.replace("ProtectHome=yes", "ProtectHme=yes"),
    )
    .unwrap();
    let (_, said) = verify(work.path(), unit);
    assert!(said.contains("ProtectHme"), "{said}");
}

/// `kubectl kustomize` of `dir`, as the API server would receive it.
fn render(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn validates(rendered: &str, work: &Path) -> Result<(), String> {
    let file = work.join("rendered.yaml");
    std::fs::write(&file, rendered).unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn kubernetes_manifests_render_validate_and_start_the_binaries_with_flags_they_have() {
    require_tool("kubectl");
    require_tool("kubernetes-validate");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
    let rendered = render(&dir);
    let work = tempfile::tempdir().unwrap();
    validates(&rendered, work.path()).unwrap();

    let documents: Vec<serde_json::Value> = rendered
        .split("\n---\n")
        .map(|doc| serde_norway::from_str(doc).unwrap())
        .collect();
    let of_kind = |kind: &str| -> &serde_json::Value {
        documents
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    for (kind, binary) in [
        ("StatefulSet", coordinator_bin()),
        ("Deployment", agent_bin()),
    ] {
        let help = String::from_utf8(Command::new(&binary).arg("--help").output().unwrap().stdout)
            .unwrap();
        let container = &of_kind(kind)["spec"]["template"]["spec"]["containers"][0];
        for arg in container["args"].as_array().unwrap() {
            let flag = arg.as_str().unwrap().split('=').next().unwrap();
            assert!(
                help.contains(flag),
                "{kind}: {} has no {flag}",
                binary.display()
            );
        }
    }
    let coordinators = &of_kind("StatefulSet")["spec"];
    assert_eq!(coordinators["replicas"], 3);
    assert_eq!(
        coordinators["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(
        of_kind("PodDisruptionBudget")["spec"]["minAvailable"],
        2,
        "a majority of 3"
    );
    let agents = &of_kind("Deployment")["spec"]["template"]["spec"];
    let drain: u64 = agents["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| {
            a.as_str()?
                .strip_prefix("--drain-timeout-secs=")?
                .parse()
                .ok()
        })
        .expect("a drain timeout");
    assert!(
        agents["terminationGracePeriodSeconds"].as_u64().unwrap() > drain,
        "the pod's grace period outlasts the agent's drain"
    );

    // The check bites: a misspelt field is refused.
    let broken = rendered.replacen("replicas: 3", "replica: 3", 1);
    assert!(validates(&broken, work.path()).is_err());
}
