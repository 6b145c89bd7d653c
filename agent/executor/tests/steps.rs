//! Steps under runc on a busybox root filesystem: changes land in the overlay's upper directory
//! (files, whiteouts, opaque directories), inputs are read-only, the host's files and network are
//! out of reach, and a step past its limit is killed.

use patchfarm_executor::{available, ExecError, Input, Sandbox, Step};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Steps need root and runc: CI has both and must run these; elsewhere they skip, saying why.
fn can_run(test: &str) -> bool {
    match available() {
        Ok(()) => true,
        Err(reason) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v.is_empty()),
                "{test}: {reason}"
            );
            eprintln!("SKIP {test}: {reason}");
            false
        }
    }
}

/// A root filesystem of busybox applets (Debian's busybox-static), with files to change.
fn busybox_root(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "etc", "opt/replaced", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static installed");
    for applet in [
        "sh", "cat", "echo", "rm", "mkdir", "sleep", "nc", "touch", "ls", "id",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/gone"), b"deleted by the step").unwrap();
    std::fs::write(root.join("opt/replaced/old"), b"old").unwrap();
    root
}

async fn run(sandbox: &Sandbox, step: &Step) -> (Result<(), ExecError>, Vec<String>) {
    let mut lines = Vec::new();
    let result = sandbox
        .run(step, &mut |l: &str| lines.push(l.to_owned()))
        .await;
    (result, lines)
}

#[tokio::test]
async fn a_steps_changes_are_the_overlays_upper_directory() {
    if !can_run("a_steps_changes_are_the_overlays_upper_directory") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = busybox_root(work.path());
    let input = work.path().join("input.txt");
    std::fs::write(&input, b"installer bytes").unwrap();
    let mut sandbox = Sandbox::new(std::slice::from_ref(&root), &work.path().join("w")).unwrap();
    let mut step = Step::shell(
        "echo hello > /etc/hello && rm /etc/gone && rm -rf /opt/replaced && mkdir /opt/replaced \
         && echo new > /opt/replaced/new && cat /tmp/in/input.txt && echo scratch > /tmp/scratch \
         && ! echo x 2>/dev/null > /tmp/in/input.txt",
    );
    step.inputs.push(Input {
        host: input.clone(),
        dest: "/tmp/in/input.txt".into(),
    });
    let (result, lines) = run(&sandbox, &step).await;
    result.unwrap();
    assert_eq!(lines, ["installer bytes"]);
    let upper = sandbox.finish().unwrap();
    assert_eq!(std::fs::read(upper.join("etc/hello")).unwrap(), b"hello\n");
    let gone = std::fs::symlink_metadata(upper.join("etc/gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "a whiteout"
    );
    assert!(!upper.join("opt/replaced/old").exists());
    assert_eq!(
        std::fs::read(upper.join("opt/replaced/new")).unwrap(),
        b"new\n"
    );
    assert!(
        !upper.join("tmp/scratch").exists(),
        "/tmp is a tmpfs no layer keeps"
    );
    assert!(
        !upper.join("tmp/in").exists(),
        "inputs are never in the changes"
    );
    assert_eq!(std::fs::read(&input).unwrap(), b"installer bytes");
    assert_eq!(
        std::fs::read(root.join("etc/gone")).unwrap(),
        b"deleted by the step"
    );
}

#[tokio::test]
async fn a_step_reaches_neither_host_files_nor_the_network_and_is_killed_at_its_limit() {
    if !can_run("a_step_reaches_neither_host_files_nor_the_network") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = busybox_root(work.path());
    let secret = work.path().join("host-secret");
    std::fs::write(&secret, b"host only").unwrap();
    let sandbox = Sandbox::new(std::slice::from_ref(&root), &work.path().join("w")).unwrap();

    let (result, _) = run(&sandbox, &Step::shell(&format!("cat {}", secret.display()))).await;
    assert!(
        matches!(result, Err(ExecError::Failed { .. })),
        "{result:?}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let fetch = format!("nc -w 1 127.0.0.1 {port} </dev/null");
    let (result, _) = run(&sandbox, &Step::shell(&fetch)).await;
    assert!(result.is_err(), "no network unless asked");
    assert!(listener.accept().is_err(), "nothing reached the host");
    // With the network, the host's loopback answers: the connection is taken and closed.
    let answered = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < until {
            if listener.accept().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let mut online = Step::shell(&fetch);
    online.network = true;
    online.time_limit = Duration::from_secs(5);
    let (result, lines) = run(&sandbox, &online).await;
    assert!(answered.join().unwrap(), "the host was reached: {lines:?}");
    result.unwrap();

    let mut slow = Step::shell("echo started; sleep 30");
    slow.time_limit = Duration::from_millis(1500);
    let started = std::time::Instant::now();
    let (result, lines) = run(&sandbox, &slow).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    match result {
        Err(ExecError::TimedOut { tail, .. }) => assert!(tail.contains("started"), "{tail}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(lines, ["started"]);
}

#[tokio::test]
async fn the_agents_probe_runs_a_real_step_and_leaves_nothing_behind() {
    if !can_run("the_agents_probe_runs_a_real_step") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let parent = work.path().join("steps");
    patchfarm_executor::probe(&parent).await.unwrap();
    let left: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the probe left {left:?}");
    // Where overlay mounts cannot be made, the probe says so rather than offering steps.
    let not_a_dir = work.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let refused = patchfarm_executor::probe(&not_a_dir).await.unwrap_err();
    assert!(
        refused.contains(&not_a_dir.display().to_string()),
        "{refused}"
    );
}
