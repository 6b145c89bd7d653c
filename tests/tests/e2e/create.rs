//! `create` end to end: a fixture Oracle Home and OPatch patches, the machine's real JDK, a real
//! registry, checked with umoci, skopeo, `patchfarm inspect` and the Docker engine.

use patchfarm_e2e::weblogic::{self, Act, JAR, ORIGINAL_ENTRIES, WLS_VERSION};
use patchfarm_e2e::wls::*;
use patchfarm_e2e::{docker_available, run, Registry};
use std::process::Command;

#[test]
fn create_with_recommended_patches_and_the_real_jdk() {
    let wls = Wls::new();
    let (jdk_tgz, java_version, jdk_dir) = weblogic::real_jdk_tgz();
    wls.add_installer("jdk", "17", jdk_tgz);
    let tag = wls.tag("base:14.1");
    let catalog = wls.catalog().display().to_string();
    wls.create(&tag, &["--recommendedPatches", "--patchCatalog", &catalog]);

    let (_work, root) = unpack(&tag);
    assert_eq!(
        std::fs::read(root.join("u01/jdk/release")).unwrap(),
        std::fs::read(jdk_dir.join("release")).unwrap()
    );
    assert!(root.join("u01/jdk/bin/java").is_file());
    assert!(root.join("u01/oracle/inventory/registry.xml").is_file());
    let jar = root.join("u01/oracle").join(JAR);
    assert_eq!(jar_entry(&jar, "weblogic/Server.class"), b"PSU Server");
    assert_eq!(jar_entry(&jar, "weblogic/Util.class"), b"REC Util");
    for (name, bytes) in ORIGINAL_ENTRIES
        .iter()
        .filter(|(n, _)| !n.ends_with("Server.class") && !n.ends_with("Util.class"))
    {
        assert_eq!(&jar_entry(&jar, name), bytes, "{name} must be unchanged");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("u01/oracle/wlserver/server/lib/readme.txt")).unwrap(),
        "PSU readme\n"
    );
    for bug in [PSU, REC] {
        assert!(root
            .join(format!(
                "u01/oracle/inventory/oneoffs/{bug}/etc/config/inventory.xml"
            ))
            .is_file());
        assert!(root
            .join(format!(
                "u01/oracle/inventory/oneoffs/{bug}/etc/config/actions.xml"
            ))
            .is_file());
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root.join("u01/oracle")).unwrap().uid(),
        1000
    );
    assert!(std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .contains("oracle:x:1000:1000:"));
    assert_eq!(
        std::fs::read_to_string(root.join("u01/oracle/oraInst.loc")).unwrap(),
        "inventory_loc=/u01/oracle/oraInventory\ninst_group=oracle\n"
    );

    let inspected: serde_json::Value =
        serde_json::from_str(&wls.pf.ok(&["inspect", "--image", &tag, "--patches"])).unwrap();
    assert_eq!(inspected["javaHome"], "/u01/jdk");
    assert_eq!(inspected["javaVersion"].as_str().unwrap(), java_version);
    assert_eq!(inspected["wlsVersion"], WLS_VERSION);
    assert_eq!(inspected["oracleHomeUser"], "oracle");
    let patches: Vec<&str> = inspected["oraclePatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["patch"].as_str().unwrap())
        .collect();
    assert_eq!(patches, vec![PSU, REC]);
    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))))
    .unwrap();
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.patchfarm.patches"], format!("{PSU},{REC}"));
    assert_eq!(labels["org.patchfarm.psu"], key(PSU));
    assert!(labels["org.patchfarm.inputs"]
        .as_str()
        .unwrap()
        .contains("jdk_17"));
    assert_eq!(config["config"]["User"], "oracle");
    assert_eq!(config["config"]["WorkingDir"], "/u01/oracle");
    assert!(config["config"]["Entrypoint"].is_null());
}

