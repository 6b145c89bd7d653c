//! A campaign that moves to a new WDT release: each auxiliary image refreshed once, and each
//! Domain's patch replacing its auxiliary images by index behind a `test` of the old value.

use super::tests::{EXAMPLE, KUBECTL_DOMAINS};
use super::*;
use patchfarm_proto::v1::{Job as FarmJob, JobState};
use serde_json::{json, Value};

/// Every planned job finished: `failing` failed, the rest pushed their tag at a digest.
fn finished(planned: &Plan, failing: &str) -> Vec<FarmJob> {
    planned
        .jobs
        .iter()
        .map(|p| FarmJob {
            request_id: report::request_id(&planned.campaign, &p.key),
            state: if p.key == failing {
                JobState::Failed
            } else {
                JobState::Succeeded
            } as i32,
            digests: vec![format!("{}@sha256:{}", p.pushes, "cd".repeat(32))],
            ..Default::default()
        })
        .collect()
}

fn domain<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()
}

#[test]
fn a_new_wdt_release_refreshes_each_aux_image_once_and_patches_domains_by_index() {
    let text = EXAMPLE.replace("limits:", "wdtVersion: 4.3.0\nlimits:")
        + "  - {name: search, namespace: shop, domainHomeSourceType: FromModel,\n     image: registry.us.example.com/mirror/wls/base:12.2.1.4-2026-07, base: wls14,\n     auxiliaryImages: [registry.eu.example.com:5000/aux/catalog:5, registry.us.example.com/mirror/aux/search:2]}\n";
    let file = CampaignFile::parse("wdt.yaml", &text).unwrap();
    let planned = plan(&file).unwrap();
    let refreshes: Vec<&plan::PlannedJob> = planned
        .jobs
        .iter()
        .filter(|j| j.kind == "refreshAuxImage")
        .collect();
    assert_eq!(
        refreshes.iter().map(|j| j.key.as_str()).collect::<Vec<_>>(),
        ["aux/shop/catalog/0", "aux/shop/search/1"],
        "catalog:5 is refreshed once for both domains"
    );
    assert_eq!(refreshes[0].inputs, ["wdt_4.3.0"]);
    assert_eq!(
        refreshes[1].pushes,
        "registry.eu.example.com:5000/aux/search:2-cpu-2026-10"
    );
    let search = planned.domains.iter().find(|d| d.name == "search").unwrap();
    assert_eq!(
        search.auxiliary_refresh[0].pulled_from,
        "aux/shop/catalog/0"
    );
    assert_eq!(
        search.auxiliary_refresh[1].pulled_from, "copy/aux/shop/search/1/1",
        "pulled from the mirror it came from"
    );
    assert!(search.action.contains("WDT 4.3.0"), "{}", search.action);

    let report = report::build(&planned, &finished(&planned, "")).unwrap();
    let search = domain(&report, "search");
    let patch = &search["domainPatch"];
    assert_eq!(patch["type"], "json");
    let ops = patch["patch"].as_array().unwrap();
    assert_eq!(ops[0]["path"], "/spec/image");
    assert_eq!(
        ops[1],
        json!({"op": "test", "path": "/spec/configuration/model/auxiliaryImages/0/image",
               "value": "registry.eu.example.com:5000/aux/catalog:5"})
    );
    assert_eq!(ops[2]["op"], "replace");
    assert!(ops[2]["value"]
        .as_str()
        .unwrap()
        .starts_with("registry.eu.example.com:5000/aux/catalog@sha256:"));
    assert!(ops[4]["value"]
        .as_str()
        .unwrap()
        .starts_with("registry.us.example.com/mirror/aux/search@sha256:"));
    let kubectl = search["kubectl"].as_str().unwrap();
    assert!(kubectl.contains("--type json -p '[{"), "{kubectl}");
    assert!(report::markdown(&report).contains("auxiliaryImages[1]"));
    // Domains without auxiliary images keep the merge patch.
    assert_eq!(domain(&report, "payments")["domainPatch"]["type"], "merge");

    // A failed refresh holds the domain back: no patch, and it says failed.
    let report = report::build(&planned, &finished(&planned, "copy/aux/shop/search/1/1")).unwrap();
    let search = domain(&report, "search");
    assert!(search["domainPatch"].is_null() && search["kubectl"].is_null());
    assert_eq!(search["state"], "failed");
    assert!(domain(&report, "catalog")["domainPatch"].is_object());

    let bad = EXAMPLE.replace("limits:", "wdtVersion: \"4.3/../x\"\nlimits:");
    let err = CampaignFile::parse("bad.yaml", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("wdtVersion"), "{err}");
}

