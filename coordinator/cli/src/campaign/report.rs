//! A finished campaign's report: per domain the old and new image (by digest), what was done, and
//! the patch for the operator's `weblogic.oracle/v9` Domain resource; as JSON for tools and
//! Markdown for the person rolling the fleet.

use super::file::SourceType;
use super::plan::Plan;
use patchfarm_proto::v1::{Job, JobState};
use serde_json::{json, Value};
use std::collections::HashMap;

pub use patchfarm_jobs::campaign::{by_digest, domain_json_patch, domain_patch, request_id};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("campaign {campaign} is not finished: {open} job(s) still queued or running")]
    Running { campaign: String, open: usize },
    #[error("campaign {campaign}: job {key} has no record in the farm")]
    MissingJob { campaign: String, key: String },
}

fn registry_of(image: &str) -> &str {
    image.split('/').next().unwrap_or(image)
}

/// Builds `report.json`'s value from the plan and the campaign's jobs (by request id).
pub fn build(plan: &Plan, jobs: &[Job]) -> Result<Value, ReportError> {
    let by_request: HashMap<&str, &Job> = jobs.iter().map(|j| (j.request_id.as_str(), j)).collect();
    let job = |key: &str| {
        by_request
            .get(request_id(&plan.campaign, key).as_str())
            .copied()
            .ok_or_else(|| ReportError::MissingJob {
                campaign: plan.campaign.clone(),
                key: key.to_string(),
            })
    };
    let open = jobs.iter().filter(|j| !j.ended()).count();
    if open > 0 {
        return Err(ReportError::Running {
            campaign: plan.campaign.clone(),
            open,
        });
    }
    let mut images = Vec::new();
    for planned in &plan.jobs {
        let j = job(&planned.key)?;
        let pushed = j.outcome.as_ref().and_then(|o| o.pushed.first());
        let attached = |field: fn(&patchfarm_proto::v1::PushedImage) -> &String| {
            pushed.map(field).filter(|s| !s.is_empty()).cloned()
        };
        images.push(json!({
            "signature": attached(|p| &p.signature),
            "sbom": attached(|p| &p.sbom),
            "provenance": attached(|p| &p.provenance),
            "referrers": attached(|p| &p.referrers),
            "key": planned.key,
            "kind": planned.kind,
            "state": j.state().as_str_name().to_lowercase(),
            "image": j.digests.first().map(|d| by_digest(d)),
            "attempts": j.attempts,
            "seconds": (j.updated_unix_ms - j.submitted_unix_ms) as f64 / 1000.0,
            "error": j.error,
        }));
    }
    let mut domains = Vec::new();
    for domain in &plan.domains {
        let source = job(&domain.image_from)?;
        // Named once it is where the domain pulls from (a mirror's copy, or the build itself).
        let pulled = job(&domain.pulled_from)?;
        let new_image = (pulled.state() == JobState::Succeeded)
            .then(|| pulled.digests.first().map(|d| by_digest(d)))
            .flatten();
        let mut aux_updates = Vec::new();
        let mut aux_ready = Vec::new();
        let mut aux_failed = false;
        for refresh in &domain.auxiliary_refresh {
            let aux_job = job(&refresh.pulled_from)?;
            let new = (aux_job.state() == JobState::Succeeded)
                .then(|| aux_job.digests.first().map(|d| by_digest(d)))
                .flatten();
            aux_failed |= aux_job.state() != JobState::Succeeded;
            aux_updates.push(
                json!({"index": refresh.index, "oldImage": refresh.old_image, "newImage": new}),
            );
            if let Some(new) = new {
                aux_ready.push((refresh.index, refresh.old_image.clone(), new));
            }
        }
        // What the domain's new image holds: its rebase's target, or the base itself.
        let patches: Vec<String> = source
            .outcome
            .as_ref()
            .map(|o| o.image_patches.clone())
            .unwrap_or_default();
        let mut entry = json!({
            "name": domain.name,
            "namespace": domain.namespace,
            "domainResource": domain.domain_resource,
            "domainHomeSourceType": domain.domain_home_source_type,
            "oldImage": domain.old_image,
            "newImage": new_image,
            "action": domain.action,
            "patches": patches,
            "auxiliaryImages": domain.auxiliary_images,
            "state": if aux_failed { "failed".to_string() } else { source.state().as_str_name().to_lowercase() },
            "seconds": (source.updated_unix_ms - source.submitted_unix_ms) as f64 / 1000.0,
        });
        if !domain.auxiliary_refresh.is_empty() {
            entry["auxiliaryImageUpdates"] = json!(aux_updates);
        }
        if !domain.image_pull_secrets.is_empty() {
            entry["imagePullSecrets"] = json!(domain.image_pull_secrets);
        }
        if let Some(version) = &domain.restart_version {
            // Left as it is: the new image (by digest) is what rolls the servers.
            entry["restartVersion"] = json!(version);
        }
        if !domain.labels.is_empty() {
            entry["labels"] = json!(domain.labels);
        }
        match &new_image {
            // A domain moves only once everything it will run is pushed where it pulls from.
            Some(image) if aux_ready.len() == domain.auxiliary_refresh.len() => {
                let patch = if aux_ready.is_empty() {
                    domain_patch(image)
                } else {
                    domain_json_patch(image, &aux_ready)
                };
                match super::domain_check::apply(&super::domain_check::known(domain), &patch) {
                    Ok(_) => {
                        entry["kubectl"] = json!(format!(
                            "kubectl patch domain {} -n {} --type {} -p '{}'",
                            domain.domain_resource,
                            domain.namespace,
                            patch["type"].as_str().unwrap_or("merge"),
                            patch["patch"]
                        ));
                        entry["domainPatch"] = patch;
                    }
                    // Never handed out as a patch to run: the Domain would not take it.
                    Err(problems) => entry["invalid"] = json!(problems),
                }
            }
            _ => {}
        }
        if domain.domain_home_source_type == SourceType::DomainInImage {
            entry["note"] = json!("rolling restart is safe: the rebase keeps the domain home, including security/SerializedSystemIni.dat, byte for byte, so the domain secret still decrypts");
        }
        domains.push(entry);
    }
    let pull_secrets: Vec<Value> = plan
        .registries
        .iter()
        .map(|r| {
            let host = registry_of(r);
            json!({
                "registry": host,
                "imagePullSecret": format!("{}-pull", host.replace([':', '.'], "-")),
                "create": format!("kubectl create secret docker-registry {}-pull --docker-server={host} --docker-username=USER --docker-password=PASSWORD -n NAMESPACE", host.replace([':', '.'], "-")),
            })
        })
        .collect();
    let failed = jobs
        .iter()
        .filter(|j| j.state() != JobState::Succeeded)
        .count();
    let waves = super::waves::report_waves(plan.rollout.as_ref(), &domains);
    Ok(json!({
        "campaign": plan.campaign,
        "registries": plan.registries,
        "succeeded": failed == 0,
        "jobs": images,
        "waves": waves,
        "domains": domains,
        "skipped": plan.skipped,
        "imagePullSecrets": pull_secrets,
    }))
}