#[test]
fn create_on_debian_runs_the_real_java_as_oracle() {
    let registry = Registry::start();
    let base = weblogic::debian_base(&registry);
    let wls = Wls::with(registry, base);
    let (jdk_tgz, java_version, _) = weblogic::real_jdk_tgz();
    wls.add_installer("jdk", "17", jdk_tgz);
    let tag = wls.tag("debian:1");
    wls.create(&tag, &["--patches", &key(PSU)]);
    if !docker_available("create_on_debian_runs_the_real_java_as_oracle") {
        return;
    }
    run(Command::new("docker").args(["pull", "-q", &tag]));
    let out = Command::new("docker")
        .args(["run", "--rm", &tag, "/u01/jdk/bin/java", "-version"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let id = run(Command::new("docker").args(["run", "--rm", &tag, "id"]));
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    assert!(
        out.status.success() && text.contains(java_version.as_str()),
        "java -version: {text}"
    );
    assert!(
        id.contains("uid=1000(oracle)") && id.contains("gid=1000(oracle)"),
        "{id}"
    );
}

#[test]
fn same_inputs_same_digest_and_an_overlay_is_accepted() {
    let wls = Wls::new();
    wls.fake_jdk();
    let patches = format!("{},{}", key(PSU), key(OVERLAY));
    let first = wls.create(&wls.tag("det:1"), &["--patches", &patches]);
    let again = wls.create(&wls.tag("det:2"), &["--patches", &patches]);
    assert_eq!(first["digest"], again["digest"]);
    let (_work, root) = unpack(&wls.tag("det:1"));
    assert_eq!(
        jar_entry(&root.join("u01/oracle").join(JAR), "weblogic/Server.class"),
        b"OVERLAY Server",
        "the overlay applies after its base"
    );
}

#[test]
fn bad_patches_and_installers_are_refused_before_anything_is_pushed() {
    let wls = Wls::new();
    wls.fake_jdk();
    let tag = wls.tag("refused:1");
    let err = wls.create_fails(
        &tag,
        &["--patches", &format!("{},{}", key(PSU), key(CONFLICT))],
    );
    assert!(
        err.contains(&key(PSU))
            && err.contains(&key(CONFLICT))
            && err.contains("wlserver/server/lib/readme.txt"),
        "{err}"
    );
    let err = wls.create_fails(&tag, &["--patches", &key(ESCAPE)]);
    assert!(
        err.contains(&key(ESCAPE)) && err.contains("refused") && err.contains(".."),
        "{err}"
    );

    let corrupt = wls.dir.path().join("corrupt.zip");
    std::fs::write(&corrupt, b"this is not a zip").unwrap();
    wls.add_patch("37000007", &corrupt);
    let err = wls.create_fails(&tag, &["--patches", &key("37000007")]);
    assert!(
        err.contains(&key("37000007")) && err.contains("not a valid patch zip"),
        "{err}"
    );

    let other = wls.dir.path().join("p37000006.zip");
    std::fs::copy(
        weblogic::patch_zip(
            wls.dir.path(),
            "37000006",
            "14.1.1.0.0",
            &[],
            &[Act::Copy {
                dir: "x",
                name: "y",
                content: b"z",
            }],
        ),
        &other,
    )
    .unwrap();
    wls.pf.ok(&[
        "cache",
        "addPatch",
        "--patchId",
        "37000006_14.1.1.0.0",
        "--path",
        &other.display().to_string(),
    ]);
    let err = wls.create_fails(&tag, &["--patches", "37000006_14.1.1.0.0"]);
    assert!(
        err.contains("14.1.1.0.0") && err.contains(WLS_VERSION),
        "{err}"
    );

    let missing = wls.dir.path().join("missing.yaml");
    weblogic::catalog(&missing, "38000001_12.2.1.4.0", &["38000002_12.2.1.4.0"]);
    let err = wls.create_fails(
        &tag,
        &[
            "--recommendedPatches",
            "--patchCatalog",
            &missing.display().to_string(),
        ],
    );
    assert!(
        err.contains("38000001_12.2.1.4.0") && err.contains("38000002_12.2.1.4.0"),
        "every missing key is listed: {err}"
    );

    let err = wls.create_fails(&tag, &["--wdtOperation", "DESTROY"]);
    assert!(
        err.contains("--wdtOperation") && err.contains("CREATE, UPDATE or DEPLOY"),
        "{err}"
    );

    let oui = wls.dir.path().join("fmw_12.2.1.4.0_wls_Disk1_1of1.zip");
    weblogic::oui_installer_zip(&oui);
    wls.pf.ok(&[
        "cache",
        "addInstaller",
        "--type",
        "wls",
        "--version",
        WLS_VERSION,
        "--path",
        &oui.display().to_string(),
        "--force",
    ]);
    // Run as Oracle's installer (through the executor), it fails: no Java here, no installer.
    let err = wls.create_fails(&tag, &[]);
    assert!(
        err.contains(&format!("installer wls_{WLS_VERSION}")),
        "{err}"
    );
    assert!(
        wls.registry.tags("wls/refused").is_empty(),
        "nothing may be pushed"
    );
}

/// Packs the Oracle Home directory `home` as NAME.tar.gz (links kept, as GNU tar does) and
/// caches it as the wls installer in place of the fixture's.
fn cache_home_tgz(wls: &Wls, home: &std::path::Path, name: &str) {
    let tgz = wls.dir.path().join(format!("{name}.tar.gz"));
    run(Command::new("tar")
        .arg("-C")
        .arg(home)
        .arg("-czf")
        .arg(&tgz)
        .arg("."));
    wls.pf.ok(&[
        "cache",
        "addInstaller",
        "--type",
        "wls",
        "--version",
        WLS_VERSION,
        "--path",
        &tgz.display().to_string(),
        "--force",
    ]);
}

#[test]
fn a_patch_writing_through_a_symlink_out_of_oracle_home_is_refused() {
    let wls = Wls::new();
    wls.fake_jdk();
    // An installed Oracle Home (tar.gz) whose wlserver/server/lib points outside it.
    let home = wls.dir.path().join("home");
    std::fs::create_dir_all(home.join("inventory")).unwrap();
    std::fs::create_dir_all(home.join("wlserver/server")).unwrap();
    std::fs::write(home.join("inventory/registry.xml"), format!("<registry><distributions><distribution name=\"WebLogic Server\" version=\"{WLS_VERSION}\"/></distributions></registry>")).unwrap();
    std::os::unix::fs::symlink("/etc", home.join("wlserver/server/lib")).unwrap();
    cache_home_tgz(&wls, &home, "linked-home");
    let err = wls.create_fails(&wls.tag("linked:1"), &["--patches", &key(PSU)]);
    assert!(
        err.contains("symlink") && err.contains("wlserver/server/lib") && err.contains(&key(PSU)),
        "{err}"
    );
    assert!(wls.registry.tags("wls/linked").is_empty());
}

#[test]
fn dry_run_shows_inputs_patches_and_config_and_pushes_nothing() {
    let wls = Wls::new();
    wls.fake_jdk();
    let model = wls.dir.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let extra = wls.dir.path().join("start.sh");
    std::fs::write(&extra, "#!/bin/sh\n").unwrap();
    let args = [
        "create",
        "--dryRun",
        "--tag",
        &wls.tag("dry:1"),
        "--fromImage",
        &wls.base,
        "--jdkVersion",
        "17",
        "--patches",
        &format!("{},{}", key(OVERLAY), key(PSU)),
        "--wdtModel",
        &model.display().to_string(),
        "--wdtModelOnly",
        "--wdtVersion",
        "none",
        "--addFile",
        &format!("{}:/u01/oracle/start.sh", extra.display()),
    ];
    let plan: serde_json::Value = serde_json::from_str(&wls.pf.ok(&args)).unwrap();
    let image = &plan["images"][0];
    let order: Vec<&str> = image["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![key(PSU), key(OVERLAY)],
        "an overlay applies after its base"
    );
    assert!(image["patches"][0]["sha256"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(image["oracleHome"]["version"], WLS_VERSION);
    assert_eq!(
        image["layers"].as_array().unwrap().len(),
        3,
        "JDK, Oracle Home, WDT + additional files"
    );
    let env: Vec<&str> = image["config"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for want in [
        "JAVA_HOME=/u01/jdk",
        "ORACLE_HOME=/u01/oracle",
        "WDT_MODEL_HOME=/u01/wdt/models",
    ] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
    assert!(
        wls.registry.tags("wls/dry").is_empty(),
        "a dry run pushes nothing"
    );
}

#[test]
fn patch_records_are_never_written_through_links_in_the_oracle_home() {
    let wls = Wls::new();
    wls.fake_jdk();
    // Stands for the build host's own files, which a hostile Oracle Home points at.
    let host = wls.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("passwd"), b"host file\n").unwrap();
    let record = format!("inventory/oneoffs/{PSU}/etc/config/inventory.xml");
    for (name, link, target) in [
        ("dir", "inventory/oneoffs", host.clone()),
        ("leaf", record.as_str(), host.join("passwd")),
    ] {
        let zip = wls.dir.path().join(format!("home-{name}.zip"));
        patchfarm_e2e::weblogic::oracle_home_zip(&zip, WLS_VERSION);
        let home = wls.dir.path().join(format!("home-{name}"));
        zip::ZipArchive::new(std::fs::File::open(&zip).unwrap())
            .unwrap()
            .extract(&home)
            .unwrap();
        let at = home.join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &at).unwrap();
        cache_home_tgz(&wls, &home, &format!("home-{name}"));
        let tag = wls.tag(&format!("records-{name}:1"));
        let err = wls.create_fails(&tag, &["--patches", &key(PSU)]);
        assert!(
            err.contains("symbolic link") && err.contains(link),
            "{name}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(&host).unwrap().count(),
            1,
            "{name}: nothing created among the host's files"
        );
        assert_eq!(std::fs::read(host.join("passwd")).unwrap(), b"host file\n");
        assert!(wls.registry.tags(&format!("wls/records-{name}")).is_empty());
    }
}

#[test]
fn setuid_bits_from_an_installer_are_dropped_unless_kept() {
    use std::os::unix::fs::PermissionsExt;
    let wls = Wls::new();
    let staging = tempfile::tempdir().unwrap();
    let jdk = staging.path().join("jdk-suid");
    std::fs::create_dir_all(jdk.join("bin")).unwrap();
    std::fs::write(jdk.join("release"), "JAVA_VERSION=\"17.0.99\"\n").unwrap();
    std::fs::write(jdk.join("bin/helper"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        jdk.join("bin/helper"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let archive = staging.path().join("jdk.tar.gz");
    run(Command::new("tar")
        .arg("-C")
        .arg(staging.path())
        .arg("-czf")
        .arg(&archive)
        .arg("jdk-suid"));
    wls.add_installer("jdk", "17", &archive);
    let mode = |extra: &[&str], name: &str| {
        let tag = wls.tag(name);
        wls.create(&tag, extra);
        let (_work, root) = unpack(&tag);
        std::fs::metadata(root.join("u01/jdk/bin/helper"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(&[], "suid:dropped"), 0o755);
    assert_eq!(mode(&["--keep-setuid"], "suid:kept"), 0o4755);
}

/// A second `create` with the same JDK but other patches takes the JDK's layer from the
/// built-layer cache instead of writing and compressing it again, at the same digest; a third
/// with the same patches takes the patched Oracle Home's too. Another owner or another epoch is
/// another layer: built anew.
#[test]
fn layers_built_before_are_reused_and_other_inputs_miss() {
    let wls = Wls::new();
    wls.fake_jdk();
    let base_layers = raw(&wls.base)["layers"].as_array().unwrap().len();
    let layer = |tag: &str, n: usize| raw(tag)["layers"][base_layers + n]["digest"].clone();
    // How many layers the build took from the cache.
    let create = |tag: &str, extra: &[&str], epoch: Option<&str>| {
        let mut args = vec![
            "create",
            "-v",
            "--tag",
            tag,
            "--fromImage",
            &wls.base,
            "--jdkVersion",
            "17",
        ];
        args.extend_from_slice(extra);
        let mut command = wls.pf.command(&args);
        if let Some(epoch) = epoch {
            command.env("SOURCE_DATE_EPOCH", epoch);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr.matches("reused from the built-layer cache").count()
    };
    let (first, second, third) = (wls.tag("reuse:1"), wls.tag("reuse:2"), wls.tag("reuse:3"));
    assert_eq!(create(&first, &[], None), 0, "nothing built before");
    let psu = key(PSU);
    assert_eq!(
        create(&second, &["--patches", &psu], None),
        1,
        "the same JDK and owner: its layer reused; the home is patched otherwise"
    );
    assert_eq!(layer(&first, 0), layer(&second, 0));
    assert_ne!(layer(&first, 1), layer(&second, 1));
    assert_eq!(create(&third, &["--patches", &psu], None), 2, "both");
    assert_eq!(layer(&second, 1), layer(&third, 1));
    let owner = wls.tag("reuse:owner");
    assert_eq!(
        create(&owner, &["--chown", "1234:1234"], None),
        0,
        "another owner"
    );
    assert_ne!(layer(&owner, 0), layer(&first, 0));
    let epoch = wls.tag("reuse:epoch");
    assert_eq!(create(&epoch, &[], Some("1700000000")), 0, "another epoch");
    assert_ne!(layer(&epoch, 0), layer(&first, 0));
}
