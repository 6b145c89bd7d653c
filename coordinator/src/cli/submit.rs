//! The build verbs through the farm: with `--farm`, `create`, `update`, `rebase` and
//! `createAuxImage` become a job carrying the verb and its arguments as typed; `--wait` follows
//! it to the end with a spinner and prints what it pushed (non-zero exit if it failed).

use super::farm::{job_json, FarmArgs};
use super::Context;
use crate::api::new_request_id;
use anyhow::{bail, Context as _};
use patchfarm_proto::v1::*;
use std::time::Duration;

/// What a verb contributes to its job: its kind and the cache keys it reads.
pub struct Inputs {
    kind: &'static str,
    keys: Vec<String>,
    dry_run: bool,
}

impl Inputs {
    pub fn new(kind: &'static str, keys: Vec<String>, dry_run: bool) -> Self {
        Inputs {
            kind,
            keys,
            dry_run,
        }
    }
}

/// Flags that steer the submission, not the build: dropped from the job's arguments.
const FARM_FLAGS: &[(&str, bool)] = &[
    ("--farm", true),
    ("--tls-dir", true),
    ("--insecure", false),
    ("--wait", false),
    ("--max-attempts", true),
    ("--submitter", true),
    ("--constraint", true),
    ("--json", false),
    ("--verbose", false),
];

/// The verb's arguments as typed after it, without the farm's own flags.
pub fn verb_args(argv: &[String], verbs: &[&str]) -> Vec<String> {
    let Some(start) = argv
        .iter()
        .skip(1)
        .position(|a| verbs.contains(&a.as_str()))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = argv[start + 2..].iter();
    while let Some(arg) = rest.next() {
        let (name, inline_value) = match arg.split_once('=') {
            Some((n, _)) => (n, true),
            None => (arg.as_str(), false),
        };
        if let Some((_, takes_value)) = FARM_FLAGS.iter().find(|(f, _)| *f == name) {
            if *takes_value && !inline_value {
                rest.next();
            }
            continue;
        }
        if arg.len() > 1 && arg.starts_with('-') && arg[1..].bytes().all(|b| b == b'v') {
            continue; // -v, -vv
        }
        out.push(arg.clone());
    }
    out
}

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

pub async fn run(ctx: &Context, farm: &FarmArgs, inputs: Inputs) -> anyhow::Result<()> {
    if inputs.dry_run {
        bail!("--dryRun plans on this machine: drop --farm (and PATCHFARM_FARM) to see the plan");
    }
    let argv: Vec<String> = std::env::args().collect();
    let verbs: &[&str] = match inputs.kind {
        "createAuxImage" => &["createAuxImage", "create-aux-image"],
        other => &[other],
    };
    let spec = JobSpec {
        kind: inputs.kind.to_string(),
        args: verb_args(&argv, verbs),
        submitter: farm
            .submitter
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default(),
        constraints: parse_constraints(&farm.constraints)?,
        max_attempts: farm.max_attempts.unwrap_or(0),
        inputs: inputs.keys,
        ..Default::default()
    };
    let client = farm.client()?;
    let request = SubmitJobRequest {
        request_id: new_request_id(),
        spec: Some(spec),
    };
    let job = client
        .call(|mut c| {
            let request = request.clone();
            async move { c.submit_job(request).await }
        })
        .await
        .with_context(|| format!("submitting the {} job", inputs.kind))?;
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
pub async fn follow(client: &crate::client::FarmClient, id: &str) -> anyhow::Result<Job> {
    let bar = super::progress::step(&format!("following {id}"));
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
            bar.set_message(format!(
                "{} {} on {agent}: {}",
                job.id,
                job.state().as_str_name().to_lowercase(),
                job.progress
            ));
            if crate::state::ended(&job) {
                bar.finish_and_clear();
                return Ok(job);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::verb_args;

    #[test]
    fn farm_flags_are_dropped_from_the_job_arguments() {
        let argv: Vec<String> = [
            "patchfarm",
            "--farm",
            "a:1",
            "create",
            "--tag",
            "r/x:1",
            "--wait",
            "--farm=b:2",
            "--tls-dir",
            "/t",
            "-vv",
            "--fromImage",
            "r/base:1",
            "--max-attempts",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            verb_args(&argv, &["create"]),
            ["--tag", "r/x:1", "--fromImage", "r/base:1"]
        );
    }
}
