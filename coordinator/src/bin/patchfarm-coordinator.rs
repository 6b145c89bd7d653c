//! `patchfarm-coordinator`: one member of the replicated coordinator cluster.

use anyhow::Context as _;
use clap::Parser;
use patchfarm_client::parse_node;
use patchfarm_client::tls::TlsFlags;
use patchfarm_coordinator::server::{self, Options};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "patchfarm-coordinator",
    version,
    about = "A patchfarm coordinator node (raft member, gRPC API)"
)]
struct Args {
    /// This node's raft id (1 or more), unique in the cluster; or `from-hostname`: a
    /// StatefulSet pod's ordinal plus one (`patchfarm-coordinator-0` is node 1).
    #[arg(long = "node-id", value_parser = parse_node_id)]
    node_id: u64,
    /// Address to serve gRPC on (clients, agents and peers).
    #[arg(long)]
    listen: SocketAddr,
    /// Address others use to reach this node, if not --listen.
    #[arg(long)]
    advertise: Option<String>,
    /// Another member, ID=ADDR; repeat for each (this node's own entry is allowed).
    #[arg(long = "peer", value_name = "ID=ADDR")]
    peers: Vec<String>,
    /// Where raft's log and the farm's state live (sled).
    #[arg(long = "data-dir")]
    data_dir: PathBuf,
    #[command(flatten)]
    tls: TlsFlags,
    /// Start outside the membership and wait for `patchfarm cluster add-node ID=ADDR` (only
    /// when the data directory is new: a node that holds state keeps its membership).
    #[arg(long, env = "PATCHFARM_JOIN")]
    join: bool,
    /// Serve HTTP here: Prometheus metrics (/metrics), liveness (/healthz) and readiness
    /// (/readyz: a leader is known and the data directory takes a write; 503 otherwise).
    #[arg(long = "metrics-listen")]
    metrics_listen: Option<SocketAddr>,
    /// Serve the web dashboard here (campaigns, jobs, agents, cluster; HTTPS with the node's
    /// certificate, plain HTTP under --insecure), with /metrics, /healthz and /readyz. Viewers
    /// present a farm client certificate or the token of --dashboard-token-file.
    #[arg(long = "http-listen")]
    http_listen: Option<SocketAddr>,
    /// A file holding the dashboard's read-only token (one word, 16+ characters of A-Za-z0-9-._~),
    /// sent as `Authorization: Bearer TOKEN` or once as `?token=TOKEN` (which sets a cookie).
    #[arg(long = "dashboard-token-file")]
    dashboard_token_file: Option<PathBuf>,
    /// Connections served at once; more are closed as they arrive.
    #[arg(long = "max-connections", default_value_t = 4096)]
    max_connections: usize,
    /// Close a connection that sends nothing for this many seconds (an unfinished TLS
    /// handshake, a socket left open); live peers answer pings every third of it.
    #[arg(long = "idle-timeout-secs", default_value_t = 30.0)]
    idle_timeout_secs: f64,
    /// Where installers and patches live for agents: `oci:DIR` or `HOST/REPO`.
    #[arg(long = "artifact-store", value_name = "REF")]
    artifact_store: Option<String>,
    /// Compact the raft log after this many applied entries.
    #[arg(long = "compact-after", default_value_t = patchfarm_coordinator::raft::node::COMPACT_AFTER)]
    compact_after: u64,
    /// Heartbeat TTL floor in milliseconds (it grows with the fleet: 50 heartbeats/s at most).
    #[arg(long = "heartbeat-ttl-ms", default_value_t = 10_000)]
    heartbeat_ttl_ms: i64,
    /// A lease lapses this long after the agent's last heartbeat naming the job.
    #[arg(long = "lease-ms", default_value_t = 30_000)]
    lease_ms: i64,
    /// How long a job may wait for an agent holding its inputs while other agents are free.
    #[arg(long = "affinity-wait-ms", default_value_t = 2_000)]
    affinity_wait_ms: i64,
    /// Accept the scheduling benchmark's `noop` jobs (never on a real farm).
    #[arg(long = "allow-noop-jobs", hide = true)]
    allow_noop_jobs: bool,
    /// Let farm jobs read and write OCI layouts (oci:DIR) under this directory of the agents;
    /// repeat for more. None by default: farm jobs use registries.
    #[arg(long = "allow-layout", value_name = "DIR")]
    allow_layouts: Vec<PathBuf>,
    /// Reach this registry (HOST[:PORT]) over plain HTTP (the artifact store's registry).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// Log format: text or json.
    #[arg(long = "log-format", default_value = "text")]
    log_format: String,
    /// Also export every span (a job's run on an agent, with its job, campaign and agent) as
    /// OpenTelemetry traces to this OTLP/gRPC collector, e.g. http://otel-collector:4317.
    #[arg(long = "otlp-endpoint", value_name = "URL")]
    otlp_endpoint: Option<String>,
}

