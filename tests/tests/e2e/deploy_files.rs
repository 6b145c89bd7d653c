//! The files under `deploy/` that a platform team installs: the systemd units pass
//! `systemd-analyze verify` with no warning (an unknown or misspelt directive is one), and every
//! flag their `ExecStart` gives exists in the binary it starts.

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
