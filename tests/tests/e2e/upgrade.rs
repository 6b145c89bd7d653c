//! Upgrading a coordinator over a data dir written by the release before typed jobs (fixtures in
//! tests/fixtures, made by that release): with argv jobs still queued it refuses to start and
//! says how to drain them; once they have ended it starts, lists them, and takes typed jobs.

use patchfarm_e2e::cluster::coordinator_bin;
use patchfarm_e2e::patchfarm_bin;
use patchfarm_e2e::tools::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Unpacks fixture `name` into a fresh directory; returns it and the data dir inside.
fn unpack(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("coordinator-argv-jobs-{name}.tar.gz"));
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "unpacking {}", fixture.display());
    let data = dir.path().join(name);
    (dir, data)
}

fn coordinator(data: &Path, address: &str) -> Command {
    let mut command = Command::new(coordinator_bin());
    command
        .args(["--node-id=1", "--insecure"])
        .arg(format!("--listen={address}"))
        .arg(format!("--peer=1={address}"))
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

fn cli(address: &str, args: &[&str]) -> Output {
    Command::new(patchfarm_bin())
        .args(["--farm", address, "--insecure"])
        .args(args)
        .output()
        .unwrap()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn queued_argv_jobs_stop_the_upgrade_with_how_to_drain_them() {
    let (_dir, data) = unpack("queued");
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = coordinator(&data, &address)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the coordinator started on a data dir with queued argv jobs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("job-00000001 (queued)"), "{stderr}");
    assert!(
        !stderr.contains("job-00000002"),
        "the cancelled job is no obstacle: {stderr}"
    );
    assert!(
        stderr.contains("Drain them with the previous release"),
        "{stderr}"
    );
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
}

#[test]
fn a_drained_data_dir_upgrades_and_keeps_its_history() {
    let (_dir, data) = unpack("drained");
    let address = format!("127.0.0.1:{}", free_port());
    let _coordinator = Running(
        coordinator(&data, &address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The old jobs are listed (their command lines are not readable any more, their ids and
    // states are).
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let out = cli(&address, &["--json", "jobs", "list"]);
        if out.status.success() {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let jobs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for job in jobs {
        assert_eq!(job["state"], "cancelled", "{job}");
        assert_eq!(job["kind"], "argv (older release)", "{job}");
    }
    // New work is typed and numbered after the old.
    let out = cli(
        &address,
        &[
            "copy",
            "127.0.0.1:5999/wls:cpu",
            "127.0.0.1:5999/mirror/wls:cpu",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "job-00000003");
    let shown = cli(&address, &["--json", "jobs", "show", "job-00000003"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown[0]["kind"], "copy");
}
