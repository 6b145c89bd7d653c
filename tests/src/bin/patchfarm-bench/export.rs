//! The campaign bench at fleet scale: a generated `kubectl get domains -A -o yaml` export of 2,000
//! Domains (all three source types, auxiliary images, domains pulling from each of 3 registries),
//! moving to a new PSU and a new WDT release. Prints planning time (`campaign plan` on the export,
//! the whole process), end-to-end time and images per minute, next to the 200-domain figure of the
//! same run (campaign.rs).

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::{write_wdt_zip, Patchfarm, Registry};
use std::time::Instant;

/// Domain-in-Image sources (`domains/d{i}:1`) and auxiliary images shared across the fleet.
const SOURCES: usize = 20;
const AUX_IMAGES: usize = 10;

/// The export: domain `i` pulls from registry `i % 3`; one in three of each source type.
fn export(registries: &[String], domains: usize) -> String {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..domains {
        let registry = &registries[i % registries.len()];
        let spec = match i % 3 {
            0 => format!(
                "{{domainHomeSourceType: Image, image: \"{registry}/domains/d{}:1\", imagePullSecrets: [{{name: pull}}]}}",
                i % SOURCES
            ),
            1 => format!(
                "{{image: \"{registry}/wls/base:old\", configuration: {{model: {{domainType: WLS, auxiliaryImages: [{{image: \"{}/aux/a{}:1\"}}]}}}}}}",
                registries[0],
                i % AUX_IMAGES
            ),
            _ => format!(
                "{{domainHomeSourceType: PersistentVolume, image: \"{registry}/wls/base:old\"}}"
            ),
        };
        text.push_str(&format!(
            "- apiVersion: weblogic.oracle/v9\n  kind: Domain\n  metadata: {{name: d{i}, namespace: ns{}, labels: {{tier: t{}}}}}\n  spec: {spec}\n",
            i % 50,
            i % 4
        ));
    }
    text
}

/// Plans and runs the 2,000-domain campaign on `farm`, whose primary registry already holds
/// `wls/base:old` and the Domain-in-Image sources; prints one table row.
pub async fn fleet_export(farm: &mut Farm, domains: usize) {
    let mirrors = [Registry::start(), Registry::start()];
    let host = farm.registry.host();
    let registries: Vec<String> = std::iter::once(host.clone())
        .chain(mirrors.iter().map(|m| format!("{}/mirror", m.host())))
        .collect();
    // Today's images in every registry the fleet pulls from.
    let mut today: Vec<String> = (0..SOURCES).map(|i| format!("domains/d{i}:1")).collect();
    today.push("wls/base:old".into());
    for mirror in &registries[1..] {
        for path in &today {
            patchfarm_e2e::tools::registry_copy(
                &format!("{host}/{path}"),
                &format!("{mirror}/{path}"),
            );
        }
    }
    let pf = Patchfarm::new();
    let inputs = farm.dir.path().join("export-inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    for version in ["4.2.1", "4.3.0"] {
        write_wdt_zip(&inputs.join(format!("wdt-{version}.zip")), version);
    }
    pf.add_installer("wdt", "4.2.1", &inputs.join("wdt-4.2.1.zip"));
    farm.add_installer("wdt", "4.3.0", &inputs.join("wdt-4.3.0.zip"));
    std::fs::write(inputs.join("model.yaml"), "topology: {}\n").unwrap();
    for a in 0..AUX_IMAGES {
        pf.ok(&[
            "createAuxImage",
            "--tag",
            &format!("{host}/aux/a{a}:1"),
            "--fromImage",
            &farm.base,
            "--wdtVersion",
            "4.2.1",
            "--wdtModel",
            &inputs.join("model.yaml").display().to_string(),
        ]);
    }
    std::fs::write(inputs.join("domains.yaml"), export(&registries, domains)).unwrap();
    let file = inputs.join("fleet-export.yaml");
    let quoted: Vec<String> = registries.iter().map(|r| format!("\"{r}\"")).collect();
    std::fs::write(
        &file,
        format!(
            "name: fleet-export\nregistries: [{}]\nwdtVersion: 4.3.0\nlimits: {{maxParallelJobs: 16, retries: 3}}\nbases:\n  - {{name: wls14, version: 12.2.1.4.0, jdkVersion: \"17\", fromImage: \"{}\", patches: [\"{}\"], tag: \"wls/base:fleet-export\"}}\ndomainsFrom:\n  - {{file: domains.yaml, base: wls14}}\n",
            quoted.join(", "),
            farm.base,
            patchfarm_e2e::wls::key(patchfarm_e2e::wls::PSU)
        ),
    )
    .unwrap();
    let file = file.display().to_string();

    let started = Instant::now();
    let plan: serde_json::Value =
        serde_json::from_str(&farm.ok(&["--json", "campaign", "plan", &file])).unwrap();
    let planning = started.elapsed().as_secs_f64();
    let planned_domains = plan["domains"].as_array().map_or(0, Vec::len);
    let started = Instant::now();
    farm.ok(&["campaign", "submit", &file, "--wait"]);
    let out = farm.dir.path().join("report-fleet-export");
    farm.ok(&[
        "campaign",
        "report",
        "fleet-export",
        "--out",
        &out.display().to_string(),
    ]);
    let wall = started.elapsed().as_secs_f64();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["succeeded"], true);
    let pushed = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["image"].is_string())
        .count();
    let patched = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["domainPatch"].is_object())
        .count();
    println!(
        "{:<28} {:>8} {:>8} {:>10.1} {:>14.0} {:>14} {:>7}",
        "fleet-export (3 registries)",
        planned_domains,
        pushed,
        wall,
        pushed as f64 / (wall / 60.0),
        "-",
        "-"
    );
    println!(
        "{:<28} planning {planning:.3} s (campaign plan on the export, target <= 1 s); {patched} Domain patches ready, {:.0} domains/min end to end (target >= 1,000 images/min)",
        "",
        patched as f64 / (wall / 60.0)
    );
}
