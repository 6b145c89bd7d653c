//! `inspect` on images patchfarm did not build: a Docker schema-2 image written by skopeo, and
//! Oracle Linux shaped images whose rpm databases the real rpm wrote.

use patchfarm_e2e::{rpm, run, umoci_image, Patchfarm, Registry};
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
        out["os"].get("releasePackage").is_none(),
        "no rpm database, no releasePackage (WIT's probe prints none without rpm): {out}"
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

/// An image whose root `populate` fills, pushed as `REGISTRY/name:1`.
fn pushed(registry: &Registry, name: &str, populate: impl FnOnce(&Path)) -> String {
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), name, populate, &[]);
    let reference = format!("{}/{name}:1", registry.host());
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{name}", layout.display()))
        .arg(format!("docker://{reference}")));
    reference
}

#[test]
fn release_package_is_read_from_ol8_and_ol9_rpm_databases() {
    let registry = Registry::start();
    let pf = Patchfarm::new();
    let os = |reference: &str| -> serde_json::Value {
        let out: serde_json::Value =
            serde_json::from_str(&pf.ok(&["inspect", "--image", reference])).unwrap();
        out["os"].clone()
    };

    // OL9: rpm 4.16+ keeps its database in SQLite.
    let mut ol9_owner = String::new();
    let ol9 = pushed(&registry, "ol9", |root| {
        ol9_owner = rpm::install_release_packages(root, "9.4", "1.0.2.el9");
        assert!(root.join("var/lib/rpm/rpmdb.sqlite").is_file());
    });
    assert_eq!(ol9_owner, "oraclelinux-release-9.4-1.0.2.el9.x86_64");
    let found = os(&ol9);
    assert_eq!(found["releasePackage"], ol9_owner.as_str(), "{found}");
    assert_eq!(found["id"], "ol");
    assert_eq!(found["version"], "9.4");

    // OL8: Berkeley DB, with a header on overflow pages and rpm's counter record.
    let mut ol8_owner = String::new();
    let ol8 = pushed(&registry, "ol8", |root| {
        ol8_owner = rpm::install_release_packages(root, "8.9", "1.0.7.el8");
        rpm::convert_to_berkeley_db(root);
        assert!(!root.join("var/lib/rpm/rpmdb.sqlite").exists());
    });
    let found = os(&ol8);
    assert_eq!(
        found["releasePackage"], "oraclelinux-release-8.9-1.0.7.el8.x86_64",
        "{found}"
    );
    assert_eq!(ol8_owner, "oraclelinux-release-8.9-1.0.7.el8.x86_64");

    // A damaged database costs the key, not the inspection.
    let damaged = pushed(&registry, "damaged", |root| {
        rpm::install_release_packages(root, "8.9", "1.0.7.el8");
        rpm::convert_to_berkeley_db(root);
        let packages = root.join("var/lib/rpm/Packages");
        let bytes = std::fs::read(&packages).unwrap();
        std::fs::write(&packages, &bytes[..bytes.len() / 2]).unwrap();
    });
    let found = os(&damaged);
    assert_eq!(found["id"], "ol", "the rest is still read: {found}");
    assert!(found.get("releasePackage").is_none(), "{found}");
}
