//! create and update with a real JDK, the fixture Oracle Home and two patches: times, bytes
//! sent, update's growth against the changed files, update on a cold cache (the JDK blob's GETs
//! counted), then the rebase section on the same home.

use crate::rebase;
use patchfarm_e2e::{patchfarm_bin, run, Registry};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// `create` of a WLS image with the real JDK and two patches, then `update` of the unpatched image
/// with the same patches: time, bytes sent, and how much `update` grows the image.
pub(crate) fn create_and_update(registry: &Registry, jdk: &Path, work: &Path) {
    use patchfarm_e2e::weblogic::{self, Act, WLS_VERSION};
    println!("\n## create and update (real JDK, fixture Oracle Home, 2 patches)");
    let home = work.join("wls-home");
    let pf = |args: &[&str]| -> (f64, serde_json::Value) {
        let mut cmd = Command::new(patchfarm_bin());
        cmd.env("PATCHFARM_CACHE", home.join("cache"))
            .env("HOME", &home)
            .arg("--json")
            .args(args);
        let start = Instant::now();
        let out = run(&mut cmd);
        (
            start.elapsed().as_secs_f64(),
            serde_json::from_str(&out).unwrap_or_default(),
        )
    };
    let jdk_tgz = work.join("jdk.tar.gz");
    run(Command::new("bash").arg("-c").arg(format!(
        "tar -C '{}' -chf - '{}' | pigz -1 > '{}'",
        jdk.parent().unwrap().display(),
        jdk.file_name().unwrap().to_string_lossy(),
        jdk_tgz.display()
    )));
    let wls = work.join("wls.zip");
    weblogic::oracle_home_zip(&wls, WLS_VERSION);
    let psu = weblogic::patch_zip(
        work,
        "37000001",
        WLS_VERSION,
        &[],
        &[
            Act::Copy {
                dir: "wlserver/server/lib",
                name: "readme.txt",
                content: b"PSU readme",
            },
            Act::Jar {
                dir: "wlserver/server/lib",
                jar: "weblogic.jar",
                entry: "weblogic/Server.class",
                content: b"PSU Server",
            },
        ],
    );
    let rec = weblogic::patch_zip(
        work,
        "37000002",
        WLS_VERSION,
        &[],
        &[Act::Jar {
            dir: "wlserver/server/lib",
            jar: "weblogic.jar",
            entry: "weblogic/Util.class",
            content: b"REC Util",
        }],
    );
    pf(&[
        "cache",
        "addInstaller",
        "--type",
        "jdk",
        "--version",
        "bench",
        "--path",
        &jdk_tgz.display().to_string(),
    ]);
    pf(&[
        "cache",
        "addInstaller",
        "--type",
        "wls",
        "--version",
        WLS_VERSION,
        "--path",
        &wls.display().to_string(),
    ]);
    pf(&[
        "cache",
        "addPatch",
        "--patchId",
        "37000001_12.2.1.4.0",
        "--path",
        &psu.display().to_string(),
    ]);
    pf(&[
        "cache",
        "addPatch",
        "--patchId",
        "37000002_12.2.1.4.0",
        "--path",
        &rec.display().to_string(),
    ]);
    let base = patchfarm_e2e::busybox_base(registry);
    let host = registry.host();
    let patches = "37000001_12.2.1.4.0,37000002_12.2.1.4.0";
    let (t_plain, plain) = pf(&[
        "create",
        "--tag",
        &format!("{host}/wls/plain:1"),
        "--fromImage",
        &base,
        "--jdkVersion",
        "bench",
    ]);
    let (t_patched, patched) = pf(&[
        "create",
        "--tag",
        &format!("{host}/wls/patched:1"),
        "--fromImage",
        &base,
        "--jdkVersion",
        "bench",
        "--patches",
        patches,
    ]);
    let (t_update, updated) = pf(&[
        "update",
        "--fromImage",
        &format!("{host}/wls/plain:1"),
        "--tag",
        &format!("{host}/wls/updated:1"),
        "--patches",
        patches,
    ]);
    // The same update on an agent that never pulled the image: no layer of it in the cache.
    let plain_raw: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/wls/plain:1"))))
    .unwrap();
    let jdk_layer = &plain_raw["layers"][plain_raw["layers"].as_array().unwrap().len() - 2];
    let jdk_digest = jdk_layer["digest"].as_str().unwrap().to_string();
    let jdk_gets = || {
        registry
            .log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&jdk_digest))
            .count()
    };
    let _ = std::fs::remove_dir_all(home.join("cache").join("layers"));
    let gets_before = jdk_gets();
    let (t_cold, cold) = pf(&[
        "update",
        "--fromImage",
        &format!("{host}/wls/plain:1"),
        "--tag",
        &format!("{host}/wls/updated-cold:1"),
        "--patches",
        patches,
    ]);
    let cold_jdk_gets = jdk_gets() - gets_before;
    println!("{:<44} {:>9} {:>14}", "step", "seconds", "bytes sent");
    println!(
        "{:<44} {t_plain:>9.2} {:>14}",
        "create (JDK + Oracle Home, no patches)", plain["bytes_uploaded"]
    );
    println!(
        "{:<44} {t_patched:>9.2} {:>14}",
        "create --patches PSU,REC (new repository)", patched["bytes_uploaded"]
    );
    println!(
        "{:<44} {t_update:>9.2} {:>14}",
        "update --patches PSU,REC on the unpatched image", updated["bytes_uploaded"]
    );
    println!(
        "{:<44} {t_cold:>9.2} {:>14}",
        "update, same, no layer of the image cached", cold["bytes_uploaded"]
    );
    println!(
        "cold update: {:.2}x the warm update's time; the JDK layer ({:.0} MB) fetched {cold_jdk_gets} times (target: 0)",
        t_cold / t_update,
        jdk_layer["size"].as_u64().unwrap_or(0) as f64 / 1e6
    );
    let sizes = |reference: &str| -> Vec<u64> {
        let raw: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}"))))
        .unwrap();
        raw["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .collect()
    };
    let (before, after) = (
        sizes(&format!("{host}/wls/plain:1")),
        sizes(&format!("{host}/wls/updated:1")),
    );
    let growth: u64 = after.iter().sum::<u64>() - before.iter().sum::<u64>();
    // The changed files: what the new layer holds (uncompressed file bytes).
    let layout = work.join("updated-layout");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/wls/updated:1"))
        .arg(format!("oci:{}:u", layout.display())));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(manifest_digest)).unwrap(),
    )
    .unwrap();
    let top = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(layout.join("blobs/sha256").join(top)).unwrap(),
    ));
    let changed: u64 = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().size().unwrap_or(0))
        .sum();
    println!(
        "update growth: {} layer(s), {growth} bytes; changed files {changed} bytes; target <= changed + 65536 = {} -> {}",
        after.len() - before.len(),
        changed + 65536,
        if growth <= changed + 65536 { "met" } else { "NOT met" }
    );
    println!(
        "(for comparison, the Oracle Home layer a copy-based update would re-add: {} bytes)",
        before.last().unwrap()
    );
    rebase::rebase_bench(registry, &home, &base);
}
