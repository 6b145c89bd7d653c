//! `--compression zstd` end to end: the layers patchfarm writes are OCI zstd layers (the base's
//! stay as they were), the same bytes every time, read by skopeo, umoci, patchfarm itself and the
//! Docker engine. Where a tool here predates zstd (umoci < 0.5, Docker < 23) skopeo converts or
//! hands over the image, and says so; patchfarm's own engine export takes zstd layers anywhere.

use patchfarm_e2e::tools::{docker_available, run};
use patchfarm_e2e::weblogic;
use patchfarm_e2e::wls::{key, layer_media_types, unpack, Wls, PSU};
use patchfarm_e2e::Registry;
use std::process::Command;

const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `reference` copied by skopeo into an OCI layout with every layer recompressed as gzip (which
/// reads each zstd layer whole): what tools before zstd take. Returns (work dir, `oci:` name).
fn as_gzip_layout(reference: &str) -> (tempfile::TempDir, String) {
    let work = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:x", work.path().join("l").display());
    run(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-compress-format",
            "gzip",
        ])
        .arg(format!("docker://{reference}"))
        .arg(&layout));
    let converted: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(&layout)))
    .unwrap();
    assert!(converted["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["mediaType"] == GZIP));
    (work, layout)
}

/// `reference` unpacked by umoci; an umoci before 0.5 cannot read zstd layers, so there skopeo
/// first converts them ([`as_gzip_layout`]).
fn unpack_zstd(reference: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let version = run(Command::new("umoci").arg("--version"));
    let number = version.split_whitespace().nth(2).unwrap_or("0.0");
    let mut parts = number
        .split(['.', '+', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (0, 5) {
        return unpack(reference);
    }
    eprintln!(
        "{}: umoci reads zstd layers from 0.5 on: skopeo converts them to gzip first",
        version.trim()
    );
    let (work, layout) = as_gzip_layout(reference);
    let layout = layout.trim_start_matches("oci:").to_string();
    let bundle = work.path().join("b");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(&layout)
        .arg(&bundle));
    (work, bundle.join("rootfs"))
}

/// The Docker engine's major version (0 when it does not say).
fn engine_major() -> u32 {
    run(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

#[test]
fn zstd_layers_are_read_by_skopeo_umoci_patchfarm_and_the_engine() {
    let registry = Registry::start();
    let base = weblogic::debian_base(&registry);
    let wls = Wls::with(registry, base);
    wls.fake_jdk();
    let psu = key(PSU);
    let base_layers = layer_media_types(&wls.base);
    assert!(base_layers.iter().all(|t| t == GZIP), "{base_layers:?}");

    let (zstd, again, gzip) = (wls.tag("z:1"), wls.tag("z:2"), wls.tag("g:1"));
    let first = wls.create(&zstd, &["--compression", "zstd", "--patches", &psu]);
    let types = layer_media_types(&zstd);
    assert_eq!(
        &types[..base_layers.len()],
        &base_layers[..],
        "the base's keep theirs"
    );
    assert!(
        types[base_layers.len()..].iter().all(|t| t == ZSTD) && types.len() > base_layers.len(),
        "{types:?}"
    );
    // The same bytes again, also with the built-layer cache emptied.
    std::fs::remove_dir_all(wls.pf.cache_dir().join("built")).unwrap();
    let second = wls.create(&again, &["--compression", "zstd", "--patches", &psu]);
    assert_eq!(
        first["digest"], second["digest"],
        "zstd builds are reproducible"
    );
    let plain = wls.create(&gzip, &["--patches", &psu]);
    assert_ne!(first["digest"], plain["digest"]);
    assert!(layer_media_types(&gzip).iter().all(|t| t == GZIP));

    // skopeo copies it (checking every blob's digest), umoci unpacks it.
    let (_work, root) = unpack_zstd(&zstd);
    assert!(root.join("u01/oracle/inventory/registry.xml").is_file());
    assert!(root
        .join(format!("u01/oracle/inventory/oneoffs/{PSU}"))
        .is_dir());
    assert!(root.join("usr/bin/id").is_file(), "the base's layers too");
    // patchfarm reads its own zstd layers: inspect, and update on top of them.
    let inspected: serde_json::Value =
        serde_json::from_str(&wls.pf.ok(&["inspect", "--image", &zstd, "--patches"])).unwrap();
    assert_eq!(inspected["oraclePatches"][0]["patch"], PSU, "{inspected}");

    if !docker_available("zstd_layers_are_read_by_skopeo_umoci_patchfarm_and_the_engine") {
        return;
    }
    let local = format!("patchfarm-test-zstd:{}", std::process::id());
    let cleanup = |names: &[&str]| {
        for name in names {
            let _ = Command::new("docker").args(["rmi", "-f", name]).output();
        }
    };
    if engine_major() >= 23 {
        run(Command::new("docker").args(["pull", "-q", &zstd]));
        run(Command::new("docker").args(["tag", &zstd, &local]));
    } else {
        eprintln!(
            "the Docker engine here is older than 23 and cannot pull zstd layers: skopeo hands it the image as gzip"
        );
        let (_work, layout) = as_gzip_layout(&zstd);
        run(Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(&layout)
            .arg(format!("docker-daemon:{local}")));
    }
    let out = Command::new("docker")
        .args(["run", "--rm", &local, "cat", "/u01/oracle/oraInst.loc"])
        .output()
        .unwrap();
    // patchfarm's own export to the engine (a tag without a registry) takes zstd layers too.
    let exported = format!("patchfarm-test-zstd-export:{}", std::process::id());
    let report = wls.create(&exported, &["--compression", "zstd", "--patches", &psu]);
    let id = Command::new("docker")
        .args(["run", "--rm", &exported, "id", "-un"])
        .output()
        .unwrap();
    cleanup(&[&local, &exported, &zstd]);
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout)
                .contains("inventory_loc=/u01/oracle/oraInventory"),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["reference"], format!("docker-daemon:{exported}"));
    assert!(
        id.status.success(),
        "{}",
        String::from_utf8_lossy(&id.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "oracle");
}
