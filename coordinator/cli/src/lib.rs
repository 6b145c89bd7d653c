//! patchfarm-cli: the `patchfarm` command. WIT's flag spellings (plus kebab-case aliases) become
//! typed jobs, run here with the engine or submitted to the farm (`--farm`); campaigns, the
//! farm's listings and certificates. One module per verb; errors print their whole cause chain
//! and exit non-zero.

mod argfile;
mod aru;
mod assemble;
mod aux;
mod build_engine;
pub mod cache;
pub mod campaign;
mod certs;
mod copy;
mod create;
pub mod farm;
mod farm_cache;
#[cfg(test)]
mod help_tests;
mod inspect;
mod not_yet;
mod progress;
mod rebase;
mod refresh_aux;
mod submit;
mod update;
mod uploads;
mod verify;
mod wdt;

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
        value_name = "HOST",
        env = "PATCHFARM_INSECURE_REGISTRIES",
        value_delimiter = ','
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
    /// Give up on a registry call that receives nothing for this many seconds.
    #[arg(
        long = "registry-timeout",
        global = true,
        value_name = "SECS",
        env = "PATCHFARM_REGISTRY_TIMEOUT",
        default_value_t = 60.0
    )]
    registry_timeout: f64,
    /// Keep setuid and setgid bits from installers (dropped by default); also
    /// PATCHFARM_KEEP_SETUID=1.
    #[arg(long = "keep-setuid", alias = "keepSetuid", global = true)]
    keep_setuid: bool,
    /// Print machine-readable JSON where the output is data.
    #[arg(long, global = true)]
    json: bool,
    /// Sign every image pushed to a registry with this ECDSA P-256 private key (PKCS#8 PEM, as
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it), in
    /// sigstore's format (cosign's `sha256-<digest>.sig` tag); `patchfarm verify` checks it.
    #[arg(
        long = "sign-key",
        global = true,
        value_name = "FILE",
        env = "PATCHFARM_SIGN_KEY"
    )]
    sign_key: Option<std::path::PathBuf>,
    /// Refuse to build on an image (--fromImage, a rebase's target) that carries no sigstore
    /// signature by this public key (PEM; repeat for several, any one suffices).
    #[arg(long = "require-signed-base", global = true, value_name = "FILE")]
    require_signed_base: Vec<std::path::PathBuf>,
    /// Compress the layers patchfarm writes with gzip (the default, read by every runtime) or
    /// zstd (OCI zstd layers: smaller and faster, read by containerd ≥ 1.5, Docker ≥ 23, podman,
    /// skopeo, umoci). Layers taken over from a base image keep theirs.
    #[arg(
        long,
        global = true,
        value_name = "gzip|zstd",
        env = "PATCHFARM_COMPRESSION",
        default_value = "gzip"
    )]
    compression: patchfarm_engine::layer::Compression,
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
    /// Check that an image carries a sigstore signature by a key (as `--sign-key` attaches it).
    Verify(verify::Args),
    /// Copy an image to another registry or OCI layout unchanged (same digest).
    Copy(copy::Args),
    /// Build an image from files on a base (or scratch) with its entrypoint, reproducibly.
    Assemble(assemble::Args),
    /// Move an auxiliary image to another WDT release, its models kept byte for byte.
    #[command(name = "refreshAuxImage", alias = "refresh-aux-image")]
    RefreshAuxImage(refresh_aux::Args),
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) for patchfarm.
    Completions {
        /// The shell the script is for.
        shell: clap_complete::Shell,
    },
    /// Print patchfarm's man page (roff), made from the same definitions as --help.
    Man,
}

/// Shared by every verb: output mode.
pub struct Context {
    pub json: bool,
}

fn registry_options(cli: &Cli) -> anyhow::Result<RegistryOptions> {
    Ok(RegistryOptions {
        stall_timeout: seconds("--registry-timeout", cli.registry_timeout)?,
        engine_exports: Some(Cache::default_root().join("engine-images")),
        ..RegistryOptions::from_flags(&cli.insecure_registries, &cli.registry_cas)?
    })
}

/// A positive number of seconds from a flag.
fn seconds(flag: &str, value: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("{flag} {value}: expected a positive number of seconds"))
}

