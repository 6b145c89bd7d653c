//! A campaign end to end on a farm (1 coordinator, 2 agents, two registries): a patched base, two
//! Domain-in-Image domains rebased, a Model-in-Image domain's model moved, a Model-in-Image domain
//! with auxiliary images and a persistent-volume domain re-pointed; every image copied to the
//! mirror. Checks the report against the registries and the domains' bytes.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::wls::{self, derive, raw_digest, unpack, DOMAIN, DOMAIN_CONFIG, INI, PSU};
use patchfarm_e2e::Registry;

/// Today's fleet: domains on an unpatched base (made once per farm).
pub(crate) fn today(farm: &Farm) {
    let host = farm.registry.host();
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
}

/// The campaign file `NAME.yaml` that moves today's fleet onto a PSU-patched base, pushing to
/// the farm's registry and `mirror`.
pub(crate) fn fleet(farm: &Farm, mirror: &Registry, name: &str) -> String {
    let host = farm.registry.host();
    let old = format!("{host}/wls/base:1");
    let file = farm.dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            r#"
name: {name}
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
    file.display().to_string()
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
    today(&farm);
    let file = fleet(&farm, &mirror, "cpu-2026-10");
    let out = farm.cli(&["--json", "campaign", "submit", &file, "--wait"]);
    let (submitted, progress) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{progress}");
    let first: serde_json::Value = serde_json::from_str(submitted.lines().next().unwrap()).unwrap();
    assert_eq!(first["jobs"].as_array().unwrap().len(), 8, "{first}");
    // No terminal here: --wait's progress comes as plain lines, the last ones complete.
    for stage in ["bases: 1/1", "domains: 3/3", "copies: 4/4"] {
        assert!(
            progress.contains(&format!("campaign cpu-2026-10 {stage} ended")),
            "{stage}: {progress}"
        );
    }

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
        assert_eq!(raw_digest(new_image), digest);
        let path = repo.strip_prefix(&format!("{host}/")).unwrap();
        assert_eq!(
            raw_digest(&format!("{}/mirror/{path}@{digest}", mirror.host())),
            digest
        );
        // The Domain patch: a merge patch of spec.image, by digest, and nothing else.
        assert_eq!(d["domainPatch"]["type"], "merge");
        assert_eq!(
            d["domainPatch"]["patch"],
            serde_json::json!({"spec": {"image": new_image}})
        );
        assert!(d["sizeBytes"].as_u64().unwrap() > 1000, "{d}");
        // The patches the new image holds, as its jobs resolved them (here: the base's PSU).
        assert_eq!(d["patches"], serde_json::json!([PSU]), "{d}");
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
        md.contains("| prod | Image |") && md.contains(&format!("` | {PSU} |")),
        "each domain's patches: {md}"
    );
    assert!(
        md.contains("observedGeneration") && md.contains("Completed"),
        "{md}"
    );

    // A base that cannot be built: its dependents are cancelled, naming why; nothing hangs.
    let broken = std::fs::read_to_string(&file)
        .unwrap()
        .replace("name: cpu-2026-10", "name: broken")
        .replace("jdkVersion: \"17\"", "jdkVersion: \"99\"");
    let broken_file = farm.dir.path().join("broken.yaml");
    std::fs::write(&broken_file, broken).unwrap();
    let out = farm.cli(&[
        "campaign",
        "submit",
        &broken_file.display().to_string(),
        "--wait",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not succeed"), "{stderr}");
    let status = farm.ok(&["--json", "campaign", "status", "broken"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    for job in status.as_array().unwrap() {
        let key = job["requestId"].as_str().unwrap();
        if key.ends_with("/base/wls14") {
            assert_eq!(job["state"], "failed", "{job}");
            assert!(job["error"].as_str().unwrap().contains("jdk_99"), "{job}");
        } else {
            assert_eq!(job["state"], "cancelled", "{job}");
            assert!(
                job["error"].as_str().unwrap().contains("did not succeed"),
                "{job}"
            );
        }
    }

    // `campaign cancel` stops a campaign whose base hangs on a registry that never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = std::fs::read_to_string(&file)
        .unwrap()
        .replace("name: cpu-2026-10", "name: hung")
        .replace(
            &farm.base,
            &format!("{}/os/none:1", silent.local_addr().unwrap()),
        );
    let hung_file = farm.dir.path().join("hung.yaml");
    std::fs::write(&hung_file, hung).unwrap();
    farm.ok(&["campaign", "submit", &hung_file.display().to_string()]);
    farm.leased_job(std::time::Duration::from_secs(30)).await;
    let cancelled = farm.ok(&["campaign", "cancel", "hung"]);
    assert!(
        cancelled.contains("8 job(s) cancelled"),
        "{cancelled}: {}",
        farm.ok(&["campaign", "status", "hung"])
    );
    let status = farm.ok(&["--json", "campaign", "status", "hung"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(status
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["state"] == "cancelled" && j["error"] == "campaign hung cancelled"));

    // Submitting the same file again changes nothing: the same jobs come back.
    let again = farm.ok(&["--json", "campaign", "submit", &file]);
    let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(again["jobs"], first["jobs"]);
}

/// The digest each domain's new image has in a campaign's report.
fn new_digests(farm: &Farm, campaign: &str) -> Vec<(String, String)> {
    let out = farm.dir.path().join(format!("report-{campaign}"));
    farm.ok(&[
        "campaign",
        "report",
        campaign,
        "--out",
        &out.display().to_string(),
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["succeeded"], true, "{report:#}");
    report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let image = d["newImage"].as_str().unwrap();
            (
                d["name"].as_str().unwrap().to_string(),
                image.split_once('@').unwrap().1.to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_survives_the_leader_and_an_agent_dying_with_the_same_report() {
    let mut farm = Farm::start(3, &[]);
    farm.cluster.wait_leader(&[1, 2, 3]).await;
    farm.upload_weblogic();
    for agent in ["agent-1", "agent-2", "agent-3"] {
        farm.start_agent(agent, &[]);
    }
    let mirror = Registry::start();
    today(&farm);
    // Undisturbed, for reference.
    let calm = fleet(&farm, &mirror, "calm");
    farm.ok(&["campaign", "submit", &calm, "--wait"]);
    // The same fleet again, while an agent running a campaign job and then the leader die.
    let stormy = fleet(&farm, &mirror, "stormy");
    farm.ok(&["campaign", "submit", &stormy]);
    let victim = farm.leased_job(std::time::Duration::from_secs(30)).await;
    farm.kill_agent(&victim.lease.as_ref().unwrap().agent);
    let leader = farm.cluster.wait_leader(&[1, 2, 3]).await;
    farm.cluster.kill(leader);
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != leader).collect();
    farm.cluster.wait_leader(&rest).await;
    farm.ok(&["campaign", "watch", "stormy"]);
    // Same inputs, same images: the report's digests agree with the undisturbed run's.
    assert_eq!(new_digests(&farm, "stormy"), new_digests(&farm, "calm"));
}
