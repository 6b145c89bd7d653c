//! The coordinator's composition root: opens storage, starts the raft node and the gRPC server
//! (client, agent and peer services on one port, mTLS unless `insecure`), serves metrics, and
//! shuts down in order — stop accepting calls, then stop the node, then flush.

use crate::api::{agent::AgentService, farm::FarmService, peer::PeerService};
use crate::raft::{node, transport::Transport, transport::MAX_RAFT_MESSAGE};
use anyhow::Context as _;
use patchfarm_client::tls::TlsFiles;
use patchfarm_proto::v1::{
    agent_api_server::AgentApiServer, farm_server::FarmServer, raft_server::RaftServer,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything `patchfarm-coordinator` is told on its command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub node_id: u64,
    pub listen: SocketAddr,
    /// The address peers and clients use for this node (defaults to `listen`).
    pub advertise: String,
    pub peers: HashMap<u64, String>,
    pub data_dir: PathBuf,
    /// `None` = plaintext (`--insecure`).
    /// The node's certificate, key and the farm's CA; `None` = plaintext (`--insecure`).
    pub tls: Option<TlsFiles>,
    /// Start with no members and wait to be added (`cluster add-node`).
    pub join: bool,
    pub metrics_listen: Option<SocketAddr>,
    /// The dashboard's port (`--http-listen`): HTTPS with the node's certificate, plain HTTP
    /// under `--insecure`.
    pub http_listen: Option<SocketAddr>,
    /// The dashboard's read-only token (`--dashboard-token-file`, already read).
    pub dashboard_token: Option<String>,
    pub artifact_store: Option<String>,
    /// Compact the raft log after this many applied entries (lagging nodes then get a snapshot).
    pub compact_after: u64,
    pub scheduler: crate::scheduler::Options,
    /// What farm jobs may do beyond any spec (no-op jobs, OCI layouts on the agents).
    pub jobs: crate::api::farm::JobPolicy,
    /// Registry access for the artifact store.
    pub registry: patchfarm_engine::transport::RegistryOptions,
    /// Connection cap and idle timeout of the gRPC listener.
    pub connections: crate::listener::Limits,
}

/// Releases before typed jobs stored a verb and its command line; this release cannot run such
/// a job, so a data dir still holding one queued or running does not start (nothing is lost:
/// the previous release can still drain it).
fn refuse_argv_jobs(db: &sled::Db, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let state = crate::state::StateMachine::open(db)?;
    let open: Vec<String> = state
        .queued_jobs()?
        .into_iter()
        .chain(state.leased_jobs()?)
        .filter(|job| job.spec.as_ref().is_none_or(|spec| spec.verb.is_none()))
        .map(|job| format!("{} ({})", job.id, job.state().as_str_name().to_lowercase()))
        .collect();
    if !open.is_empty() {
        anyhow::bail!(
            "--data-dir {} holds {} job(s) queued or running from a release before typed jobs \
             (a command line, which this release cannot run): {}. Drain them with the previous \
             release first: keep it running until `patchfarm jobs list --state queued` and \
             `--state leased` show none of them (or cancel them with `patchfarm jobs cancel ID`), \
             then start this release on the same --data-dir",
            data_dir.display(),
            open.len(),
            open.join(", ")
        );
    }
    Ok(())
}

