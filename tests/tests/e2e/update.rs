//! `update` (one new layer of changed files) and multi-platform `create` (an OCI index).

use patchfarm_e2e::weblogic::{self, JAR};
use patchfarm_e2e::wls::*;
use patchfarm_e2e::{busybox_multiarch, run, Registry};
use std::process::Command;

#[test]
fn update_adds_one_layer_with_only_the_changed_files() {
    let wls = Wls::new();
    wls.fake_jdk();
    let base = wls.tag("app:base");
    wls.create(&base, &[]);
    let updated = wls.tag("app:patched");
    // WIT's --dryRun: the plan, checked against the image, and nothing pushed.
    let planned: serde_json::Value = serde_json::from_str(&wls.pf.ok(&[
        "update",
        "--dryRun",
        "--fromImage",
        &base,
        "--tag",
        &updated,
        "--patches",
        &format!("{},{}", key(PSU), key(REC)),
    ]))
    .unwrap();
    let keys: Vec<&str> = planned["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [key(PSU), key(REC)], "{planned}");
    assert_eq!(planned["patchesAppliedBy"], "native", "{planned}");
    assert_eq!(planned["oracleHome"], "/u01/oracle", "{planned}");
    assert_not_pushed(&updated);
    let out: serde_json::Value = serde_json::from_str(&wls.pf.ok(&[
        "update",
        "--json",
        "--fromImage",
        &base,
        "--tag",
        &updated,
        "--patches",
        &format!("{},{}", key(PSU), key(REC)),
    ]))
    .unwrap();
    assert_eq!(out["applied"], serde_json::json!([PSU, REC]));
    let (before, after) = (raw(&base), raw(&updated));
    let (old_layers, new_layers) = (
        before["layers"].as_array().unwrap(),
        after["layers"].as_array().unwrap(),
    );
    assert_eq!(
        new_layers.len(),
        old_layers.len() + 1,
        "update adds exactly one layer"
    );
    assert_eq!(
        &new_layers[..old_layers.len()],
        &old_layers[..],
        "the existing layers are reused as they are"
    );

    // The new layer holds the changed files, the inventory records and their parents, nothing else.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("l");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{updated}"))
        .arg(format!("oci:{}:x", layout.display())));
    let top = new_layers.last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let listing = run(Command::new("tar")
        .arg("-tvzf")
        .arg(layout.join("blobs/sha256").join(top)));
    for line in listing.lines() {
        let path = line.split_whitespace().last().unwrap();
        let allowed = path.ends_with('/')
            || path == format!("u01/oracle/{JAR}")
            || path == "u01/oracle/wlserver/server/lib/readme.txt"
            || path.starts_with("u01/oracle/inventory/oneoffs/");
        assert!(allowed, "unexpected entry in the update layer: {line}");
        assert!(
            line.contains("1000/1000"),
            "owner must be the Oracle Home's: {line}"
        );
    }
    // The same patches give the same jar whether applied by create or by update.
    let created = wls.tag("app:created");
    wls.create(
        &created,
        &["--patches", &format!("{},{}", key(PSU), key(REC))],
    );
    let ((_a, r1), (_b, r2)) = (unpack(&updated), unpack(&created));
    assert_eq!(
        std::fs::read(r1.join("u01/oracle").join(JAR)).unwrap(),
        std::fs::read(r2.join("u01/oracle").join(JAR)).unwrap()
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&wls.pf.ok(&["inspect", "--image", &updated, "--patches"])).unwrap();
    assert_eq!(inspected["oraclePatches"].as_array().unwrap().len(), 2);

    // Already applied: skipped and reported; the tag gets the same image.
    let again = wls.pf.output(&[
        "update",
        "--json",
        "--fromImage",
        &updated,
        "--tag",
        &wls.tag("app:again"),
        "--patches",
        &key(PSU),
    ]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains(&format!("skipped: {}", key(PSU))));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["digest"].as_str().unwrap(), raw_digest(&updated));
    // A different owner than the Oracle Home's is refused (WIT's IMG-0087).
    let err = wls.pf.fails(&[
        "update",
        "--fromImage",
        &base,
        "--tag",
        &wls.tag("app:root"),
        "--patches",
        &key(PSU),
        "--chown",
        "root:root",
    ]);
    assert!(
        err.contains("--chown root:root") && err.contains("oracle:oracle"),
        "{err}"
    );
}

