//! A campaign end to end on a farm (1 coordinator, 2 agents, two registries): a patched base, two
//! Domain-in-Image domains rebased, a Model-in-Image domain's model moved, a Model-in-Image domain
//! with auxiliary images and a persistent-volume domain re-pointed; every image copied to the
//! mirror. Checks the report against the registries and the domains' bytes.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::wls::{self, derive, unpack, DOMAIN, DOMAIN_CONFIG, INI, PSU};
use patchfarm_e2e::{run, Registry};
use std::process::Command;

fn digest_in(reference: &str) -> String {
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    format!(
        "sha256:{}",
        patchfarm_engine::digest::Digest::of_bytes(raw.as_bytes()).hex()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_rebuilds_the_fleet_and_reports_the_domain_patches() {
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    farm.upload_weblogic();
    farm.start_agent("agent-1", &[]);
    farm.start_agent("agent-2", &[]);
    let mirror = Registry::start();
    let host = farm.registry.host();

    // Today's fleet: domains on an unpatched base.
    let old = format!("{host}/wls/base:1");
    farm.ok(&[
        "--wait",
        "create",
        "--tag",
        &old,
        "--fromImage",
        &farm.base,
        "--jdkVersion",
        "17",
    ]);
    for name in ["payments", "billing"] {
        derive(
            &old,
            &format!("{host}/domains/{name}:1"),
            wls::add_domain,
            DOMAIN_CONFIG,
        );
    }
    derive(
        &old,
        &format!("{host}/mii/orders:1"),
        |root| {
            std::fs::create_dir_all(root.join("u01/wdt/models")).unwrap();
            std::fs::write(root.join("u01/wdt/models/orders.yaml"), "topology: {}\n").unwrap();
            std::fs::create_dir_all(root.join("u01/wdt/weblogic-deploy")).unwrap();
            std::fs::write(root.join("u01/wdt/weblogic-deploy/VERSION.txt"), "4.2.1\n").unwrap();
        },
        &[
            "--config.env",
            "DOMAIN_HOME=",
            "--config.env",
            "WDT_HOME=/u01/wdt/weblogic-deploy",
            "--config.env",
            "WDT_MODEL_HOME=/u01/wdt/models",
        ],
    );

    let file = farm.dir.path().join("cpu.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
name: cpu-2026-10
registries: ["{host}", "{mirror}/mirror"]
bases:
  - {{name: wls14, version: 12.2.1.4.0, jdkVersion: "17", fromImage: "{base}",
     patches: ["{psu}"], tag: "wls/base:2026-10"}}
domains:
  - {{name: payments, namespace: prod, domainHomeSourceType: DomainInImage, image: "{host}/domains/payments:1", base: wls14}}
  - {{name: billing, namespace: prod, domainResource: billing-domain, domainHomeSourceType: DomainInImage, image: "{host}/domains/billing:1", base: wls14}}
  - {{name: orders, namespace: shop, domainHomeSourceType: ModelInImage, image: "{host}/mii/orders:1", base: wls14}}
  - {{name: catalog, namespace: shop, domainHomeSourceType: ModelInImage, image: "{old}", base: wls14,
     auxiliaryImages: ["{host}/aux/catalog:5"]}}
  - {{name: reports, namespace: ops, domainHomeSourceType: DomainInPV, image: "{old}", base: wls14}}
"#,
            mirror = mirror.host(),
            base = farm.base,
            psu = wls::key(PSU),
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let submitted = farm.ok(&["--json", "campaign", "submit", &file, "--wait"]);
    let first: serde_json::Value = serde_json::from_str(submitted.lines().next().unwrap()).unwrap();
    assert_eq!(first["jobs"].as_array().unwrap().len(), 8, "{first}");

    let out = farm.dir.path().join("report");
    farm.ok(&[
        "campaign",
        "report",
        "cpu-2026-10",
        "--out",
        &out.display().to_string(),
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["succeeded"], true, "{report:#}");
    let domains = report["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 5);
    let base_image = report["jobs"][0]["image"].as_str().unwrap().to_string();
    for d in domains {
        let new_image = d["newImage"].as_str().unwrap();
        let (repo, digest) = new_image.split_once('@').unwrap();
        // In every registry of the campaign, by digest.
        assert_eq!(digest_in(new_image), digest);
        let path = repo.strip_prefix(&format!("{host}/")).unwrap();
        assert_eq!(
            digest_in(&format!("{}/mirror/{path}@{digest}", mirror.host())),
            digest
        );
        // The Domain patch: a merge patch of spec.image, by digest, and nothing else.
        assert_eq!(d["domainPatch"]["type"], "merge");
        assert_eq!(
            d["domainPatch"]["patch"],
            serde_json::json!({"spec": {"image": new_image}})
        );
        let moved = matches!(
            d["name"].as_str().unwrap(),
            "payments" | "billing" | "orders"
        );
        assert_eq!(new_image != base_image, moved, "{d}");
    }
    // Rebased Domain-in-Image domains keep SerializedSystemIni.dat byte for byte.
    let (_w, root) = unpack(domains[0]["newImage"].as_str().unwrap());
    assert_eq!(
        std::fs::read(root.join(DOMAIN).join("security/SerializedSystemIni.dat")).unwrap(),
        INI
    );
    assert!(domains[0]["note"]
        .as_str()
        .unwrap()
        .contains("SerializedSystemIni.dat"));
    // The model moved onto the new base.
    let (_w, root) = unpack(domains[2]["newImage"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(root.join("u01/wdt/models/orders.yaml")).unwrap(),
        "topology: {}\n"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("kubectl patch domain billing-domain -n prod --type merge"),
        "{md}"
    );
    assert!(
        md.contains("observedGeneration") && md.contains("Completed"),
        "{md}"
    );

    // Submitting the same file again changes nothing: the same jobs come back.
    let again = farm.ok(&["--json", "campaign", "submit", &file]);
    let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(again["jobs"], first["jobs"]);
}