/// `--node-id`: a number, or `from-hostname` (the trailing `-N` of the host name, plus one).
fn parse_node_id(given: &str) -> Result<u64, String> {
    if given != "from-hostname" {
        return match given.parse::<u64>() {
            Ok(0) | Err(_) => Err(format!(
                "{given:?}: expected a node id of 1 or more, or from-hostname"
            )),
            Ok(id) => Ok(id),
        };
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .ok_or("from-hostname: the host name is unknown")?;
    ordinal_id(&host)
}

/// `patchfarm-coordinator-2` → 3: a StatefulSet names its pods NAME-ORDINAL.
fn ordinal_id(host: &str) -> Result<u64, String> {
    let short = host.split('.').next().unwrap_or(host);
    short
        .rsplit_once('-')
        .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
        .map(|ordinal| ordinal + 1)
        .ok_or_else(|| {
            format!("from-hostname: {host:?} does not end in -ORDINAL, as a StatefulSet pod's name does")
        })
}

// The state machine and the gRPC layer allocate small buffers per job by the thousand per second:
// under the raft bench glibc's malloc took a quarter of the coordinator's CPU (perf); with
// mimalloc batched submissions commit ~20 % faster (tests/bench/run.sh raft).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // tonic (ring) and oci-client may each bring a rustls backend; pick one explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    patchfarm_client::runtime::run_to_exit(async move {
        let traces = patchfarm_client::runtime::init_daemon_logging(
            &args.log_format,
            "info,slog=warn,h2=warn,tower=warn",
            args.otlp_endpoint
                .as_deref()
                .map(|url| (url, "patchfarm-coordinator")),
        )?;
        let result = run(args).await;
        // Sends the spans still batched; blocking, so off the async threads.
        let _ = tokio::task::spawn_blocking(move || drop(traces)).await;
        result
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = patchfarm_client::runtime::cancel_on_signal("shutting down")?;
    if patchfarm_coordinator::fencing::read_switch() {
        tracing::error!(
            switch = patchfarm_coordinator::fencing::UNSAFE_DISABLE_FENCING,
            "FENCING IS OFF: stale completions will be accepted (a test of the fault checker, never a farm)"
        );
    }
    let mut peers = std::collections::HashMap::new();
    for peer in &args.peers {
        let (id, address) = parse_node(peer).with_context(|| format!("--peer {peer}"))?;
        peers.insert(id, address);
    }
    if let Some(store) = &args.artifact_store {
        let layout = store.starts_with("oci:") && store.len() > 4;
        if !layout && !store.contains('/') {
            anyhow::bail!("--artifact-store {store:?}: expected oci:DIR or HOST/REPO");
        }
    }
    let options = Options {
        node_id: args.node_id,
        listen: args.listen,
        advertise: args.advertise.unwrap_or_else(|| args.listen.to_string()),
        peers,
        data_dir: args.data_dir,
        tls: args
            .tls
            .files(&format!("coordinator-{}", args.node_id))
            .map_err(anyhow::Error::msg)?,
        join: args.join,
        metrics_listen: args.metrics_listen,
        http_listen: args.http_listen,
        dashboard_token: args
            .dashboard_token_file
            .as_deref()
            .map(patchfarm_coordinator::dashboard::read_token)
            .transpose()?,
        artifact_store: args.artifact_store,
        compact_after: args.compact_after,
        scheduler: patchfarm_coordinator::scheduler::Options {
            heartbeat_min_ttl_ms: args.heartbeat_ttl_ms.max(100),
            lease_ms: args.lease_ms.max(100),
            affinity_wait_ms: args.affinity_wait_ms.max(0),
            ..Default::default()
        },
        jobs: patchfarm_coordinator::api::farm::JobPolicy {
            allow_noop: args.allow_noop_jobs,
            layouts: args.allow_layouts,
        },
        connections: patchfarm_coordinator::listener::Limits {
            max_connections: args.max_connections.max(1),
            idle_timeout: std::time::Duration::try_from_secs_f64(args.idle_timeout_secs)
                .ok()
                .filter(|d| *d >= std::time::Duration::from_millis(100))
                .context("--idle-timeout-secs: expected at least 0.1 seconds")?,
        },
        registry: patchfarm_engine::transport::RegistryOptions {
            insecure_registries: args.insecure_registries,
            ..Default::default()
        },
    };
    server::run(options, shutdown).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_statefulset_pods_ordinal_is_its_node_id_less_one() {
        assert_eq!(super::ordinal_id("patchfarm-coordinator-0"), Ok(1));
        assert_eq!(
            super::ordinal_id("patchfarm-coordinator-2.patchfarm-coordinator.farm.svc"),
            Ok(3)
        );
        assert!(super::ordinal_id("laptop").is_err());
        assert_eq!(super::parse_node_id("4"), Ok(4));
        assert!(super::parse_node_id("0").is_err());
    }
}
