//! Nothing acknowledged rests on the page cache alone: a coordinator traced with strace while it
//! stores an installer and records it through raft calls `fdatasync` on sled's log file (sled's
//! own flush is `sync_file_range`, which a power cut can undo) and `fsync` on the stored blob and
//! the directory that names it.

use patchfarm_e2e::cluster::Cluster;
use patchfarm_e2e::tools::{require_tool, write_wdt_zip};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_upload_is_synced_to_disk_before_it_is_acknowledged() {
    require_tool("strace");
    let store = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_with_args(
        1,
        &[&format!("--artifact-store=oci:{}", store.path().display())],
    );
    cluster.wait_leader(&[1]).await;
    let trace = cluster.certs_dir().parent().unwrap().join("sync.trace");
    let mut strace = Command::new("strace")
        .args(["-f", "-y", "-e", "trace=fdatasync,fsync", "-o"])
        .arg(&trace)
        .args(["-p", &cluster.pid(1).unwrap().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // strace says when it holds every thread; what runs after that is traced.
    let mut said = BufReader::new(strace.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("attached") {
        line.clear();
        assert!(
            said.read_line(&mut line).unwrap() > 0,
            "strace ended without attaching"
        );
    }
    let zip = store.path().join("wdt.zip");
    write_wdt_zip(&zip, "4.2.1");
    let out = cluster.cli(&[
        "cache",
        "addInstaller",
        "--type",
        "wdt",
        "--version",
        "4.2.1",
        "--path",
        &zip.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status()
        .unwrap();
    strace.wait().unwrap();
    let calls = std::fs::read_to_string(&trace).unwrap();
    let synced = |call: &str, path: &str| {
        calls
            .lines()
            .any(|l| l.contains(&format!("{call}(")) && l.contains(path) && l.ends_with("= 0"))
    };
    assert!(
        synced("fdatasync", "/sled/db>"),
        "no fdatasync of sled's log:\n{calls}"
    );
    let blobs = format!("{}/blobs/sha256>", store.path().display());
    assert!(
        synced("fsync", &blobs),
        "no fsync of the store's blob directory:\n{calls}"
    );
    assert!(
        synced(
            "fsync",
            &format!("{}/blobs/sha256/.tmp-", store.path().display())
        ),
        "no fsync of the blob before its rename:\n{calls}"
    );
}
