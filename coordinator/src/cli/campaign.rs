//! `patchfarm campaign …`: a quarter's rebuild of a fleet from one YAML file. `plan` validates
//! the file (every problem at once) and shows the DAG of jobs it becomes.

use super::Context;
use crate::campaign::{plan, CampaignFile};
use anyhow::Context as _;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum CampaignCommand {
    /// Validate a campaign file and print the jobs it becomes (bases, rebases, copies) and what
    /// happens to each domain.
    Plan { file: PathBuf },
}

pub async fn run(ctx: &Context, command: &CampaignCommand) -> anyhow::Result<()> {
    let CampaignCommand::Plan { file } = command;
    let text = tokio::fs::read_to_string(file)
        .await
        .with_context(|| format!("reading campaign file {}", file.display()))?;
    let campaign = CampaignFile::parse(&file.display().to_string(), &text)?;
    let plan = plan(&campaign);
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
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
    Ok(())
}
