//! The coordinator's plain HTTP port (`--metrics-listen`): `/metrics` (OpenMetrics text,
//! the same as the dashboard port's),
//! `/healthz` (the process answers) and `/readyz` (this node knows a leader and its data
//! directory takes a write: 503 with the reason otherwise); anything else is 404.

use crate::metrics::FarmMetrics;
use crate::raft::NodeHandle;
use patchfarm_client::plain_http::{self, Answer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Serves the port until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: NodeHandle,
    metrics: Arc<FarmMetrics>,
    data_dir: PathBuf,
    shutdown: CancellationToken,
) {
    plain_http::serve(listener, shutdown, move |path| {
        let (node, metrics, data_dir) = (node.clone(), metrics.clone(), data_dir.clone());
        async move { answer(&path, &node, &metrics, &data_dir).await }
    })
    .await
}

async fn answer(path: &str, node: &NodeHandle, metrics: &FarmMetrics, data_dir: &Path) -> Answer {
    match path {
        "/metrics" => plain_http::metrics(metrics.render()),
        "/healthz" => plain_http::alive(),
        "/readyz" => plain_http::readiness(not_ready(node, data_dir).await),
        _ => plain_http::not_found(),
    }
}

/// Why this node is not ready, if it is not (also the gRPC health service's answer).
pub(crate) async fn not_ready(node: &NodeHandle, data_dir: &Path) -> Option<String> {
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