fn engine(cli: &Cli) -> anyhow::Result<Engine> {
    Ok(Engine {
        cache: Cache::new(Cache::default_root())
            .with_wit_cache(patchfarm_engine::cache::wit::default_dir()),
        registries: Registries::new(registry_options(cli)?),
        source_date_epoch: Engine::source_date_epoch_from_env()?,
        compression: cli.compression,
        steps_refused: None,
        step_network_refused: None,
        signer: match &cli.sign_key {
            Some(path) => Some(std::sync::Arc::new(
                patchfarm_engine::sign::Signer::from_pem_file(path)
                    .map_err(|e| anyhow::anyhow!("--sign-key {e}"))?,
            )),
            None => None,
        },
        builder: format!(
            "cli@{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
        ),
        base_keys: cli
            .require_signed_base
            .iter()
            .map(|path| {
                patchfarm_engine::sign::PublicKey::from_pem_file(path)
                    .map_err(|e| anyhow::anyhow!("--require-signed-base {e}"))
            })
            .collect::<anyhow::Result<_>>()?,
    })
}

/// Runs a job here (no farm) with a spinner, and prints what it did.
async fn run_job(ctx: &Context, engine: &Engine, job: &patchfarm_jobs::Job) -> anyhow::Result<()> {
    let step = progress::step(job.verb());
    let outcome = patchfarm_jobs::run(engine, job, &|message| step.set_message(message))
        .await
        .map_err(anyhow::Error::new)?;
    step.finish_and_clear();
    print_outcome(ctx, &outcome)
}

/// Runs a job here after resolving its patches with Oracle's patch service, when asked.
async fn run_patching_job(
    ctx: &Context,
    engine: &Engine,
    mut job: patchfarm_jobs::Job,
    online: Option<aru::Online>,
) -> anyhow::Result<()> {
    if let Some(online) = online {
        aru::prepare(&mut job, &online, engine).await?;
    }
    run_job(ctx, engine, &job).await
}

/// Prints what a job did: JSON with `--json`, else one line per fact.
fn print_outcome(ctx: &Context, outcome: &patchfarm_jobs::Outcome) -> anyhow::Result<()> {
    use patchfarm_jobs::Outcome;
    match outcome {
        Outcome::Updated(update) => {
            if !update.skipped.is_empty() {
                eprintln!(
                    "already in the image, skipped: {}",
                    update.skipped.join(", ")
                );
            }
            if ctx.json {
                println!("{}", serde_json::to_string_pretty(update)?);
                return Ok(());
            }
            println!(
                "applied: {}",
                if update.applied.is_empty() {
                    "nothing new".to_string()
                } else {
                    update.applied.join(", ")
                }
            );
        }
        Outcome::Rebased { outcome, .. } => {
            if ctx.json {
                println!("{}", serde_json::to_string_pretty(outcome)?);
                return Ok(());
            }
            println!(
                "{} path: {} ({} source layers reused)",
                outcome.path, outcome.detail, outcome.reused_layers
            );
        }
        Outcome::Refreshed(refreshed) => eprintln!(
            "WDT {} -> {}: {} files kept unchanged",
            refreshed.previous_wdt.as_deref().unwrap_or("(unknown)"),
            refreshed.new_wdt,
            refreshed.files_kept
        ),
        Outcome::Created { .. } | Outcome::Pushed(_) | Outcome::Nothing => {}
    }
    match outcome.report() {
        Some(report) => print_report(ctx, report),
        None => Ok(()),
    }
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
        .log_internal_errors(false)
        .init();
}