/// The Markdown version: what changed, and how to roll it out and watch it finish.
pub fn markdown(report: &Value) -> String {
    let mut md = format!(
        "# Campaign {}\n\nRegistries: {}. {}\n\n## Domains\n\n| domain | namespace | source type | old image | new image | patches |\n|---|---|---|---|---|---|\n",
        report["campaign"].as_str().unwrap_or(""),
        report["registries"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        if report["succeeded"] == true { "Every job succeeded." } else { "**Some jobs did not succeed: see the jobs table.**" }
    );
    let domains = report["domains"].as_array().cloned().unwrap_or_default();
    for d in &domains {
        let patches: Vec<&str> = d["patches"]
            .as_array()
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        md.push_str(&format!(
            "| {} | {} | {} | `{}` | `{}` | {} |\n",
            d["name"].as_str().unwrap_or(""),
            d["namespace"].as_str().unwrap_or(""),
            d["domainHomeSourceType"].as_str().unwrap_or(""),
            d["oldImage"].as_str().unwrap_or(""),
            d["newImage"].as_str().unwrap_or("(not built)"),
            if patches.is_empty() {
                "none".to_string()
            } else {
                patches.join(", ")
            }
        ));
    }
    let aux: Vec<String> = domains
        .iter()
        .flat_map(|d| {
            d["auxiliaryImageUpdates"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |u| {
                    format!(
                        "- {}/{} auxiliaryImages[{}]: `{}` → `{}`\n",
                        d["namespace"].as_str().unwrap_or(""),
                        d["name"].as_str().unwrap_or(""),
                        u["index"],
                        u["oldImage"].as_str().unwrap_or(""),
                        u["newImage"].as_str().unwrap_or("(not built)")
                    )
                })
        })
        .collect();
    if !aux.is_empty() {
        md.push_str("\n## Auxiliary images\n\nRebuilt with the campaign's WDT release, models unchanged; each patch checks (`test`) that the Domain still names the old image before replacing it:\n\n");
        md.push_str(&aux.concat());
    }
    let invalid: Vec<String> = domains
        .iter()
        .filter_map(|d| {
            let problems: Vec<&str> = d["invalid"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            Some(format!(
                "- {}/{}: {}\n",
                d["namespace"].as_str().unwrap_or(""),
                d["name"].as_str().unwrap_or(""),
                problems.join("; ")
            ))
        })
        .collect();
    if !invalid.is_empty() {
        md.push_str("\n## Not patched\n\nThe patched Domain would not be valid against the operator's v9 schema, so no patch is given:\n\n");
        md.push_str(&invalid.concat());
    }
    let skipped = report["skipped"].as_array().cloned().unwrap_or_default();
    if !skipped.is_empty() {
        md.push_str("\n## Left alone\n\nDomain resources the campaign could not handle:\n\n");
        for d in &skipped {
            md.push_str(&format!(
                "- {}/{}: {}\n",
                d["namespace"].as_str().unwrap_or(""),
                d["name"].as_str().unwrap_or(""),
                d["reason"].as_str().unwrap_or("")
            ));
        }
    }
    md.push_str("\n## Rolling out\n\nEach patch changes `spec.image` (by digest), which makes the operator roll the domain's servers once. Wave by wave: start a wave only when every Domain of the one before has rolled (below); `patchfarm campaign rollout-plan NAME` prints this as a script that waits for it.\n");
    let waves = report["waves"].as_array().cloned().unwrap_or_default();
    for (n, wave) in waves.iter().enumerate() {
        md.push_str(&format!(
            "\n### Wave {}: {}\n\n```sh\n",
            n + 1,
            wave["name"].as_str().unwrap_or("")
        ));
        for member in wave["domains"].as_array().into_iter().flatten() {
            let found = domains.iter().find(|d| {
                Some(format!(
                    "{}/{}",
                    d["namespace"].as_str().unwrap_or(""),
                    d["name"].as_str().unwrap_or("")
                ))
                .as_deref()
                    == member.as_str()
            });
            if let Some(cmd) = found.and_then(|d| d["kubectl"].as_str()) {
                md.push_str(cmd);
                md.push('\n');
            }
        }
        md.push_str("```\n");
        if n + 1 < waves.len() {
            md.push_str("\nGate before the next wave: each of these Domains has `status.observedGeneration == metadata.generation` and condition `Completed` `True`.\n");
        }
    }
    md.push('\n');
    for d in domains.iter().filter(|d| d["note"].is_string()) {
        md.push_str(&format!(
            "- {}: {}\n",
            d["name"].as_str().unwrap_or(""),
            d["note"].as_str().unwrap_or("")
        ));
    }
    md.push_str("\n## Watching the roll finish\n\nA domain is done when the operator has seen the change and every server runs the new image: `status.observedGeneration` equals `metadata.generation` and the `Completed` condition is `True`.\n\n```sh\n");
    for d in &domains {
        md.push_str(&format!(
            "kubectl get domain {} -n {} -o jsonpath='{{.metadata.generation}} {{.status.observedGeneration}} {{.status.conditions[?(@.type==\"Completed\")].status}}{{\"\\n\"}}'\n",
            d["domainResource"].as_str().unwrap_or(""),
            d["namespace"].as_str().unwrap_or("")
        ));
    }
    md.push_str("```\n\n## Image pull secrets\n\nEvery namespace whose domains pull from these registries needs a secret listed in the Domain's `spec.imagePullSecrets`:\n\n");
    for s in report["imagePullSecrets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        md.push_str(&format!(
            "- `{}`: `{}`\n",
            s["registry"].as_str().unwrap_or(""),
            s["create"].as_str().unwrap_or("")
        ));
    }
    md
}