#[test]
fn several_platforms_give_an_index_built_from_arch_specific_keys() {
    let registry = Registry::start();
    let base = busybox_multiarch(&registry);
    let wls = Wls::with(registry, base);
    wls.fake_jdk();
    let arm_jdk = wls.dir.path().join("arm-jdk.tar.gz");
    weblogic::fake_jdk_tgz(&arm_jdk, "17.0.99-arm");
    wls.pf.ok(&[
        "cache",
        "addInstaller",
        "--type",
        "jdk",
        "--version",
        "17",
        "--architecture",
        "arm64",
        "--path",
        &arm_jdk.display().to_string(),
    ]);
    let tag = wls.tag("multi:1");
    wls.create(
        &tag,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--patches",
            &key(PSU),
        ],
    );
    let index = raw(&tag);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, vec!["amd64", "arm64"]);
    for (arch, jdk) in [("amd64", "17.0.99"), ("arm64", "17.0.99-arm")] {
        let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
            .args([
                "inspect",
                "--config",
                "--tls-verify=false",
                "--override-arch",
                arch,
            ])
            .arg(format!("docker://{tag}"))))
        .unwrap();
        assert_eq!(config["architecture"], arch);
        assert_eq!(
            config["config"]["Labels"]["org.patchfarm.jdk.version"], jdk,
            "{arch} takes jdk_17_{arch} first, then jdk_17"
        );
    }
}

/// Rewrites the one image of the OCI layout `layout` so that no layer holds a directory entry
/// (as some image tools write layers: a runtime creates the parents of the files).
fn strip_directory_entries(layout: &std::path::Path) {
    use sha2::Digest as _;
    use std::io::{Read, Write};
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let put = |bytes: &[u8]| -> (String, usize) {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        std::fs::write(blob(&digest), bytes).unwrap();
        (digest, bytes.len())
    };
    let read_json = |path: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let mut index = read_json(layout.join("index.json"));
    let mut manifest = read_json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let mut config = read_json(blob(manifest["config"]["digest"].as_str().unwrap()));
    for (i, layer) in manifest["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let mut gz = std::fs::File::open(blob(layer["digest"].as_str().unwrap())).unwrap();
        let mut compressed = Vec::new();
        gz.read_to_end(&mut compressed).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&compressed[..]));
        let mut out = tar::Builder::new(Vec::new());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut header = entry.header().clone();
            let path = entry.path().unwrap().into_owned();
            match header.entry_type() {
                tar::EntryType::Directory => continue,
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry.link_name().unwrap().unwrap().into_owned();
                    out.append_link(&mut header, &path, &target).unwrap();
                }
                _ => out.append_data(&mut header, &path, &mut entry).unwrap(),
            }
        }
        let tar_bytes = out.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar_bytes).unwrap();
        let (digest, size) = put(&gz.finish().unwrap());
        layer["digest"] = digest.into();
        layer["size"] = size.into();
        config["rootfs"]["diff_ids"][i] =
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar_bytes))).into();
    }
    let (digest, size) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = put(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = size.into();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn update_takes_an_image_whose_layers_name_only_files() {
    let wls = Wls::new();
    wls.fake_jdk();
    let base = wls.tag("implicit:base");
    wls.create(&base, &[]);
    // The same image, its layers without directory entries.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{base}"))
        .arg(format!("oci:{}:x", layout.display())));
    strip_directory_entries(&layout);
    let implicit = wls.tag("implicit:files-only");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:x", layout.display()))
        .arg(format!("docker://{implicit}")));

    let updated = wls.tag("implicit:patched");
    let out: serde_json::Value = serde_json::from_str(&wls.pf.ok(&[
        "update",
        "--json",
        "--fromImage",
        &implicit,
        "--tag",
        &updated,
        "--patches",
        &key(PSU),
    ]))
    .unwrap();
    assert_eq!(out["applied"], serde_json::json!([PSU]));
    let (_work, root) = unpack(&updated);
    assert_eq!(
        jar_entry(&root.join("u01/oracle").join(JAR), "weblogic/Server.class"),
        b"PSU Server"
    );
}

#[test]
fn update_of_an_uncached_image_downloads_no_jdk_bytes() {
    let wls = Wls::new();
    wls.fake_jdk();
    let base = wls.tag("app:base");
    wls.create(&base, &[]);
    let manifest = raw(&base);
    let jdk = layer_history(&base)
        .iter()
        .position(|h| h.starts_with("patchfarm create: JDK"))
        .expect("a JDK layer in the history");
    let jdk_digest = manifest["layers"][jdk]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // An agent that never saw the image: no layer of it in the cache.
    std::fs::remove_dir_all(wls.pf.cache_dir().join("layers")).ok();
    let jdk_gets = || {
        wls.registry
            .log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&jdk_digest))
            .count()
    };
    let before = jdk_gets();
    let updated = wls.tag("app:patched-cold");
    let out: serde_json::Value = serde_json::from_str(&wls.pf.ok(&[
        "update",
        "--json",
        "--fromImage",
        &base,
        "--tag",
        &updated,
        "--patches",
        &key(PSU),
    ]))
    .unwrap();
    assert_eq!(out["applied"], serde_json::json!([PSU]), "{out}");
    assert_eq!(
        jdk_gets(),
        before,
        "update fetched the JDK layer {jdk_digest} to patch the Oracle Home"
    );
    // The Oracle Home's layer was read (the patch rewrote its jar), and the JDK layer is reused.
    let after = raw(&updated);
    assert_eq!(
        after["layers"][jdk]["digest"],
        manifest["layers"][jdk]["digest"]
    );
}
