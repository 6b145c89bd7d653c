//! The cache verbs against the farm (`--farm`): items go to the coordinators' artifact store and
//! the replicated catalog instead of this machine's cache; and `agents list`.

use super::cache::Command;
use super::farm::FarmArgs;
use super::Context;
use anyhow::Context as _;
use patchfarm_client::new_request_id;
use patchfarm_engine::cache::CacheKey;
use patchfarm_proto::v1::*;
use std::path::Path;

#[derive(clap::Subcommand, Debug)]
pub enum AgentsCommand {
    /// Every agent: up or down, slots, running jobs, cache size, last heartbeat.
    List,
}

/// Streams `path` to a coordinator, which stores it and records `key` in the catalog.
async fn upload(
    farm: &FarmArgs,
    key: &CacheKey,
    kind: &str,
    path: &Path,
    force: bool,
) -> anyhow::Result<CatalogEntry> {
    let header = ArtifactHeader {
        request_id: new_request_id(),
        key: key.to_string(),
        kind: kind.into(),
        force,
        ..Default::default()
    };
    super::uploads::put_file(&farm.client()?, header, path)
        .await
        .with_context(|| format!("--path {}: uploading it for {key}", path.display()))
}

/// Uploads cached patches (resolved on this machine) to the farm's catalog under their keys.
pub async fn upload_cached(
    farm: &FarmArgs,
    cache: &patchfarm_engine::cache::Cache,
    keys: &[CacheKey],
) -> anyhow::Result<()> {
    for key in keys {
        let (store, k) = (cache.clone(), key.clone());
        let item = tokio::task::spawn_blocking(move || store.get_verified(&k))
            .await
            .expect("cache read task")?;
        upload(farm, key, "patch", &item.path, true).await?;
    }
    Ok(())
}

pub async fn run(ctx: &Context, farm: &FarmArgs, command: &Command) -> anyhow::Result<()> {
    let client = farm.client()?;
    match command {
        Command::Import { .. } => anyhow::bail!(
            "cache import copies a WebLogic Image Tool cache into this machine's store; for the farm, add each item with cache addInstaller/addPatch --farm"
        ),
        Command::AddInstaller {
            kind,
            version,
            path,
            architecture,
            force,
        } => {
            let key = CacheKey::installer(kind, version, architecture.as_deref())?;
            print_entry(
                ctx,
                "added",
                &upload(farm, &key, "installer", path, *force).await?,
            )
        }
        Command::AddPatch {
            patch_id,
            path,
            force,
        } => {
            let key = CacheKey::patch(patch_id)?;
            print_entry(
                ctx,
                "added",
                &upload(farm, &key, "patch", path, *force).await?,
            )
        }
        Command::ListItems { key } => {
            let pattern = key
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .with_context(|| format!("invalid --key pattern {key:?}"))?;
            let entries: Vec<CatalogEntry> = client
                .call(|mut c| async move { c.catalog_list(CatalogListRequest {}).await })
                .await?
                .entries
                .into_iter()
                .filter(|e| pattern.as_ref().is_none_or(|p| p.is_match(&e.key)))
                .collect();
            if ctx.json {
                let out: Vec<_> = entries.iter().map(entry_json).collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("Farm catalog");
                for e in &entries {
                    println!(
                        "{}={} ({}, {} bytes, in {})",
                        e.key, e.description, e.digest, e.size, e.location
                    );
                }
            }
            Ok(())
        }
        Command::DeleteEntry { key } => {
            if key.eq_ignore_ascii_case(super::cache::DELETE_ALL) {
                anyhow::bail!(
                    "--key {key} empties this machine's cache; the farm's catalog is shared, so its entries are deleted one --key at a time"
                );
            }
            let key: CacheKey = key.parse()?;
            let request = CatalogDeleteRequest {
                request_id: new_request_id(),
                key: key.to_string(),
            };
            let deleted = client
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.catalog_delete(request).await }
                })
                .await;
            // As WIT's deleteEntry: a key that is not there is said, and is no failure.
            let deleted = match deleted {
                Ok(_) => true,
                Err(e) if e.code() == Some(tonic::Code::NotFound) => false,
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("deleting {key} from the farm's catalog")))
                }
            };
            match (ctx.json, deleted) {
                (true, _) => println!(
                    "{}",
                    serde_json::json!({"key": key.to_string(), "deleted": deleted})
                ),
                (false, true) => println!("deleted {key}"),
                (false, false) => println!("nothing to delete for key: {key}"),
            }
            Ok(())
        }
    }
}

fn entry_json(e: &CatalogEntry) -> serde_json::Value {
    serde_json::json!({
        "key": e.key, "kind": e.kind, "digest": e.digest, "size": e.size,
        "location": e.location, "fileName": e.description,
    })
}

fn print_entry(ctx: &Context, verb: &str, e: &CatalogEntry) -> anyhow::Result<()> {
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&entry_json(e))?);
    } else {
        println!(
            "{verb} {} ({}, {} bytes) to {}",
            e.key, e.digest, e.size, e.location
        );
    }
    Ok(())
}

pub async fn agents(ctx: &Context, farm: &FarmArgs, command: &AgentsCommand) -> anyhow::Result<()> {
    let AgentsCommand::List = command;
    let agents = farm
        .client()?
        .call(|mut c| async move { c.list_agents(ListAgentsRequest {}).await })
        .await?
        .agents;
    if ctx.json {
        let out: Vec<_> = agents
            .iter()
            .map(|a| {
                let agent = a.agent.clone().unwrap_or_default();
                let steps = agent.steps.clone().unwrap_or_default();
                serde_json::json!({
                    "name": agent.name, "up": a.up, "slots": agent.slots,
                    "registrySlots": agent.registry_slots,
                    "labels": agent.labels, "running": a.running,
                    "cacheBytes": a.cache_bytes, "cachedItems": a.cached_items,
                    "lastHeartbeatMsAgo": a.last_heartbeat_ms_ago,
                    "buildSteps": steps.available,
                    "buildStepsUnavailable": steps.unavailable_reason,
                    "buildStepNetwork": steps.available && !steps.network_refused,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<16} {:<5} {:>5} {:>7} {:>12} {:>6}  {:<14}  build steps",
        "name", "up", "slots", "running", "cache bytes", "items", "last heartbeat"
    );
    for a in &agents {
        let agent = a.agent.clone().unwrap_or_default();
        let steps = agent.steps.clone().unwrap_or_default();
        println!(
            "{:<16} {:<5} {:>5} {:>7} {:>12} {:>6}  {:<14}  {}",
            agent.name,
            a.up,
            agent.slots,
            a.running,
            a.cache_bytes,
            a.cached_items,
            if a.last_heartbeat_ms_ago < 0 {
                "-".to_string()
            } else {
                format!("{} ms ago", a.last_heartbeat_ms_ago)
            },
            if steps.available && steps.network_refused {
                "yes, offline only (--no-step-network)".to_string()
            } else if steps.available {
                "yes".to_string()
            } else {
                format!("no: {}", steps.unavailable_reason)
            }
        );
    }
    Ok(())
}
