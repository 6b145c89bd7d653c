//! Campaign throughput: a 6-domain demo campaign, a generated 200-domain campaign and a
//! 2,000-Domain export (export.rs) (3
//! coordinators, 4 agents, loopback registry, release build). Prints wall time, images per minute
//! and the bytes the registry stored for the campaign next to the sum of the images' sizes.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::wls::{self, derive, DOMAIN_CONFIG, PSU};
use std::path::Path;
use std::time::Instant;

pub fn campaign_bench() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let meta = entry.metadata().unwrap();
            total += if meta.is_dir() {
                dir_bytes(&entry.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

/// Sum of config and layer sizes of `reference` (the image's size as a pull would see it).
fn image_size(reference: &str) -> u64 {
    let manifest = wls::raw(reference);
    let layers: u64 = manifest["layers"]
        .as_array()
        .map(|l| l.iter().map(|d| d["size"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    layers + manifest["config"]["size"].as_u64().unwrap_or(0)
}

fn campaign_file(farm: &Farm, name: &str, domains: usize) -> String {
    let host = farm.registry.host();
    let old = format!("{host}/wls/base:old");
    let mut text = format!(
        "name: {name}\nregistries: [\"{host}\"]\nlimits: {{maxParallelJobs: 16, retries: 3}}\nbases:\n  - {{name: wls14, version: 12.2.1.4.0, jdkVersion: \"17\", fromImage: \"{}\", patches: [\"{}\"], tag: \"wls/base:{name}\"}}\ndomains:\n",
        farm.base,
        wls::key(PSU)
    );
    for i in 0..domains {
        let (kind, image) = match i % 3 {
            0 => ("DomainInImage", format!("{host}/domains/d{}:1", i % 20)),
            1 => ("ModelInImage", old.clone()),
            _ => ("PersistentVolume", old.clone()),
        };
        // Model-in-Image domains run the base with their model in an auxiliary image (only
        // referenced here: the campaign moves no WDT release).
        let aux = if kind == "ModelInImage" {
            format!(", auxiliaryImages: [\"{host}/aux/a{}:1\"]", i % 10)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  - {{name: d{i}, namespace: ns{}, domainHomeSourceType: {kind}, image: \"{image}\", base: wls14{aux}}}\n",
            i % 7
        ));
    }
    let path = farm.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn run() {
    println!("\n## Campaigns: 3 coordinators, 4 agents, loopback registry");
    let mut farm = Farm::start(3, &[]);
    farm.cluster.wait_leader(&[1, 2, 3]).await;
    farm.upload_weblogic();
    for k in 1..=4 {
        farm.start_agent(&format!("agent-{k}"), &[]);
    }
    let host = farm.registry.host();
    let old = format!("{host}/wls/base:old");
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
    // 20 distinct Domain-in-Image sources; DII domains share them by index.
    for i in 0..20 {
        derive(
            &old,
            &format!("{host}/domains/d{i}:1"),
            wls::add_domain,
            DOMAIN_CONFIG,
        );
    }
    println!(
        "{:<28} {:>8} {:>8} {:>10} {:>14} {:>14} {:>7}",
        "campaign", "domains", "images", "wall s", "images/min", "stored bytes", "ratio"
    );
    for (name, domains) in [("demo", 6usize), ("fleet-200", 200)] {
        let file = campaign_file(&farm, name, domains);
        let before = dir_bytes(farm.registry.path());
        let started = Instant::now();
        farm.ok(&["campaign", "submit", &file, "--wait"]);
        let wall = started.elapsed().as_secs_f64();
        let stored = dir_bytes(farm.registry.path()) - before;
        let out = farm.dir.path().join(format!("report-{name}"));
        farm.ok(&[
            "campaign",
            "report",
            name,
            "--out",
            &out.display().to_string(),
        ]);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["succeeded"], true);
        let images: Vec<String> = report["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|j| j["image"].as_str().map(String::from))
            .collect();
        let sizes: u64 = images.iter().map(|i| image_size(i)).sum();
        println!(
            "{:<28} {:>8} {:>8} {:>10.1} {:>14.0} {:>14} {:>7.3}",
            name,
            domains,
            images.len(),
            wall,
            images.len() as f64 / (wall / 60.0),
            stored,
            stored as f64 / sizes as f64
        );
        println!(
            "{:<28} sum of the campaign's image sizes: {sizes} bytes (what a naive push of every image would move)",
            ""
        );
    }
    super::export::fleet_export(&mut farm, 2000).await;
}
