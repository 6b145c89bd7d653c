//! A campaign whose Domain-in-Image domain has no image yet, only a WDT model: the farm builds
//! the new base, then WDT (the stand-in) creates the domain on it in a build step on an agent;
//! the report points the domain at that image, and its layers sit on the new base's.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::wdt::{model, write_wdt_standin_zip};
use patchfarm_e2e::wls::{self, raw, unpack, PSU};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_builds_a_new_domain_from_its_model_on_the_new_base() {
    if !steps_available("a_campaign_builds_a_new_domain_from_its_model") {
        return;
    }
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    farm.upload_weblogic();
    let wdt = farm.dir.path().join("weblogic-deploy.zip");
    write_wdt_standin_zip(&wdt, "4.3.0");
    farm.add_installer("wdt", "latest", &wdt);
    farm.start_agent("agent-1", &[]);
    let host = farm.registry.host();
    let dir = farm.dir.path();
    std::fs::write(
        dir.join("inventory.yaml"),
        model("inventory", &["admin", "ms1"]),
    )
    .unwrap();
    let file = dir.join("new-domain.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
name: new-domain
registries: ["{host}"]
bases:
  - {{name: wls14, version: 12.2.1.4.0, jdkVersion: "17", fromImage: "{base}",
     patches: ["{psu}"], tag: "wls/base:2026-10"}}
domains:
  - name: inventory
    namespace: stock
    domainHomeSourceType: Image
    image: "{host}/domains/inventory:1"
    base: wls14
    model: {{files: [inventory.yaml], domainHome: /u01/domains/inventory}}
"#,
            base = farm.base,
            psu = wls::key(PSU),
        ),
    )
    .unwrap();
    let plan: serde_json::Value = serde_json::from_str(&farm.ok(&[
        "--json",
        "campaign",
        "plan",
        &file.display().to_string(),
    ]))
    .unwrap();
    assert_eq!(plan["jobs"][1]["kind"], "update", "{plan}");
    assert!(
        plan["domains"][0]["action"]
            .as_str()
            .unwrap()
            .contains("WDT creates the domain"),
        "{plan}"
    );
    let out = farm.cli(&["campaign", "submit", &file.display().to_string(), "--wait"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        farm.agent_log("agent-1")
    );
    let report_dir = dir.join("report");
    farm.ok(&[
        "campaign",
        "report",
        "new-domain",
        "--out",
        &report_dir.display().to_string(),
        "--gitops-out",
        &dir.join("gitops").display().to_string(),
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["succeeded"], true, "{report:#}");
    let new_image = report["domains"][0]["newImage"].as_str().unwrap();
    assert!(
        new_image.starts_with(&format!("{host}/domains/inventory@sha256:")),
        "{new_image}"
    );
    assert_eq!(
        wls::raw_digest(&format!("{host}/domains/inventory:1-new-domain")),
        new_image.split_once('@').unwrap().1,
        "tagged for the campaign"
    );
    let base_image = report["jobs"][0]["image"].as_str().unwrap();
    let base_layers = raw(base_image)["layers"].as_array().unwrap().clone();
    let layers = raw(new_image)["layers"].as_array().unwrap().clone();
    assert_eq!(layers.len(), base_layers.len() + 1, "one domain layer");
    assert_eq!(
        layers[..base_layers.len()],
        base_layers[..],
        "on the new base"
    );
    let (_w, root) = unpack(new_image);
    let xml =
        std::fs::read_to_string(root.join("u01/domains/inventory/config/config.xml")).unwrap();
    assert!(xml.contains("<name>inventory</name>") && xml.contains("<name>ms1</name>"));
    assert_eq!(report["domains"][0]["patches"], serde_json::json!([PSU]));
    // The rollout, as a script a team runs step by step.
    let script = farm.ok(&["campaign", "rollout-plan", "new-domain"]);
    assert!(
        script.contains(&format!(
            "kubectl patch domain inventory -n stock --type merge -p '{{\"spec\":{{\"image\":\"{new_image}\"}}}}'"
        )) && script.contains("wait_rolled stock inventory"),
        "{script}"
    );
    // For a git-driven rollout: the Domain's kustomize patch names the new image.
    let patch = std::fs::read_to_string(dir.join("gitops/stock/inventory.patch.yaml")).unwrap();
    assert!(
        patch.contains(&format!("image: {new_image}")) && patch.contains("namespace: stock"),
        "{patch}"
    );
    assert!(
        std::fs::read_to_string(dir.join("gitops/kustomization.yaml"))
            .unwrap()
            .contains("stock/inventory.patch.yaml")
    );
}
