//! `patchfarm campaign …`: a quarter's rebuild of a fleet from one YAML file. `plan` validates the
//! file (every problem at once) and shows its jobs; `submit` records the campaign and all its jobs
//! in one raft entry (dependencies between them by request id); `list`, `status`, `watch`,
//! `cancel` follow it; `report` writes report.json and report.md.

use super::{plan, report, CampaignFile, Plan};
use crate::farm::FarmArgs;
use crate::Context;
use anyhow::{bail, Context as _};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use patchfarm_client::new_request_id;
use patchfarm_engine::image::ImageRef;
use patchfarm_engine::transport::{Registries, RegistryOptions};
use patchfarm_proto::v1::*;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Subcommand, Debug)]
pub enum CampaignCommand {
    /// Validate a campaign file and print the jobs it becomes and what happens to each domain.
    Plan { file: PathBuf },
    /// Submit a campaign (resubmitting the same file changes nothing); --wait watches it.
    Submit { file: PathBuf },
    /// Campaigns the farm knows.
    List,
    /// Every job of a campaign and its state.
    Status { name: String },
    /// Progress bars per stage until the campaign ends (non-zero exit if a job failed).
    Watch { name: String },
    /// Cancel every job of the campaign that has not ended.
    Cancel { name: String },
    /// Print a bash script that rolls the finished campaign's Domains out wave by wave, waiting
    /// for the operator to report each wave rolled before the next.
    #[command(name = "rollout-plan")]
    RolloutPlan { name: String },
    /// Write report.json and report.md (old and new image per domain, Domain patches).
    Report {
        name: String,
        /// Directory for report.md and report.json.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Also write, for git-driven rollouts, each Domain's kustomize patch (and, for domains
        /// read with domainsFrom, its manifest with only the image changed) under this directory.
        #[arg(long = "gitops-out", value_name = "DIR")]
        gitops_out: Option<PathBuf>,
    },
}

async fn read_plan(file: &PathBuf) -> anyhow::Result<(String, Plan)> {
    let text = tokio::fs::read_to_string(file)
        .await
        .with_context(|| format!("reading campaign file {}", file.display()))?;
    let (campaign, read_more) = CampaignFile::load(file, &text)?;
    for skipped in &campaign.skipped {
        eprintln!(
            "left alone: {}/{}: {}",
            skipped.namespace, skipped.name, skipped.reason
        );
    }
    // Stored with the farm as read, every domain in it: the domainsFrom files stay here.
    let text = if read_more {
        serde_norway::to_string(&campaign).context("writing the campaign with its domains")?
    } else {
        text
    };
    Ok((text, plan(&campaign)?))
}

fn print_plan(plan: &Plan) {
    println!(
        "campaign {}: {} jobs, {} domains, registries {}",
        plan.campaign,
        plan.jobs.len(),
        plan.domains.len(),
        plan.registries.join(", ")
    );
    for job in &plan.jobs {
        let after = if job.after.is_empty() {
            String::new()
        } else {
            format!(" (after {})", job.after.join(", "))
        };
        println!("  {:<36} {:<7} -> {}{after}", job.key, job.kind, job.pushes);
    }
    for domain in &plan.domains {
        println!(
            "  domain {}/{} ({:?}): {}; new image from {}",
            domain.namespace,
            domain.name,
            domain.domain_home_source_type,
            domain.action,
            domain.image_from
        );
    }
}

/// The campaign's record and its plan.
async fn campaign(farm: &FarmArgs, name: &str) -> anyhow::Result<(Campaign, Plan)> {
    let campaigns = farm
        .client()?
        .call(|mut c| async move { c.list_campaigns(ListCampaignsRequest {}).await })
        .await?
        .campaigns;
    let Some(found) = campaigns.into_iter().find(|c| c.name == name) else {
        bail!("the farm has no campaign {name:?} (see `patchfarm campaign list`)");
    };
    let text = found.file.clone();
    let file = CampaignFile::parse(name, &text)?;
    Ok((found, plan(&file)?))
}

async fn jobs_of(farm: &FarmArgs, name: &str) -> anyhow::Result<Vec<Job>> {
    let request = ListJobsRequest {
        campaign: name.to_string(),
        ..Default::default()
    };
    Ok(farm
        .client()?
        .call(|mut c| {
            let request = request.clone();
            async move { c.list_jobs(request).await }
        })
        .await?
        .jobs)
}

fn stage(key: &str) -> &'static str {
    if key.starts_with("base/") {
        "bases"
    } else if key.starts_with("domain/") {
        "domains"
    } else {
        "copies"
    }
}

