//! The build verbs through the farm: with `--farm`, `create`, `update`, `rebase` and
//! `createAuxImage` become a typed job (the same value the verb runs locally); `--wait` follows
//! it to the end with a spinner and prints what it pushed (non-zero exit if it failed).

use super::farm::{job_json, FarmArgs};
use super::Context;
use anyhow::{bail, Context as _};
use patchfarm_client::new_request_id;
use patchfarm_proto::v1::*;
use std::time::Duration;

fn parse_constraints(
    given: &[String],
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    given
        .iter()
        .map(|c| {
            c.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--constraint {c:?}: expected KEY=VALUE"))
        })
        .collect()
}

pub async fn run(
    ctx: &Context,
    farm: &FarmArgs,
    mut job: patchfarm_jobs::Job,
    dry_run: bool,
    base_signed_by: Vec<String>,
    compression: patchfarm_engine::layer::Compression,
) -> anyhow::Result<()> {
    if dry_run {
        bail!("--dryRun plans on this machine: drop --farm (and PATCHFARM_FARM) to see the plan");
    }
    let client = farm.client()?;
    super::uploads::InputUploads::new(&client)
        .confine(&mut job)
        .await?;
    let spec = JobSpec {
        submitter: farm
            .submitter
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default(),
        constraints: parse_constraints(&farm.constraints)?,
        max_attempts: farm.max_attempts.unwrap_or(0),
        base_signed_by,
        compression: patchfarm_jobs::compression_field(compression),
        ..job.to_spec()
    };
    let request = SubmitJobRequest {
        request_id: farm.request_id.clone().unwrap_or_else(new_request_id),
        spec: Some(spec),
    };
    let job = client
        .call(|mut c| {
            let request = request.clone();
            async move { c.submit_job(request).await }
        })
        .await
        .with_context(|| format!("submitting the {} job", job.verb()))?;
    if !farm.wait {
        if ctx.json {
            println!("{}", serde_json::to_string_pretty(&job_json(&job))?);
        } else {
            println!("{}", job.id);
        }
        return Ok(());
    }
    eprintln!("submitted {}", job.id);
    let done = follow(&client, &job.id).await?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&job_json(&done))?);
    }
    match done.state() {
        JobState::Succeeded => {
            if !ctx.json {
                for pushed in &done.digests {
                    println!("{pushed}");
                }
            }
            Ok(())
        }
        state => bail!(
            "{} {} after {} attempt(s): {}",
            done.id,
            state.as_str_name().to_lowercase(),
            done.attempts,
            if done.error.is_empty() {
                "no error recorded"
            } else {
                &done.error
            }
        ),
    }
}

/// Watches the job until it ends, through coordinator failures (the watch is re-opened on
/// whichever node answers).
pub async fn follow(client: &patchfarm_client::FarmClient, id: &str) -> anyhow::Result<Job> {
    let mut status = super::progress::Status::new(&format!("following {id}"));
    loop {
        let request = WatchJobRequest { id: id.to_string() };
        let stream = client
            .call(|mut c| {
                let request = request.clone();
                async move { c.watch_job(request).await }
            })
            .await
            .with_context(|| format!("following {id}"))?;
        let mut stream = stream;
        // Ends when the job does; a broken stream (node gone) is watched again elsewhere.
        while let Ok(Some(job)) = stream.message().await {
            let agent = job.lease.as_ref().map(|l| l.agent.as_str()).unwrap_or("-");
            status.set(format!(
                "{} {} on {agent}: {}",
                job.id,
                job.state().as_str_name().to_lowercase(),
                job.progress
            ));
            if job.ended() {
                status.finish();
                return Ok(job);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