/// Runs one coordinator until `shutdown` fires (or the node is removed).
pub async fn run(options: Options, shutdown: CancellationToken) -> anyhow::Result<()> {
    if options.node_id == 0 {
        anyhow::bail!("--node-id must be 1 or more (0 means \"no node\" to raft)");
    }
    let tls = options.tls.as_ref();
    let server_tls = tls.as_ref().map(|t| t.server()).transpose()?;
    let peer_tls = tls.as_ref().map(|t| t.client()).transpose()?;
    let insecure = tls.is_none();

    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("creating --data-dir {}", options.data_dir.display()))?;
    let db_path = options.data_dir.join("sled");
    // Raft decides when data must be durable (one flush per Ready): no background flushes.
    let db = sled::Config::new()
        .path(&db_path)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .with_context(|| {
            format!(
                "opening {} (is another coordinator using this --data-dir?)",
                db_path.display()
            )
        })?;

    refuse_argv_jobs(&db, &options.data_dir)?;

    let mut voters: Vec<u64> = options.peers.keys().copied().collect();
    voters.push(options.node_id);
    voters.sort_unstable();
    voters.dedup();
    let initial_voters = if options.join { Vec::new() } else { voters };

    let inbox = tokio::sync::mpsc::channel(65_536);
    let mut pinned = options.peers.clone();
    pinned.remove(&options.node_id);
    let metrics = Arc::new(crate::raft::Metrics::default());
    let transport = Transport::new(
        options.node_id,
        pinned,
        peer_tls.clone(),
        inbox.0.clone(),
        metrics.clone(),
    );
    let scheduler = crate::scheduler::Scheduler::new(options.scheduler.clone());
    let artifact_store = options
        .artifact_store
        .as_deref()
        .map(|store| {
            let registries = std::sync::Arc::new(patchfarm_engine::transport::Registries::new(
                options.registry.clone(),
            ));
            patchfarm_engine::artifact::ArtifactStore::parse(store, registries)
        })
        .transpose()
        .context("--artifact-store")?;
    let farm_metrics = Arc::new(crate::metrics::FarmMetrics::new(
        options.node_id,
        metrics.clone(),
        scheduler.clone(),
    ));
    let (raft_node, handle) = node::open(
        options.node_id,
        db.clone(),
        &initial_voters,
        options.compact_after,
        node::Wiring {
            metrics,
            transport,
            inbox,
            observer: Arc::new(crate::state::Observers(vec![
                scheduler.clone(),
                farm_metrics.jobs.clone(),
            ])),
            durable: Some(
                crate::raft::durable::DurableFlush::open(&db_path)
                    .with_context(|| format!("opening {} to sync it", db_path.display()))?,
            ),
        },
    )?;
    tracing::info!(
        node = options.node_id,
        listen = %options.listen,
        tls = !insecure,
        artifact_store = options.artifact_store.as_deref().unwrap_or("-"),
        "coordinator starting"
    );

    let node_stop = CancellationToken::new();
    let node_task = tokio::spawn(raft_node.run(node_stop.clone()));
    tokio::spawn(crate::scheduler::liveness::run_reaper(
        scheduler.clone(),
        handle.clone(),
        node_stop.clone(),
    ));

    if let Some(metrics_addr) = options.metrics_listen {
        let listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("binding --metrics-listen {metrics_addr}"))?;
        tokio::spawn(crate::http::serve(
            listener,
            handle.clone(),
            farm_metrics.clone(),
            options.data_dir.clone(),
            shutdown.clone(),
        ));
    }

    let farm = Arc::new(FarmService {
        node: handle.clone(),
        peer_tls,
        address: options.advertise.clone(),
        scheduler: scheduler.clone(),
        policy: options.jobs.clone(),
        artifacts: crate::api::artifacts::Uploads {
            store: artifact_store,
            spool: options.data_dir.join("uploads"),
        },
    });
    if let Some(http_addr) = options.http_listen {
        let listener = tokio::net::TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("binding --http-listen {http_addr}"))?;
        let dashboard_tls = tls
            .map(crate::dashboard::server_config)
            .transpose()?
            .map(Arc::new);
        tokio::spawn(crate::dashboard::serve(
            listener,
            Arc::new(crate::dashboard::Dashboard {
                farm: farm.clone(),
                metrics: farm_metrics.clone(),
                data_dir: options.data_dir.clone(),
                token: options.dashboard_token.clone(),
                leader_channel: Default::default(),
            }),
            dashboard_tls,
            shutdown.clone(),
        ));
    }
    let peer = PeerService {
        node: handle.clone(),
        address: options.advertise.clone(),
    };
    let agent = AgentService {
        node: handle.clone(),
        scheduler,
        metrics: farm_metrics.clone(),
    };
    let keepalive = options.connections.keepalive_interval();
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive));
    if let Some(server_tls) = server_tls {
        builder = builder.tls_config(server_tls)?;
    }
    // Every call's certificate is checked against the access policy before any handler runs.
    let mut builder = builder.layer(crate::roles::RoleLayer { insecure });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("binding --listen {}", options.listen))?;
    let health =
        crate::grpc_health::service(handle.clone(), options.data_dir.clone(), shutdown.clone());
    let server = builder
        .add_service(health)
        .add_service(FarmServer::from_arc(farm))
        .add_service(AgentApiServer::new(agent))
        .add_service(
            RaftServer::new(peer)
                .max_decoding_message_size(MAX_RAFT_MESSAGE)
                .max_encoding_message_size(MAX_RAFT_MESSAGE),
        )
        .serve_with_incoming_shutdown(
            crate::listener::incoming(listener, options.connections),
            shutdown.clone().cancelled_owned(),
        );
    tokio::pin!(server);
    let mut node_task = node_task;
    tokio::select! {
        served = &mut server => {
            served.context("gRPC server failed")?;
        }
        stopped = &mut node_task => {
            // The node stops by itself only when removed from the cluster (or on a storage error).
            stopped.context("raft task panicked")??;
            tracing::warn!(node = options.node_id, "raft node stopped; shutting the coordinator down");
            shutdown.cancel();
            let _ = server.await;
            db.flush_async().await?;
            return Ok(());
        }
    }
    node_stop.cancel();
    node_task.await.context("raft task panicked")??;
    db.flush_async().await?;
    Ok(())
}
