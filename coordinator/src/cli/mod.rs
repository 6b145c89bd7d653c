//! Command-line parsing (WIT's flag spellings plus kebab-case aliases) and dispatch to one
//! module per verb. Errors print their whole cause chain and exit non-zero.

mod aux;
pub mod cache;
mod campaign;
mod certs;
mod copy;
mod create;
pub mod farm;
mod farm_cache;
mod inspect;
mod progress;
mod rebase;
mod submit;
mod update;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use patchfarm_engine::cache::Cache;
use patchfarm_engine::recipe::Engine;
use patchfarm_engine::transport::{Registries, RegistryOptions};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "patchfarm",
    version,
    about = "Build, patch and inspect WebLogic container images without a Docker daemon"
)]
pub struct Cli {
    /// Reach this registry (HOST[:PORT]) over plain HTTP, as loopback registries are (unless they answer TLS).
    #[arg(
        long = "insecure-registry",
        alias = "insecureRegistry",
        global = true,
        value_name = "HOST"
    )]
    insecure_registries: Vec<String>,
    /// Also trust this CA certificate (PEM) for registry TLS.
    #[arg(
        long = "registry-ca",
        alias = "registryCa",
        global = true,
        value_name = "FILE",
        env = "PATCHFARM_REGISTRY_CA",
        value_delimiter = ','
    )]
    registry_cas: Vec<PathBuf>,
    /// Print machine-readable JSON where the output is data.
    #[arg(long, global = true)]
    json: bool,
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    farm: farm::FarmArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a Model-in-Image auxiliary image (WDT, models, archives, variables).
    #[command(name = "createAuxImage", alias = "create-aux-image")]
    CreateAuxImage(aux::Args),
    /// Build a WebLogic image: JDK, Oracle Home with patches applied in place, optional WDT model.
    Create(create::Args),
    /// Apply patches to an existing WebLogic image as one new layer.
    Update(update::Args),
    /// Move a Domain-in-Image domain onto a new patched base image.
    Rebase(rebase::Args),
    /// Show what an image contains (OS, JDK, Oracle Home, WDT, patches) without running it.
    Inspect(inspect::Args),
    /// Copy an image to another registry or OCI layout unchanged (same digest).
    Copy(copy::Args),
    /// Manage the local installer and patch cache.
    Cache {
        #[command(subcommand)]
        command: cache::Command,
    },
    /// The coordinator cluster: status, add or remove a node (needs --farm).
    Cluster {
        #[command(subcommand)]
        command: farm::ClusterCommand,
    },
    /// Campaigns: a fleet's quarterly rebuild from one YAML file (`plan` validates and shows it).
    Campaign {
        #[command(subcommand)]
        command: campaign::CampaignCommand,
    },
    /// Build agents known to the farm: slots, running jobs, cache (needs --farm).
    Agents {
        #[command(subcommand)]
        command: farm_cache::AgentsCommand,
    },
    /// Jobs in the farm: list, show, logs, cancel (needs --farm).
    Jobs {
        #[command(subcommand)]
        command: farm::JobsCommand,
    },
    /// The farm's certificates (mTLS between clients, agents and coordinators).
    Certs {
        #[command(subcommand)]
        command: certs::CertsCommand,
    },
}

/// Shared by every verb: output mode, and where pushed images are reported.
pub struct Context {
    pub json: bool,
    /// Inside an agent: collects `REFERENCE@DIGEST` of every push instead of printing it.
    pub pushed: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
}

/// Registry access from `--insecure-registry` and `--registry-ca`.
pub fn registry_options(
    insecure_registries: &[String],
    registry_cas: &[PathBuf],
) -> anyhow::Result<RegistryOptions> {
    let mut extra_ca_pems = Vec::new();
    for path in registry_cas {
        extra_ca_pems.push(
            std::fs::read(path)
                .with_context(|| format!("reading --registry-ca {}", path.display()))?,
        );
    }
    Ok(RegistryOptions {
        insecure_registries: insecure_registries.to_vec(),
        extra_ca_pems,
        ..Default::default()
    })
}

fn engine(cli: &Cli) -> anyhow::Result<Engine> {
    Ok(Engine {
        cache: Cache::new(Cache::default_root()),
        registries: Registries::new(registry_options(
            &cli.insecure_registries,
            &cli.registry_cas,
        )?),
        source_date_epoch: Engine::source_date_epoch_from_env()?,
    })
}

