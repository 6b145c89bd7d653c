//! The standard gRPC health service (`grpc.health.v1.Health`), for load balancers and
//! orchestrators that speak it: the server (`""`) and `patchfarm.v1.Farm` are SERVING while
//! this node is ready as `/readyz` says — it knows a leader and its data directory takes a
//! write — and NOT_SERVING otherwise, rechecked every two seconds.

use crate::raft::NodeHandle;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::ServingStatus;

const RECHECK: Duration = Duration::from_secs(2);
const SERVICES: [&str; 2] = ["", "patchfarm.v1.Farm"];

/// The service, its status kept current by a task that ends with `shutdown`.
pub fn service(
    node: NodeHandle,
    data_dir: PathBuf,
    shutdown: CancellationToken,
) -> HealthServer<impl Health> {
    let (reporter, service) = tonic_health::server::health_reporter();
    tokio::spawn(async move {
        loop {
            let status = match crate::http::not_ready(&node, &data_dir).await {
                None => ServingStatus::Serving,
                Some(_) => ServingStatus::NotServing,
            };
            for name in SERVICES {
                reporter.set_service_status(name, status).await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    });
    service
}
