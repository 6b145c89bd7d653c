//! Domains read from the cluster's own resources: a campaign's `domainsFrom` names files holding
//! what `kubectl get domains -A -o yaml` prints (a `v1` List of `weblogic.oracle/v9` or `v8`
//! Domain objects), each with the base its domains run on and, optionally, the namespaces and
//! an equality label selector that pick them. A Domain the campaign cannot handle (no image, an
//! unknown source type) is set aside with the reason; the rest go on.

use super::file::{Domain, SkippedDomain};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// One `domainsFrom` entry.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainsFrom {
    /// The file, relative to the campaign file.
    pub file: String,
    /// The campaign base these domains run on.
    pub base: String,
    /// Only Domains in these namespaces (all when empty).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// `KEY=VALUE[,KEY=VALUE…]`: only Domains whose labels hold every pair.
    #[serde(default)]
    pub selector: Option<String>,
}

/// The operator's `spec.domainHomeSourceType` with its defaulting rule: `Image` unless
/// `spec.configuration.model` is set, then `FromModel`.
fn source_type(spec: &Value) -> String {
    match spec["domainHomeSourceType"].as_str() {
        Some(given) => given.to_string(),
        None if spec["configuration"]["model"].is_object() => "FromModel".into(),
        None => "Image".into(),
    }
}

fn selected(labels: &Value, selector: Option<&str>) -> Result<bool, String> {
    let Some(selector) = selector.filter(|s| !s.trim().is_empty()) else {
        return Ok(true);
    };
    for pair in selector.split(',') {
        let (key, value) = pair
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim().trim_start_matches('=')))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("selector {selector:?}: expected KEY=VALUE[,KEY=VALUE…]"))?;
        if labels[key].as_str() != Some(value) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The Domains `from` picks out of `text` (read from `shown`): campaign domains, and the ones set
/// aside with why.
pub fn read(
    from: &DomainsFrom,
    shown: &str,
    text: &str,
) -> Result<(Vec<Domain>, Vec<SkippedDomain>), String> {
    let list: Value = serde_norway::from_str(text)
        .map_err(|e| format!("{shown}: not what `kubectl get domains -o yaml` prints: {e}"))?;
    let items: Vec<&Value> = match list["kind"].as_str() {
        Some("List") | Some("DomainList") => {
            list["items"].as_array().into_iter().flatten().collect()
        }
        Some("Domain") => vec![&list],
        other => {
            return Err(format!(
                "{shown}: kind {other:?}: expected a List of Domains (or one Domain)"
            ))
        }
    };
    let (mut domains, mut skipped) = (Vec::new(), Vec::new());
    for (i, item) in items.into_iter().enumerate() {
        let api = item["apiVersion"].as_str().unwrap_or_default();
        if item["kind"].as_str() != Some("Domain") || !api.starts_with("weblogic.oracle/") {
            return Err(format!(
                "{shown}: items[{i}] is a {} {api}, not a weblogic.oracle Domain",
                item["kind"].as_str().unwrap_or("nameless kind")
            ));
        }
        let metadata = &item["metadata"];
        let name = metadata["name"].as_str().unwrap_or_default().to_string();
        let namespace = metadata["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        if !from.namespaces.is_empty() && !from.namespaces.contains(&namespace) {
            continue;
        }
        if !selected(&metadata["labels"], from.selector.as_deref())? {
            continue;
        }
        let spec = &item["spec"];
        let skip = |reason: String| SkippedDomain {
            namespace: namespace.clone(),
            name: name.clone(),
            reason,
        };
        let kind = source_type(spec);
        if ![
            "Image",
            "FromModel",
            "PersistentVolume",
            "DomainInImage",
            "ModelInImage",
            "DomainInPV",
        ]
        .contains(&kind.as_str())
        {
            skipped.push(skip(format!(
                "spec.domainHomeSourceType {kind:?} is none the operator knows"
            )));
            continue;
        }
        let Some(image) = spec["image"].as_str().filter(|i| !i.is_empty()) else {
            skipped.push(skip(
                "spec.image is not set: there is no image to move onto the new base".into(),
            ));
            continue;
        };
        // By position: a Domain patch replaces auxiliaryImages[N].image.
        let auxiliary_images: Option<Vec<String>> = spec["configuration"]["model"]
            ["auxiliaryImages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|aux| aux["image"].as_str().map(str::to_owned))
            .collect();
        let Some(auxiliary_images) = auxiliary_images else {
            skipped.push(skip(
                "an entry of spec.configuration.model.auxiliaryImages names no image".into(),
            ));
            continue;
        };
        let strings = |value: &Value| -> std::collections::BTreeMap<String, String> {
            value
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        };
        domains.push(Domain {
            // Campaign names are unique per namespace, as Domain names are.
            name: name.clone(),
            namespace,
            domain_resource: None,
            domain_home_source_type: kind,
            image: image.to_string(),
            base: from.base.clone(),
            auxiliary_images,
            model: None,
            manifest: Some(item.clone()),
            image_pull_secrets: spec["imagePullSecrets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect(),
            restart_version: match &spec["restartVersion"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            },
            labels: strings(&metadata["labels"]),
        });
    }
    Ok((domains, skipped))
}

/// The file `from` names, relative to the campaign file at `campaign`.
pub fn path(campaign: &Path, from: &DomainsFrom) -> std::path::PathBuf {
    campaign
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(&from.file)
}
