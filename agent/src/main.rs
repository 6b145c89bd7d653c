//! `patchfarm-agent`: a build node of the farm (see `daemon` for the session it keeps).

mod daemon;
mod fetcher;
mod metrics;
mod probes;

use anyhow::Context as _;
use clap::Parser;
use patchfarm_client::tls::TlsFlags;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "patchfarm-agent",
    version,
    about = "A patchfarm build agent: leases jobs from the coordinators and builds them natively"
)]
struct Args {
    /// This agent's name; its certificate is <tls-dir>/<name>.crt (from `patchfarm certs init`).
    #[arg(long)]
    name: String,
    /// Coordinator addresses (HOST:PORT, comma-separated); the agent finds the leader itself.
    #[arg(long, value_delimiter = ',', required = true, value_name = "ADDR")]
    coordinator: Vec<String>,
    /// The local installer and patch cache (content fetched from the farm's artifact store).
    #[arg(long = "cache-dir")]
    cache_dir: PathBuf,
    #[command(flatten)]
    tls: TlsFlags,
    /// Jobs run at the same time.
    #[arg(long, default_value_t = 2)]
    slots: u32,
    /// Registry-only jobs (copies, rebases onto a pushed base: registry round trips, little
    /// disk or CPU) run at the same time beside the slots; 0 = they take slots.
    #[arg(long = "registry-slots", default_value_t = 16)]
    registry_slots: u32,
    /// Labels jobs can require with --constraint, KEY=VALUE[,KEY=VALUE…].
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Evict least recently used cache content beyond this many bytes.
    #[arg(long = "cache-max-bytes")]
    cache_max_bytes: Option<u64>,
    /// Reach this registry (HOST[:PORT]) over plain HTTP.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// Also trust this CA certificate (PEM) for registry TLS.
    #[arg(long = "registry-ca", value_name = "FILE", value_delimiter = ',')]
    registry_cas: Vec<PathBuf>,
    /// Give up on a registry call that receives nothing for this many seconds.
    #[arg(long = "registry-timeout", value_name = "SECS", default_value_t = 60)]
    registry_timeout_secs: u64,
    /// Send the docker config's credentials to this registry (repeatable); jobs reach every
    /// other registry anonymously, so a job cannot aim the agent's password at a host it chose.
    #[arg(long = "registry-credentials", value_name = "HOST")]
    registry_credentials: Vec<String>,
    /// Keep setuid and setgid bits from installers in the images this agent builds (dropped by
    /// default); also PATCHFARM_KEEP_SETUID=1.
    #[arg(long = "keep-setuid")]
    keep_setuid: bool,
    /// On SIGTERM, wait this many seconds for running jobs before handing them back.
    #[arg(long = "drain-timeout-secs", default_value_t = 60)]
    drain_timeout_secs: u64,
    /// Never run build steps (Oracle installers, build commands) here, even where runc and
    /// overlay mounts work: the farm sends this agent only jobs that need none.
    #[arg(long = "no-build-steps")]
    no_build_steps: bool,
    /// Never give build steps the network, whatever a job asks (`--buildNetwork`): the farm
    /// sends this agent only jobs whose steps run offline.
    #[arg(long = "no-step-network")]
    no_step_network: bool,
    /// Serve HTTP here: liveness (/healthz), readiness (/readyz: registered with the farm and a
    /// heartbeat answered in the last 10 s; 503 otherwise) and Prometheus metrics (/metrics).
    #[arg(long = "http-listen")]
    http_listen: Option<std::net::SocketAddr>,
    /// Log format: text or json.
    #[arg(long = "log-format", default_value = "text")]
    log_format: String,
    /// Also export every span (a job's run on an agent, with its job, campaign and agent) as
    /// OpenTelemetry traces to this OTLP/gRPC collector, e.g. http://otel-collector:4317.
    #[arg(long = "otlp-endpoint", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Sign every image this agent pushes with the farm's ECDSA P-256 key (PKCS#8 PEM): a file
    /// delivered to the agent as a secret (a Kubernetes Secret, a systemd credential), never
    /// through the coordinators.
    #[arg(long = "sign-key", value_name = "FILE")]
    sign_key: Option<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    if args.keep_setuid {
        // Read by the engine where it masks installer modes; set before any thread starts.
        std::env::set_var("PATCHFARM_KEEP_SETUID", "1");
    }
    patchfarm_client::runtime::run_to_exit(async move {
        let traces = patchfarm_client::runtime::init_daemon_logging(
            &args.log_format,
            "info,h2=warn,tower=warn",
            args.otlp_endpoint
                .as_deref()
                .map(|url| (url, "patchfarm-agent")),
        )?;
        let result = run(args).await;
        // Sends the spans still batched; blocking, so off the async threads.
        let _ = tokio::task::spawn_blocking(move || drop(traces)).await;
        result
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = patchfarm_client::runtime::cancel_on_signal("draining")?;
    if args.slots == 0 {
        anyhow::bail!("--slots must be 1 or more");
    }
    let mut labels = std::collections::HashMap::new();
    for label in &args.labels {
        let (k, v) = label
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("--labels {label:?}: expected KEY=VALUE"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let options = daemon::Options {
        name: args.name.clone(),
        coordinators: args.coordinator,
        cache_dir: args.cache_dir,
        tls: args.tls.files(&args.name).map_err(anyhow::Error::msg)?,
        slots: args.slots,
        registry_slots: args.registry_slots,
        labels,
        cache_max_bytes: args.cache_max_bytes,
        registry: patchfarm_engine::transport::RegistryOptions {
            stall_timeout: Duration::from_secs(args.registry_timeout_secs.max(1)),
            credential_hosts: Some(args.registry_credentials),
            ..patchfarm_engine::transport::RegistryOptions::from_flags(
                &args.insecure_registries,
                &args.registry_cas,
            )?
        },
        drain_timeout: Duration::from_secs(args.drain_timeout_secs),
        build_steps: !args.no_build_steps,
        step_network: !args.no_step_network,
        http_listen: args.http_listen,
        signer: match &args.sign_key {
            // Read at start: a bad key stops the agent before it leases anything.
            Some(path) => Some(std::sync::Arc::new(
                patchfarm_engine::sign::Signer::from_pem_file(path)
                    .map_err(|e| anyhow::anyhow!("--sign-key {e}"))?,
            )),
            None => None,
        },
    };
    daemon::run(options, shutdown).await
}
