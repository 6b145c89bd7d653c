//! A campaign's conventions that the CLI (plan, report) and the coordinator (dashboard) share:
//! the request ids of its jobs, images named by digest, and the patches that move a Domain.

use serde_json::{json, Value};

/// The request id a campaign gives its job `key` (stable: a resubmission names the same jobs).
pub fn request_id(campaign: &str, key: &str) -> String {
    format!("campaign/{campaign}/{key}")
}

/// `HOST/REPO:TAG@sha256:…` → `HOST/REPO@sha256:…` (a tag next to a digest is noise in a spec).
pub fn by_digest(pushed: &str) -> String {
    match pushed.split_once('@') {
        Some((reference, digest)) => {
            let repo = match reference.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => repo,
                _ => reference,
            };
            format!("{repo}@{digest}")
        }
        None => pushed.to_string(),
    }
}

/// The patch that moves a Domain to `new_image`: a merge patch of `spec.image` (by digest, so the
/// change itself rolls the servers; no `restartVersion` needed).
pub fn domain_patch(new_image: &str) -> Value {
    json!({"type": "merge", "patch": {"spec": {"image": new_image}}})
}

/// The patch that moves a Domain to `new_image` and replaces auxiliary images by index
/// (`(index, old, new)`): a JSON patch whose `test` ops refuse to apply to a Domain whose
/// auxiliary image changed since the campaign read it.
pub fn domain_json_patch(new_image: &str, aux: &[(usize, String, String)]) -> Value {
    let mut ops = vec![json!({"op": "replace", "path": "/spec/image", "value": new_image})];
    for (index, old, new) in aux {
        let path = format!("/spec/configuration/model/auxiliaryImages/{index}/image");
        ops.push(json!({"op": "test", "path": path, "value": old}));
        ops.push(json!({"op": "replace", "path": path, "value": new}));
    }
    json!({"type": "json", "patch": ops})
}
