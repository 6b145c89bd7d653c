//! The hostile-input corpus (`tests/src/hostile.rs`) against the real CLI: every case is refused
//! with an error naming its input, or built safely — and in every case nothing is written
//! outside the work directory (a sentinel directory and an escape path are checked), nothing is
//! tagged on refusal, no step hangs (90 s) or panics, and no step's peak RSS passes 256 MiB.

use patchfarm_e2e::hostile::{cases, Ground};
use patchfarm_e2e::{busybox_base, Patchfarm, Registry};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ESCAPE: &str = "/tmp/patchfarm-hostile-escape";
const STEP_DEADLINE: Duration = Duration::from_secs(90);
const MAX_RSS_KIB: i64 = 256 * 1024;

struct Ran {
    success: bool,
    stderr: String,
    max_rss_kib: i64,
    hung: bool,
}

/// Runs `cmd` to its end or the deadline, measuring its peak RSS with wait4 (which reaps it:
/// `Child::wait` could not report the child's resource usage).
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command) -> Ran {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("patchfarm starts");
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child, with pointers to locals that outlive the call.
        unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        let _ = done.send((status, usage.ru_maxrss));
    });
    let (hung, (status, max_rss_kib)) = match waited.recv_timeout(STEP_DEADLINE) {
        Ok(result) => (false, result),
        Err(_) => {
            // SAFETY: a signal to our own child, still unreaped (the waiting thread reaps it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (true, waited.recv().expect("reaped"))
        }
    };
    Ran {
        success: std::process::ExitStatus::from_raw(status).success(),
        stderr: reader.join().unwrap_or_default(),
        max_rss_kib,
        hung,
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let content = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), content)
        })
        .collect();
    all.sort();
    all
}

#[test]
fn every_hostile_input_is_refused_or_built_safely() {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let work = tempfile::tempdir().unwrap();
    let ground = Ground {
        inputs: work.path().join("inputs"),
        outside: work.path().join("outside"),
        base,
        registry: registry.host(),
    };
    std::fs::create_dir_all(&ground.outside).unwrap();
    std::fs::write(ground.outside.join("passwd"), b"root:x:0:0\n").unwrap();
    let _ = std::fs::remove_file(ESCAPE);
    let sentinel = snapshot(&ground.outside);

    let all = cases(&ground);
    let (mut refused, mut built, mut outside, mut hung, mut panics) = (0, 0, 0, 0, 0);
    let mut peak_kib = 0;
    let mut problems = Vec::new();
    for case in &all {
        let pf = Patchfarm::new();
        let mut outcome = None;
        for step in &case.steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            let mut cmd = pf.command(&args);
            for (k, v) in &case.env {
                cmd.env(k, v);
            }
            let ran = run_measured(cmd);
            peak_kib = peak_kib.max(ran.max_rss_kib);
            if ran.max_rss_kib > MAX_RSS_KIB {
                problems.push(format!(
                    "{}: peak RSS {} MiB",
                    case.name,
                    ran.max_rss_kib / 1024
                ));
            }
            if ran.hung {
                hung += 1;
                problems.push(format!("{}: hung in {args:?}", case.name));
                outcome = Some(false);
                break;
            }
            if ran.stderr.contains("panicked") {
                panics += 1;
                problems.push(format!("{}: panicked:\n{}", case.name, ran.stderr));
            }
            if !ran.success {
                let named = case.names.iter().any(|n| ran.stderr.contains(n));
                if !named || ran.stderr.trim().is_empty() {
                    problems.push(format!(
                        "{}: refused without naming {:?}:\n{}",
                        case.name, case.names, ran.stderr
                    ));
                }
                println!(
                    "{:<34} refused: {}",
                    case.name,
                    ran.stderr
                        .trim()
                        .chars()
                        .take(150)
                        .collect::<String>()
                        .replace('\n', " | ")
                );
                outcome = Some(false);
                break;
            }
        }
        match outcome {
            Some(_) => {
                refused += 1;
                let repo = format!("hostile/{}", case.name.to_ascii_lowercase());
                if !registry.tags(&repo).is_empty() {
                    problems.push(format!("{}: refused but tagged {repo}", case.name));
                }
            }
            None => {
                built += 1;
                println!("{:<34} built safely", case.name);
            }
        }
        if snapshot(&ground.outside) != sentinel || Path::new(ESCAPE).exists() {
            outside += 1;
            problems.push(format!("{}: wrote outside the work directory", case.name));
            let _ = std::fs::remove_file(ESCAPE);
        }
    }
    println!(
        "hostile corpus: {} cases tried, {refused} refused, {built} built safely, {outside} written outside, {hung} hung, {panics} panics; peak RSS {} MiB",
        all.len(),
        peak_kib / 1024
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(all.len() >= 40, "the corpus shrank to {}", all.len());
}
