//! `campaign report --gitops-out DIR`: what a team that rolls out through git (Argo CD, Flux)
//! commits — per domain a kustomize patch of its Domain's `spec.image`, for a domain read from
//! the cluster's own resources also its whole Domain manifest with only the image changed, and a
//! `kustomization.yaml` naming the patches.

use super::file::CampaignFile;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The files to write under the output directory (relative path, YAML text), in a stable order.
pub fn files(file: &CampaignFile, report: &Value) -> Result<Vec<(PathBuf, String)>, String> {
    let yaml = |value: &Value| serde_norway::to_string(value).map_err(|e| e.to_string());
    let mut out = Vec::new();
    let mut patches = Vec::new();
    for entry in report["domains"].as_array().into_iter().flatten() {
        let (Some(name), Some(namespace), Some(image)) = (
            entry["name"].as_str(),
            entry["namespace"].as_str(),
            entry["newImage"].as_str(),
        ) else {
            continue;
        };
        let Some(domain) = file
            .domains
            .iter()
            .find(|d| d.name == name && d.namespace == namespace)
        else {
            return Err(format!(
                "the report names domain {namespace}/{name}, which the campaign file does not hold"
            ));
        };
        if entry["invalid"].is_array()
            || (entry["auxiliaryImageUpdates"].is_array() && entry["domainPatch"].is_null())
        {
            // The patched Domain would be invalid, or its auxiliary images are not all pushed:
            // the domain does not move.
            continue;
        }
        let resource = domain.resource();
        for part in [namespace, resource] {
            if part.is_empty() || part == "." || part == ".." || part.contains(['/', '\\']) {
                return Err(format!(
                    "domain {namespace}/{resource}: {part:?} cannot name a file under the output directory"
                ));
            }
        }
        let api_version = domain
            .manifest
            .as_ref()
            .and_then(|m| m["apiVersion"].as_str())
            .unwrap_or("weblogic.oracle/v9");
        let patch_path = format!("{namespace}/{resource}.patch.yaml");
        let aux: Vec<(usize, &str)> = entry["auxiliaryImageUpdates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| Some((u["index"].as_u64()? as usize, u["newImage"].as_str()?)))
            .collect();
        if aux.is_empty() {
            let patch = json!({
                "apiVersion": api_version,
                "kind": "Domain",
                "metadata": {"name": resource, "namespace": namespace},
                "spec": {"image": image},
            });
            out.push((PathBuf::from(&patch_path), yaml(&patch)?));
            patches.push(json!({"path": patch_path}));
        } else {
            // Auxiliary images are a list: replaced by index with the report's JSON patch (its
            // `test` ops included), which kustomize applies to the target it names.
            out.push((
                PathBuf::from(&patch_path),
                yaml(&entry["domainPatch"]["patch"])?,
            ));
            let (group, version) = api_version
                .split_once('/')
                .unwrap_or(("weblogic.oracle", "v9"));
            patches.push(json!({
                "path": patch_path,
                "target": {"group": group, "version": version, "kind": "Domain", "name": resource, "namespace": namespace},
            }));
        }
        if let Some(manifest) = &domain.manifest {
            let mut changed = manifest.clone();
            changed["spec"]["image"] = Value::String(image.to_string());
            for (index, new) in &aux {
                let slot = changed
                    .pointer_mut(&format!("/spec/configuration/model/auxiliaryImages/{index}"))
                    .ok_or_else(|| format!("domain {namespace}/{resource}: its manifest has no auxiliaryImages[{index}]"))?;
                slot["image"] = Value::String(new.to_string());
            }
            out.push((
                PathBuf::from(format!("{namespace}/{resource}.yaml")),
                yaml(&changed)?,
            ));
        }
    }
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "patches": patches,
    });
    out.push((PathBuf::from("kustomization.yaml"), yaml(&kustomization)?));
    Ok(out)
}