/// Runs one farm job's verb (`kind` and its arguments, as `patchfarm KIND ARGS…` would) with
/// an agent's cache and registry access; returns `REFERENCE@DIGEST` of what it pushed.
pub async fn execute(
    cache: Cache,
    mut registry: RegistryOptions,
    kind: String,
    args: Vec<String>,
) -> anyhow::Result<Vec<String>> {
    let argv = ["patchfarm", kind.as_str()]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        anyhow::anyhow!("the job's arguments do not parse as `patchfarm {kind}`: {e}")
    })?;
    registry
        .insecure_registries
        .extend(cli.insecure_registries.iter().cloned());
    let engine = Engine {
        cache,
        registries: Registries::new(registry),
        source_date_epoch: Engine::source_date_epoch_from_env()?,
    };
    let pushed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let ctx = Context {
        json: false,
        pushed: Some(pushed.clone()),
    };
    match &cli.command {
        Command::CreateAuxImage(args) => aux::run(&ctx, &engine, args).await?,
        Command::Create(args) => create::run(&ctx, &engine, args).await?,
        Command::Update(args) => update::run(&ctx, &engine, args).await?,
        Command::Rebase(args) => rebase::run(&ctx, &engine, args).await?,
        Command::Copy(args) => copy::run(&ctx, &engine, args).await?,
        _ => anyhow::bail!("job kind {kind:?} is not something an agent builds"),
    }
    let pushed = pushed.lock().expect("pushed list").clone();
    if pushed.is_empty() {
        anyhow::bail!("the job pushed nothing (a --dryRun has no place in a farm job)");
    }
    Ok(pushed)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,patchfarm=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context {
        json: cli.json,
        pushed: None,
    };
    if !cli.farm.farm.is_empty() {
        let inputs = match &cli.command {
            Command::CreateAuxImage(args) => Some(args.farm_inputs()),
            Command::Create(args) => Some(args.farm_inputs()),
            Command::Update(args) => Some(args.farm_inputs()),
            Command::Rebase(args) => Some(args.farm_inputs()),
            Command::Cache { command } => {
                return farm_cache::run(&ctx, &cli.farm, command).await;
            }
            _ => None,
        };
        if let Some(inputs) = inputs {
            return submit::run(&ctx, &cli.farm, inputs).await;
        }
    }
    match &cli.command {
        Command::Cache { command } => cache::run(&ctx, command).await,
        Command::CreateAuxImage(args) => aux::run(&ctx, &engine(&cli)?, args).await,
        Command::Inspect(args) => inspect::run(&ctx, &engine(&cli)?, args).await,
        Command::Create(args) => create::run(&ctx, &engine(&cli)?, args).await,
        Command::Update(args) => update::run(&ctx, &engine(&cli)?, args).await,
        Command::Rebase(args) => rebase::run(&ctx, &engine(&cli)?, args).await,
        Command::Copy(args) => copy::run(&ctx, &engine(&cli)?, args).await,
        Command::Cluster { command } => farm::cluster(&ctx, &cli.farm, command).await,
        Command::Jobs { command } => farm::jobs(&ctx, &cli.farm, command).await,
        Command::Campaign { command } => {
            let registry = registry_options(&cli.insecure_registries, &cli.registry_cas)?;
            campaign::run(&ctx, &cli.farm, registry, command).await
        }
        Command::Agents { command } => farm_cache::agents(&ctx, &cli.farm, command).await,
        Command::Certs { command } => certs::run(command),
    }
}

/// Entry point of the `patchfarm` binary.
pub fn main() -> std::process::ExitCode {
    // oci-client and tonic may each bring a rustls backend; pick one explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    run_to_exit(run(cli))
}

/// Logging for the daemons (`patchfarm-coordinator`, `patchfarm-agent`): `RUST_LOG` or
/// `default`, to stderr, colour only on a terminal, `json` or `text`.
pub fn init_daemon_logging(log_format: &str, default: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match log_format {
        "json" => subscriber.json().init(),
        "text" => subscriber.init(),
        other => anyhow::bail!("--log-format {other:?}: expected text or json"),
    }
    Ok(())
}

/// Runs a binary's async main on a multi-threaded runtime; an error prints its whole cause
/// chain and exits non-zero. Shared by `patchfarm` and `patchfarm-coordinator`.
pub fn run_to_exit(
    main: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints what a push did: JSON with `--json`, else one line per fact.
pub fn print_report(
    ctx: &Context,
    report: &patchfarm_engine::transport::PushReport,
) -> anyhow::Result<()> {
    if let Some(pushed) = &ctx.pushed {
        pushed
            .lock()
            .expect("pushed list")
            .push(format!("{}@{}", report.reference, report.digest));
        return Ok(());
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!(
            "{}@{}\n  blobs: {} uploaded ({} bytes), {} mounted, {} already present",
            report.reference,
            report.digest,
            report.blobs_uploaded,
            report.bytes_uploaded,
            report.blobs_mounted,
            report.blobs_present
        );
    }
    Ok(())
}
