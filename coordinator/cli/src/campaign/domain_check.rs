//! Every Domain patch a campaign hands out is checked first: applied (a merge patch, or a JSON
//! patch with its `test` ops) to the Domain as the cluster exported it — or, for a hand-written
//! entry, as the campaign knows it — and the result validated against the operator's v9 Domain
//! schema (`domain-v9.schema.json`). A patch that would not apply, or would leave an invalid
//! Domain, is never printed as one to run.

use super::plan::DomainPlan;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The schema, also read by tests and tools from this file.
pub const SCHEMA: &str = include_str!("domain-v9.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the Domain schema is JSON");
        jsonschema::draft7::new(&schema).expect("the Domain schema compiles")
    })
}

/// The Domain as the campaign knows it: the exported resource, else what a hand-written entry
/// says of it.
pub fn known(domain: &DomainPlan) -> Value {
    if let Some(manifest) = &domain.manifest {
        return manifest.clone();
    }
    let mut spec = json!({
        "domainHomeSourceType": domain.domain_home_source_type,
        "image": domain.old_image,
    });
    if !domain.auxiliary_images.is_empty() {
        let images: Vec<Value> = domain
            .auxiliary_images
            .iter()
            .map(|image| json!({"image": image}))
            .collect();
        spec["configuration"] = json!({"model": {"auxiliaryImages": images}});
    }
    json!({
        "apiVersion": "weblogic.oracle/v9",
        "kind": "Domain",
        "metadata": {"name": domain.domain_resource, "namespace": domain.namespace},
        "spec": spec,
    })
}

/// `domain` with `patch` (`{"type": "merge"|"json", "patch": …}`) applied, if it applies and
/// leaves a valid Domain; else every reason why not.
pub fn apply(domain: &Value, patch: &Value) -> Result<Value, Vec<String>> {
    let mut patched = domain.clone();
    match patch["type"].as_str() {
        Some("merge") => json_patch::merge(&mut patched, &patch["patch"]),
        Some("json") => {
            let ops: json_patch::Patch = serde_json::from_value(patch["patch"].clone())
                .map_err(|e| vec![format!("not a JSON patch: {e}")])?;
            json_patch::patch(&mut patched, &ops)
                .map_err(|e| vec![format!("the patch does not apply: {e}")])?;
        }
        other => return Err(vec![format!("unknown patch type {other:?}")]),
    }
    let problems: Vec<String> = validator()
        .iter_errors(&patched)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if problems.is_empty() {
        Ok(patched)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Value {
        json!({
            "apiVersion": "weblogic.oracle/v9", "kind": "Domain",
            "metadata": {"name": "orders", "namespace": "shop"},
            "spec": {"domainHomeSourceType": "FromModel", "image": "r.example/wls:1",
                     "configuration": {"model": {"auxiliaryImages": [{"image": "r.example/aux:1"}]}}},
        })
    }

    #[test]
    fn patches_are_applied_tested_and_validated() {
        let patch = super::super::report::domain_json_patch(
            "r.example/wls@sha256:aa",
            &[(
                0,
                "r.example/aux:1".into(),
                "r.example/aux@sha256:bb".into(),
            )],
        );
        let patched = apply(&domain(), &patch).unwrap();
        assert_eq!(
            patched["spec"]["configuration"]["model"]["auxiliaryImages"][0]["image"],
            "r.example/aux@sha256:bb"
        );
        // The Domain changed meanwhile: the test op refuses.
        let mut moved = domain();
        moved["spec"]["configuration"]["model"]["auxiliaryImages"][0]["image"] =
            "r.example/aux:2".into();
        let refused = apply(&moved, &patch).unwrap_err();
        assert!(refused[0].contains("does not apply"), "{refused:?}");
        // A result the operator would reject is refused, naming where.
        let empty = super::super::report::domain_patch("");
        let invalid = apply(&domain(), &empty).unwrap_err();
        assert!(
            invalid.iter().any(|p| p.contains("/spec/image")),
            "{invalid:?}"
        );
        let mut wrong_kind = domain();
        wrong_kind["spec"]["imagePullPolicy"] = "Sometimes".into();
        assert!(apply(&wrong_kind, &super::super::report::domain_patch("r/x:1")).is_err());
    }
}
