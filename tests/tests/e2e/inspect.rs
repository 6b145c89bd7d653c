//! `inspect` on images patchfarm did not build: a Docker schema-2 image written by skopeo.

use patchfarm_e2e::{run, umoci_image, Patchfarm, Registry};
use std::os::unix::fs::chown;
use std::path::Path;
use std::process::Command;

const REGISTRY_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<registry home="/u01/oracle" platform="226" xmlns="http://xmlns.oracle.com/cie/gdr/rgy">
  <distributions>
    <distribution status="installed" name="WebLogic Server" version="12.2.1.4.0"/>
    <distribution status="installed" name="Coherence" version="12.2.1.4.0"/>
  </distributions>
</registry>
"#;

const ONEOFF_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<oneoff_inventory><patch_id number="37000001"/><unique_patch_id>26000001</unique_patch_id>
<patch_description>WLS PATCH SET UPDATE 12.2.1.4.261001</patch_description></oneoff_inventory>
"#;

fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, content).unwrap();
}

/// A WebLogic-shaped image (JDK release, Oracle Home inventory, a one-off patch) made with
/// umoci, then copied to the registry by skopeo in Docker v2 schema-2 format.
fn docker_format_weblogic_image(registry: &Registry) -> String {
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(
        work.path(),
        "wls",
        |root| {
            write(
                root,
                "usr/lib/os-release",
                "ID=debian\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
            );
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release"))
                .unwrap();
            write(
                root,
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\noracle:x:1000:1000::/home/oracle:/bin/sh\n",
            );
            write(root, "etc/group", "root:x:0:\noracle:x:1000:\n");
            write(root, "usr/bin/apt-get", "#!/bin/sh\n");
            write(
                root,
                "u01/jdk/release",
                "JAVA_VERSION=\"1.8.0_401\"\nIMPLEMENTOR=\"Oracle Corporation\"\n",
            );
            write(root, "u01/oracle/inventory/registry.xml", REGISTRY_XML);
            write(
                root,
                "u01/oracle/inventory/oneoffs/37000001/etc/config/inventory.xml",
                ONEOFF_XML,
            );
            write(root, "u01/oracle/wlserver/server/lib/weblogic.jar", "jar");
            write(
                root,
                "u01/oracle/OPatch/version.txt",
                "OPATCH_VERSION:13.9.4.2.17\n",
            );
            for dir in ["u01/oracle", "u01/oracle/inventory", "u01/oracle/wlserver"] {
                chown(root.join(dir), Some(1000), Some(1000)).unwrap();
            }
        },
        &[
            "--config.env",
            "JAVA_HOME=/u01/jdk",
            "--config.env",
            "ORACLE_HOME=/u01/oracle",
            "--config.env",
            "DOMAIN_HOME=/u01/domains/base_domain",
        ],
    );
    let reference = format!("{}/weblogic:12.2.1.4", registry.host());
    run(Command::new("skopeo")
        .args(["copy", "--format", "v2s2", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:wls", layout.display()))
        .arg(format!("docker://{reference}")));
    reference
}

#[test]
fn inspects_a_docker_format_image_written_by_skopeo() {
    let registry = Registry::start();
    let reference = docker_format_weblogic_image(&registry);
    let raw: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))))
    .unwrap();
    assert_eq!(
        raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "the fixture must be Docker format"
    );

    let pf = Patchfarm::new();
    let out: serde_json::Value =
        serde_json::from_str(&pf.ok(&["inspect", "--image", &reference, "--patches"])).unwrap();
    assert_eq!(out["os"]["id"], "debian");
    assert_eq!(out["os"]["name"], "Debian GNU/Linux");
    assert_eq!(out["os"]["version"], "12");
    assert_eq!(
        out["os"]["architecture"], "x86_64",
        "uname -m, as WIT prints it"
    );
    assert_eq!(out["packageManager"], "APTGET");
    assert_eq!(out["javaHome"], "/u01/jdk");
    assert_eq!(out["javaVersion"], "1.8.0_401");
    assert_eq!(out["oracleHome"], "/u01/oracle");
    assert_eq!(out["oracleHomeUser"], "oracle");
    assert_eq!(out["oracleHomeGroup"], "oracle");
    assert_eq!(out["wlsVersion"], "12.2.1.4.0");
    assert_eq!(out["oracleInstalledProducts"], "WLS,COH");
    assert_eq!(out["domainHome"], "/u01/domains/base_domain");
    assert_eq!(out["opatchVersion"], "13.9.4.2.17");
    assert_eq!(
        out["wdtModelOnly"], true,
        "DOMAIN_HOME is set but the image holds no domain there (WIT's rule)"
    );
    assert_eq!(out["oraclePatches"][0]["patch"], "37000001");
    assert_eq!(
        out["oraclePatches"][0]["description"],
        "WLS PATCH SET UPDATE 12.2.1.4.261001"
    );
    assert!(
        out.get("wdtVersion").is_none(),
        "undeterminable fields are omitted: {out}"
    );

    // Without --patches the list is not computed.
    let out: serde_json::Value =
        serde_json::from_str(&pf.ok(&["inspect", "--image", &reference])).unwrap();
    assert!(out.get("oraclePatches").is_none());
}
