//! The agent process as a supervisor sees it: one whose log pipe has been closed (its supervisor
//! went away) still stops on SIGTERM, and its HTTP port says when it is live and ready.

use patchfarm_e2e::farm::agent_bin;
use patchfarm_e2e::tools::{free_port, http_get};
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

/// An agent's `--http-listen` port: live at once, ready (200) only once the farm has
/// registered it and answered a heartbeat; metrics name its slots; other paths are 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_ready_once_the_farm_hears_it() {
    let address = format!("127.0.0.1:{}", free_port());
    // No farm yet: alive, not ready.
    let work = tempfile::tempdir().unwrap();
    let nowhere = format!("127.0.0.1:{}", free_port());
    let mut lonely = Command::new(agent_bin())
        .args(["--name", "agent-1", "--insecure", "--coordinator", &nowhere])
        .args(["--http-listen", &address])
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get(&address, "/healthz").starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "the port never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alone = http_get(&address, "/readyz");
    assert!(
        alone.starts_with("HTTP/1.1 503") && alone.contains("not registered"),
        "{alone}"
    );
    let _ = lonely.kill();
    let _ = lonely.wait();

    let mut farm = patchfarm_e2e::farm::Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let listen = format!("--http-listen={address}");
    farm.start_agent("agent-2", &[listen.as_str(), "--slots=3"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http_get(&address, "/readyz");
        if ready.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = http_get(&address, "/metrics");
    assert!(
        metrics.contains("patchfarm_agent_slots{agent=\"agent-2\"} 3"),
        "{metrics}"
    );
    assert!(http_get(&address, "/nope").starts_with("HTTP/1.1 404"));
}