#[test]
fn gitops_out_replaces_aux_images_by_index_in_the_exported_domain() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("domains.yaml"), KUBECTL_DOMAINS).unwrap();
    let head = EXAMPLE
        .split("domains:\n")
        .next()
        .unwrap()
        .replace("limits:", "wdtVersion: 4.3.0\nlimits:");
    let text = format!(
        "{head}domainsFrom:\n  - {{file: domains.yaml, base: wls14, namespaces: [shop], selector: \"tier=web\"}}\n"
    );
    let (file, _) = CampaignFile::load(&dir.path().join("q4.yaml"), &text).unwrap();
    let planned = plan(&file).unwrap();
    let report = report::build(&planned, &finished(&planned, "")).unwrap();
    let files = gitops::files(&file, &report).unwrap();
    let by_name = |name: &str| -> Value {
        serde_norway::from_str(&files.iter().find(|(p, _)| p.ends_with(name)).unwrap().1).unwrap()
    };
    let orders = domain(&report, "orders");
    let exported: Value = serde_norway::from_str(KUBECTL_DOMAINS).unwrap();
    let mut expected = exported["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metadata"]["name"] == "orders")
        .unwrap()
        .clone();
    expected["spec"]["image"] = orders["newImage"].clone();
    for (i, update) in orders["auxiliaryImageUpdates"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        expected["spec"]["configuration"]["model"]["auxiliaryImages"][i]["image"] =
            update["newImage"].clone();
    }
    assert_eq!(by_name("shop/orders.yaml"), expected);
    assert_eq!(
        by_name("shop/orders.patch.yaml"),
        orders["domainPatch"]["patch"]
    );
    let kustomization = by_name("kustomization.yaml");
    assert_eq!(
        kustomization["patches"][0]["target"],
        json!({"group": "weblogic.oracle", "version": "v8", "kind": "Domain", "name": "orders", "namespace": "shop"})
    );
}

#[test]
fn a_patched_domain_the_operator_would_reject_gets_no_patch() {
    let dir = tempfile::tempdir().unwrap();
    let broken = KUBECTL_DOMAINS.replace(
        "    image: \"registry.eu.example.com:5000/wls/base:12.2.1.4-2026-07\"\n",
        "    image: \"registry.eu.example.com:5000/wls/base:12.2.1.4-2026-07\"\n    imagePullPolicy: Sometimes\n",
    );
    assert_ne!(broken, KUBECTL_DOMAINS);
    std::fs::write(dir.path().join("domains.yaml"), broken).unwrap();
    let head = EXAMPLE.split("domains:\n").next().unwrap();
    let text = format!(
        "{head}domainsFrom:\n  - {{file: domains.yaml, base: wls14, namespaces: [shop], selector: \"tier=web\"}}\n"
    );
    let (file, _) = CampaignFile::load(&dir.path().join("q4.yaml"), &text).unwrap();
    let planned = plan(&file).unwrap();
    let report = report::build(&planned, &finished(&planned, "")).unwrap();
    let orders = domain(&report, "orders");
    assert!(orders["domainPatch"].is_null() && orders["kubectl"].is_null());
    let problems = orders["invalid"].to_string();
    assert!(problems.contains("imagePullPolicy"), "{problems}");
    assert!(report::markdown(&report).contains("## Not patched"));
    let files = gitops::files(&file, &report).unwrap();
    assert!(
        files.iter().all(|(p, _)| !p.starts_with("shop")),
        "{files:?}"
    );
}
