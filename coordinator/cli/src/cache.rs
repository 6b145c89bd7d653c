//! `patchfarm cache …`: WIT's cache verbs over the content-addressed local store.

use super::Context;
use anyhow::Context as _;
use patchfarm_engine::cache::{wit, Cache, CacheKey};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Add an installer (jdk, wls, fmw, wdt, …) under TYPE_VERSION[_ARCH].
    #[command(name = "addInstaller", alias = "add-installer")]
    AddInstaller {
        /// Installer type: jdk, wls, fmw, wdt, … (the key's first part).
        #[arg(long = "type")]
        kind: String,
        /// The installer's version (the key's second part).
        #[arg(long)]
        version: String,
        /// The installer file, copied into the cache and hashed.
        #[arg(long)]
        path: PathBuf,
        /// amd64 or arm64 (x86_64/aarch64 accepted): an architecture-specific entry.
        #[arg(long, alias = "arch")]
        architecture: Option<String>,
        /// Replace an existing entry.
        #[arg(long)]
        force: bool,
    },
    /// Add a patch under BUGNUMBER_VERSION[_ARCH].
    #[command(name = "addPatch", alias = "add-patch")]
    AddPatch {
        /// BUGNUMBER_VERSION[_ARCH], e.g. 29135930_12.2.1.4.0.
        #[arg(long = "patchId", alias = "patch-id")]
        patch_id: String,
        /// The patch zip (p<bug>_<release>_<platform>.zip), copied into the cache and hashed.
        #[arg(long)]
        path: PathBuf,
        /// Replace an existing entry.
        #[arg(long)]
        force: bool,
    },
    /// List cache entries (optionally those whose key matches a regex).
    #[command(name = "listItems", alias = "list-items")]
    ListItems {
        /// Only keys this regex matches whole (as WIT: `jdk.*`).
        #[arg(long)]
        key: Option<String>,
    },
    /// Remove an entry.
    #[command(name = "deleteEntry", alias = "delete-entry")]
    DeleteEntry {
        /// The key to delete, or DELETE_ALL_FOR_SURE to empty the cache.
        #[arg(long)]
        key: String,
    },
    /// Copy a WebLogic Image Tool cache (its .metadata) into this verified store.
    Import {
        /// WIT's cache directory (default $WLSIMG_CACHEDIR, else ~/cache).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// Each `.metadata` key and what became of it (imported, already here, or why not).
fn import(
    cache: &Cache,
    dir: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let metadata = wit::read_metadata(dir)
        .with_context(|| format!("reading {}", dir.join(".metadata").display()))?;
    let mut report = std::collections::BTreeMap::new();
    for (key, path) in metadata {
        let outcome = match key.parse::<CacheKey>() {
            Err(e) => format!("skipped: {e}"),
            Ok(parsed) if cache.entry(&parsed)?.is_some() => "already here".to_string(),
            Ok(parsed) => match cache.add(&parsed, &path, false) {
                Ok(entry) => format!("imported {} ({})", path.display(), entry.digest),
                Err(e) => format!("skipped: {e}"),
            },
        };
        report.insert(key, outcome);
    }
    Ok(report)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("cache task panicked")?
}

pub async fn run(ctx: &Context, command: &Command) -> anyhow::Result<()> {
    let cache = Cache::new(Cache::default_root()).with_wit_cache(wit::default_dir());
    let json = ctx.json;
    match command {
        Command::Import { from } => {
            let dir = from
                .clone()
                .or_else(wit::default_dir)
                .context("no WebLogic Image Tool cache found: pass --from DIR (the directory holding .metadata), or set WLSIMG_CACHEDIR")?;
            let report = blocking(move || import(&cache, &dir)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for (key, outcome) in &report {
                    println!("{key}: {outcome}");
                }
            }
            Ok(())
        }
        Command::AddInstaller {
            kind,
            version,
            path,
            architecture,
            force,
        } => {
            let key = CacheKey::installer(kind, version, architecture.as_deref())?;
            let (path, force) = (path.clone(), *force);
            let entry = blocking(move || Ok(cache.add(&key, &path, force)?)).await?;
            print_added(json, &entry)
        }
        Command::AddPatch {
            patch_id,
            path,
            force,
        } => {
            let key = CacheKey::patch(patch_id)?;
            let (path, force) = (path.clone(), *force);
            let entry = blocking(move || Ok(cache.add(&key, &path, force)?)).await?;
            print_added(json, &entry)
        }
        Command::ListItems { key } => {
            let key = key.clone();
            let root = cache.root().to_path_buf();
            let entries = blocking(move || Ok(cache.list(key.as_deref())?)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                println!("Cache contents");
                println!("cache.dir={}", root.display());
                for e in entries {
                    println!("{}={} ({}, {} bytes)", e.key, e.file_name, e.digest, e.size);
                }
            }
            Ok(())
        }
        Command::DeleteEntry { key } => {
            if key.eq_ignore_ascii_case(DELETE_ALL) {
                let removed = blocking(move || Ok(cache.clear()?)).await?;
                if json {
                    println!("{}", serde_json::json!({ "cleared": removed }));
                } else {
                    println!("deleted all {removed} entries from the cache");
                }
                return Ok(());
            }
            if key.eq_ignore_ascii_case("cache.dir") {
                println!("cannot delete key: {key}");
                return Ok(());
            }
            let key: CacheKey = key.parse()?;
            let wanted = key.clone();
            let removed = blocking(move || Ok(cache.remove(&wanted)?)).await?;
            // As WIT: a missing key is reported, not an error (scripts run with `set -e`).
            match (json, &removed) {
                (true, _) => println!("{}", serde_json::json!({ "deleted": removed })),
                (false, Some(entry)) => println!("deleted {}", entry.key),
                (false, None) => println!("nothing to delete for key: {key}"),
            }
            Ok(())
        }
    }
}

/// WIT's `deleteEntry` key that empties the whole cache.
pub const DELETE_ALL: &str = "DELETE_ALL_FOR_SURE";

fn print_added(json: bool, entry: &patchfarm_engine::cache::CacheEntry) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(entry)?);
    } else {
        println!(
            "added {} ({}, {} bytes)",
            entry.key, entry.digest, entry.size
        );
    }
    Ok(())
}