async fn submit(ctx: &Context, farm: &FarmArgs, file: &PathBuf) -> anyhow::Result<()> {
    let (text, plan) = read_plan(file).await?;
    let parsed = CampaignFile::parse("", &text)?;
    let submitter = farm
        .submitter
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let client = farm.client()?;
    // The patch catalog and any other file travel through the artifact store: uploaded once,
    // named by content, so resubmitting the same file still yields the same jobs.
    let mut uploads = crate::uploads::InputUploads::new(&client);
    let mut typed = Vec::with_capacity(plan.jobs.len());
    for job in &plan.jobs {
        let mut confined = job.job.clone();
        uploads
            .confine(&mut confined)
            .await
            .with_context(|| format!("campaign job {}", job.key))?;
        typed.push(confined);
    }
    let jobs = plan
        .jobs
        .iter()
        .zip(&typed)
        .map(|(job, confined)| SubmitJobRequest {
            request_id: report::request_id(&plan.campaign, &job.key),
            spec: Some(JobSpec {
                submitter: submitter.clone(),
                campaign: plan.campaign.clone(),
                max_attempts: parsed.limits.retries.max(1),
                campaign_parallel: parsed.limits.max_parallel_jobs,
                compression: patchfarm_jobs::compression_field(parsed.compression),
                // The bases' own images must be signed; what the farm builds on them is its own.
                base_signed_by: if job.key.starts_with("base/") {
                    parsed.base_keys.clone()
                } else {
                    Vec::new()
                },
                after: job
                    .after
                    .iter()
                    .map(|k| report::request_id(&plan.campaign, k))
                    .collect(),
                ..confined.to_spec()
            }),
        })
        .collect();
    let request = SubmitCampaignRequest {
        request_id: format!("campaign/{}", plan.campaign),
        campaign: Some(Campaign {
            name: plan.campaign.clone(),
            file: text,
            plan_json: serde_json::to_string(&plan)?,
            ..Default::default()
        }),
        jobs,
    };
    let done = client
        .call(|mut c| {
            let request = request.clone();
            async move { c.submit_campaign(request).await }
        })
        .await
        .with_context(|| format!("submitting campaign {}", plan.campaign))?;
    if ctx.json {
        let ids: Vec<_> = done.jobs.iter().map(|j| j.id.clone()).collect();
        println!(
            "{}",
            serde_json::json!({"campaign": plan.campaign, "jobs": ids})
        );
    } else {
        println!("campaign {}: {} jobs", plan.campaign, done.jobs.len());
    }
    if farm.wait {
        return watch(farm, &plan.campaign).await;
    }
    Ok(())
}

