//! An agent whose log pipe has been closed (its supervisor went away) still stops on SIGTERM:
//! logging into the closed pipe must not take the signal handler down with it.

use patchfarm_e2e::farm::agent_bin;
use patchfarm_e2e::tools::free_port;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_an_agent_whose_log_pipe_is_closed() {
    let work = tempfile::tempdir().unwrap();
    // No coordinator answers there: the agent keeps logging that it cannot register.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let mut agent = Command::new(agent_bin())
        .args(["--name", "agent-1", "--insecure", "--coordinator", &nowhere])
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read until it has logged, then close the pipe.
    let mut log = BufReader::new(agent.stderr.take().unwrap());
    let mut line = String::new();
    log.read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "the agent logs");
    drop(log);
    let pid = agent.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = agent.kill();
            panic!("the agent ignored SIGTERM with its log pipe closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the agent drained and exited cleanly: {status:?}"
    );
}