impl Command {
    /// The WDT flags of a verb that has them.
    fn wdt_args(&self) -> Option<&wdt::WdtArgs> {
        match self {
            Command::Create(args) => Some(args.wdt()),
            Command::Update(args) => Some(args.wdt()),
            _ => None,
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context { json: cli.json };
    if !cli.farm.farm.is_empty() {
        let job = match &cli.command {
            Command::CreateAuxImage(args) => Some((args.job()?, args.dry_run, None)),
            Command::Create(args) => Some((args.job()?, args.dry_run, args.online()?)),
            Command::Update(args) => Some((args.job()?, args.dry_run, args.online()?)),
            Command::Rebase(args) => Some((args.job()?, false, args.online()?)),
            Command::Copy(args) => Some((args.job()?, false, None)),
            Command::RefreshAuxImage(args) => Some((args.job()?, false, None)),
            Command::Cache { command } => {
                return farm_cache::run(&ctx, &cli.farm, command).await;
            }
            _ => None,
        };
        if let Some((mut job, dry_run, online)) = job {
            if let Some(online) = online {
                // Resolved here, so the account never leaves this machine: the farm gets the
                // verified zips and a job that names them by key.
                let engine = engine(&cli)?;
                let keys = aru::prepare(&mut job, &online, &engine).await?;
                farm_cache::upload_cached(&cli.farm, &engine.cache, &keys).await?;
            }
            if let Some(option) = job.secret_option() {
                anyhow::bail!("{option}: a farm job never carries a secret, and WDT on the farm's agent would need the model's passphrase; build this image here (drop --farm), or give WDT a model that is not encrypted");
            }
            let tag = job.tag();
            let base_signed_by = cli
                .require_signed_base
                .iter()
                .map(|path| {
                    std::fs::read_to_string(path).map_err(|e| {
                        anyhow::anyhow!("--require-signed-base {}: {e}", path.display())
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            submit::run(
                &ctx,
                &cli.farm,
                job,
                dry_run,
                base_signed_by,
                cli.compression,
            )
            .await?;
            if let (Some(wdt), Some(tag)) = (cli.command.wdt_args(), tag) {
                if cli.farm.wait {
                    wdt.resolve_templates(&tag)?;
                } else if !wdt.resource_templates.is_empty() {
                    eprintln!("note: --resourceTemplates are filled in once the image is built: give --wait to wait for it here");
                }
            }
            return Ok(());
        }
    }
    match &cli.command {
        Command::Cache { command } => cache::run(&ctx, command).await,
        Command::CreateAuxImage(args) => aux::run(&ctx, &engine(&cli)?, args).await,
        Command::Inspect(args) => inspect::run(&ctx, &engine(&cli)?, args).await,
        Command::Verify(args) => verify::run(&ctx, &engine(&cli)?, args).await,
        Command::Assemble(args) => {
            if !cli.farm.farm.is_empty() {
                eprintln!(
                    "note: assemble reads files on this machine, so it runs here, not on the farm"
                );
            }
            assemble::run(&ctx, &engine(&cli)?, args).await
        }
        Command::Create(args) => create::run(&ctx, &engine(&cli)?, args).await,
        Command::Update(args) => update::run(&ctx, &engine(&cli)?, args).await,
        Command::Rebase(args) => {
            run_patching_job(&ctx, &engine(&cli)?, args.job()?, args.online()?).await
        }
        Command::Copy(args) => run_job(&ctx, &engine(&cli)?, &args.job()?).await,
        Command::RefreshAuxImage(args) => run_job(&ctx, &engine(&cli)?, &args.job()?).await,
        Command::Cluster { command } => farm::cluster(&ctx, &cli.farm, command).await,
        Command::Jobs { command } => farm::jobs(&ctx, &cli.farm, command).await,
        Command::Campaign { command } => {
            let registry = registry_options(&cli)?;
            campaign::run(&ctx, &cli.farm, registry, command).await
        }
        Command::Agents { command } => farm_cache::agents(&ctx, &cli.farm, command).await,
        Command::Certs { command } => certs::run(command),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "patchfarm", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(())
        }
    }
}

/// A closed pipe on stdout (`patchfarm cache listItems | head -1`) ends the process quietly, as
/// it ends every Unix filter, instead of println!'s panic. SIGPIPE itself stays ignored: network
/// writes to a peer that closed must come back as errors, not kill the process.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Entry point of the `patchfarm` binary.
pub fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
    // oci-client and tonic may each bring a rustls backend; pick one explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = match argfile::expand(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {}", patchfarm_client::runtime::error_line(&e));
            return std::process::ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    if cli.keep_setuid {
        // Read by the engine where it masks installer modes; set before any thread starts.
        std::env::set_var("PATCHFARM_KEEP_SETUID", "1");
    }
    init_logging(cli.verbose);
    patchfarm_client::runtime::run_to_exit(run(cli))
}

/// Prints what a push did: JSON with `--json`, else one line per fact.
pub fn print_report(
    ctx: &Context,
    report: &patchfarm_engine::transport::PushReport,
) -> anyhow::Result<()> {
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
        if let Some(signature) = &report.signature {
            println!("  signed: {signature}");
        }
    }
    Ok(())
}
