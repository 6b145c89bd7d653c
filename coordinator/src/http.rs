//! The coordinator's plain HTTP port (`--metrics-listen`): `/metrics` (Prometheus text),
//! `/healthz` (the process answers) and `/readyz` (this node knows a leader and its data
//! directory takes a write: 503 with the reason otherwise); anything else is 404. Small enough
//! not to need an HTTP framework; every request is read and answered within a deadline.

use crate::raft::NodeHandle;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// A client gets this long to send its request line and to take the answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// Serves the port until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: NodeHandle,
    data_dir: PathBuf,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let (node, data_dir) = (node.clone(), data_dir.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let Ok(Ok(read)) = tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buf[..read]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, content_type, body) = answer(path, &node, &data_dir).await;
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(DEADLINE, stream.write_all(response.as_bytes())).await;
        });
    }
}

async fn answer(
    path: &str,
    node: &NodeHandle,
    data_dir: &std::path::Path,
) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match path.split('?').next().unwrap_or(path) {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics(node)),
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" => match not_ready(node, data_dir).await {
            None => ("200 OK", TEXT, "ready\n".into()),
            Some(why) => (
                "503 Service Unavailable",
                TEXT,
                format!("not ready: {why}\n"),
            ),
        },
        _ => (
            "404 Not Found",
            TEXT,
            "not found: /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn metrics(node: &NodeHandle) -> String {
    let status = node.local_status();
    let mut body = node.metrics.render(node.id());
    body.push_str(&format!(
        "# HELP patchfarm_raft_applied_index Last applied log index.\n# TYPE patchfarm_raft_applied_index gauge\npatchfarm_raft_applied_index{{node=\"{}\"}} {}\n",
        status.id, status.applied
    ));
    body
}

/// Why this node should get no traffic now (`None`: it may).
async fn not_ready(node: &NodeHandle, data_dir: &std::path::Path) -> Option<String> {
    if node.local_status().leader == 0 {
        return Some("this node knows no leader (cut off from the majority, or electing)".into());
    }
    let probe = data_dir.join(".ready-probe");
    let written = tokio::task::spawn_blocking(move || {
        std::fs::write(&probe, b"ready")
            .and_then(|()| std::fs::File::open(&probe)?.sync_all())
            .and_then(|()| std::fs::remove_file(&probe))
    })
    .await
    .expect("readiness probe task");
    written.err().map(|e| {
        format!(
            "its data directory {} takes no write: {e}",
            data_dir.display()
        )
    })
}