async fn watch(farm: &FarmArgs, name: &str) -> anyhow::Result<()> {
    let (_, plan) = campaign(farm, name).await?;
    let bars = MultiProgress::new();
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
        .expect("template")
        .progress_chars("=> ");
    // Without a terminal the bars draw nothing: each stage's change is a plain line instead.
    let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut said: std::collections::HashMap<&str, String> = Default::default();
    let mut stages = Vec::new();
    for name in ["bases", "domains", "copies"] {
        let total = plan.jobs.iter().filter(|j| stage(&j.key) == name).count();
        let bar = bars.add(ProgressBar::new(total as u64));
        bar.set_style(style.clone());
        bar.set_prefix(name);
        stages.push((name, bar));
    }
    loop {
        let jobs = jobs_of(farm, name).await?;
        let key_of = |j: &Job| {
            j.request_id
                .strip_prefix(&format!("campaign/{name}/"))
                .unwrap_or("")
                .to_string()
        };
        for (stage_name, bar) in &stages {
            let mine: Vec<&Job> = jobs
                .iter()
                .filter(|j| stage(&key_of(j)) == *stage_name)
                .collect();
            bar.set_position(mine.iter().filter(|j| j.ended()).count() as u64);
            let running = mine
                .iter()
                .filter(|j| j.state() == JobState::Leased)
                .count();
            let failed = mine
                .iter()
                .filter(|j| matches!(j.state(), JobState::Failed | JobState::Cancelled))
                .count();
            bar.set_message(format!("{running} running, {failed} failed"));
            let line = format!(
                "campaign {name} {stage_name}: {}/{} ended, {running} running, {failed} failed",
                bar.position(),
                bar.length().unwrap_or(0)
            );
            if plain && said.get(stage_name) != Some(&line) {
                eprintln!("{line}");
                said.insert(stage_name, line);
            }
        }
        if !jobs.is_empty() && jobs.iter().all(Job::ended) {
            for (_, bar) in &stages {
                bar.finish();
            }
            let failed: Vec<&Job> = jobs
                .iter()
                .filter(|j| j.state() != JobState::Succeeded)
                .collect();
            eprintln!(
                "campaign {name}: {} jobs, {} did not succeed",
                jobs.len(),
                failed.len()
            );
            if let Some(first) = failed.first() {
                bail!(
                    "campaign {name}: {} job(s) did not succeed; first: {} ({}): {}",
                    failed.len(),
                    first.id,
                    key_of(first),
                    first.error
                );
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Adds `sizeBytes` (config + layers, as a pull sees it) to every domain's new image.
async fn add_sizes(report: &mut serde_json::Value, registry: RegistryOptions) {
    let registries = Registries::new(registry);
    let Some(domains) = report["domains"].as_array_mut() else {
        return;
    };
    for domain in domains {
        let Some(Ok(ImageRef::Registry(image))) =
            domain["newImage"].as_str().map(|i| i.parse::<ImageRef>())
        else {
            continue;
        };
        let client = registries.client(&image.registry).await;
        let Ok((bytes, _)) = client.get_manifest(&image).await else {
            continue;
        };
        let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let layers: u64 = manifest["layers"]
            .as_array()
            .map(|l| l.iter().filter_map(|d| d["size"].as_u64()).sum())
            .unwrap_or(0);
        domain["sizeBytes"] = (layers + manifest["config"]["size"].as_u64().unwrap_or(0)).into();
    }
}

pub async fn run(
    ctx: &Context,
    farm: &FarmArgs,
    registry: RegistryOptions,
    command: &CampaignCommand,
) -> anyhow::Result<()> {
    match command {
        CampaignCommand::Plan { file } => {
            let (_, plan) = read_plan(file).await?;
            if ctx.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print_plan(&plan);
            }
            Ok(())
        }
        CampaignCommand::Submit { file } => submit(ctx, farm, file).await,
        CampaignCommand::Watch { name } => watch(farm, name).await,
        CampaignCommand::List => {
            let campaigns = farm
                .client()?
                .call(|mut c| async move { c.list_campaigns(ListCampaignsRequest {}).await })
                .await?
                .campaigns;
            for c in campaigns {
                let jobs = jobs_of(farm, &c.name).await?;
                let done = jobs.iter().filter(|j| j.ended()).count();
                let failed = jobs
                    .iter()
                    .filter(|j| matches!(j.state(), JobState::Failed | JobState::Cancelled))
                    .count();
                println!(
                    "{:<24} {done}/{} jobs ended, {failed} failed or cancelled",
                    c.name,
                    jobs.len()
                );
            }
            Ok(())
        }
        CampaignCommand::Status { name } => {
            campaign(farm, name).await?;
            let jobs = jobs_of(farm, name).await?;
            if ctx.json {
                let out: Vec<_> = jobs.iter().map(crate::farm::job_json).collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            for job in &jobs {
                println!(
                    "{}  {:<10} {:<40} {}",
                    job.id,
                    job.state().as_str_name().to_lowercase(),
                    job.request_id
                        .trim_start_matches(&format!("campaign/{name}/")),
                    job.digests
                        .first()
                        .map(String::as_str)
                        .unwrap_or(&job.error)
                );
            }
            Ok(())
        }
        CampaignCommand::Cancel { name } => {
            let client = farm.client()?;
            let mut cancelled = 0;
            // Last stage first, so no job is cancelled for its dependency before the campaign's
            // own reason reaches it.
            for job in jobs_of(farm, name)
                .await?
                .iter()
                .rev()
                .filter(|j| !j.ended())
            {
                let request = CancelJobRequest {
                    request_id: new_request_id(),
                    id: job.id.clone(),
                    reason: format!("campaign {name} cancelled"),
                };
                if client
                    .call(|mut c| {
                        let request = request.clone();
                        async move { c.cancel_job(request).await }
                    })
                    .await
                    .is_ok()
                {
                    cancelled += 1;
                }
            }
            println!("campaign {name}: {cancelled} job(s) cancelled");
            Ok(())
        }
        CampaignCommand::RolloutPlan { name } => {
            let (_, plan) = campaign(farm, name).await?;
            let jobs = jobs_of(farm, name).await?;
            let value = report::build(&plan, &jobs)?;
            print!("{}", super::waves::script(&value));
            Ok(())
        }
        CampaignCommand::Report {
            name,
            out,
            gitops_out,
        } => {
            let (record, plan) = campaign(farm, name).await?;
            let jobs = jobs_of(farm, name).await?;
            let mut value = report::build(&plan, &jobs)?;
            add_sizes(&mut value, registry).await;
            tokio::fs::create_dir_all(out)
                .await
                .with_context(|| format!("creating --out {}", out.display()))?;
            let json_path = out.join("report.json");
            let md_path = out.join("report.md");
            tokio::fs::write(&json_path, serde_json::to_vec_pretty(&value)?)
                .await
                .with_context(|| format!("writing {}", json_path.display()))?;
            tokio::fs::write(&md_path, report::markdown(&value))
                .await
                .with_context(|| format!("writing {}", md_path.display()))?;
            println!("{}\n{}", json_path.display(), md_path.display());
            if let Some(dir) = gitops_out {
                let file = CampaignFile::parse(name, &record.file)?;
                let files = super::gitops::files(&file, &value)
                    .map_err(|e| anyhow::anyhow!("--gitops-out: {e}"))?;
                for (path, text) in files {
                    let at = dir.join(&path);
                    if let Some(parent) = at.parent() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .with_context(|| format!("creating {}", parent.display()))?;
                    }
                    tokio::fs::write(&at, text)
                        .await
                        .with_context(|| format!("writing {}", at.display()))?;
                }
                println!("{}", dir.display());
            }
            Ok(())
        }
    }
}
