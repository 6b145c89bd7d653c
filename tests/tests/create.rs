//! `create` and `update` end to end: a fixture Oracle Home and OPatch patches, the machine's real
//! JDK, a real registry, checked with umoci, skopeo, `patchfarm inspect` and the Docker engine.

use patchfarm_e2e::weblogic::{self, Act, JAR, ORIGINAL_ENTRIES, WLS_VERSION};
use patchfarm_e2e::{busybox_base, busybox_multiarch, docker_available, run, Patchfarm, Registry};
use std::path::{Path, PathBuf};
use std::process::Command;

const PSU: &str = "37000001";
const REC: &str = "37000002";
const OVERLAY: &str = "37000003";
const CONFLICT: &str = "37000004";
const ESCAPE: &str = "37000005";

/// A registry with a base image, a patchfarm whose cache holds the Oracle Home and patches.
struct Wls {
    registry: Registry,
    base: String,
    pf: Patchfarm,
    dir: tempfile::TempDir,
}

fn key(bug: &str) -> String {
    format!("{bug}_{WLS_VERSION}")
}

impl Wls {
    fn new() -> Self {
        let registry = Registry::start();
        let base = busybox_base(&registry);
        Self::with(registry, base)
    }

    fn with(registry: Registry, base: String) -> Self {
        let wls = Wls {
            registry,
            base,
            pf: Patchfarm::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        let home = wls.dir.path().join("wls.zip");
        weblogic::oracle_home_zip(&home, WLS_VERSION);
        wls.add_installer("wls", WLS_VERSION, &home);
        let d = wls.dir.path();
        let readme = |content: &'static [u8]| Act::Copy {
            dir: "wlserver/server/lib",
            name: "readme.txt",
            content,
        };
        let jar = |entry: &'static str, content: &'static [u8]| Act::Jar {
            dir: "wlserver/server/lib",
            jar: "weblogic.jar",
            entry,
            content,
        };
        wls.add_patch(
            PSU,
            &weblogic::patch_zip(
                d,
                PSU,
                WLS_VERSION,
                &[],
                &[
                    readme(b"PSU readme\n"),
                    jar("weblogic/Server.class", b"PSU Server"),
                ],
            ),
        );
        wls.add_patch(
            REC,
            &weblogic::patch_zip(
                d,
                REC,
                WLS_VERSION,
                &[],
                &[jar("weblogic/Util.class", b"REC Util")],
            ),
        );
        wls.add_patch(
            OVERLAY,
            &weblogic::patch_zip(
                d,
                OVERLAY,
                WLS_VERSION,
                &[PSU],
                &[jar("weblogic/Server.class", b"OVERLAY Server")],
            ),
        );
        wls.add_patch(
            CONFLICT,
            &weblogic::patch_zip(
                d,
                CONFLICT,
                WLS_VERSION,
                &[],
                &[readme(b"conflicting readme\n")],
            ),
        );
        wls.add_patch(
            ESCAPE,
            &weblogic::patch_zip(
                d,
                ESCAPE,
                WLS_VERSION,
                &[],
                &[Act::Copy {
                    dir: "../../etc",
                    name: "passwd",
                    content: b"pwned",
                }],
            ),
        );
        weblogic::catalog(&wls.catalog(), &key(PSU), &[&key(REC)]);
        wls
    }

    fn catalog(&self) -> PathBuf {
        self.dir.path().join("catalog.yaml")
    }

    fn add_installer(&self, kind: &str, version: &str, path: &Path) {
        self.pf.ok(&[
            "cache",
            "addInstaller",
            "--type",
            kind,
            "--version",
            version,
            "--path",
            &path.display().to_string(),
        ]);
    }

    fn add_patch(&self, bug: &str, path: &Path) {
        self.pf.ok(&[
            "cache",
            "addPatch",
            "--patchId",
            &key(bug),
            "--path",
            &path.display().to_string(),
        ]);
    }

    /// Caches a fake JDK as jdk_17 (for tests that never run Java).
    fn fake_jdk(&self) {
        let jdk = self.dir.path().join("fake-jdk.tar.gz");
        weblogic::fake_jdk_tgz(&jdk, "17.0.99");
        self.add_installer("jdk", "17", &jdk);
    }

    fn tag(&self, name: &str) -> String {
        format!("{}/wls/{name}", self.registry.host())
    }

    fn create(&self, tag: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![
            "create",
            "--json",
            "--tag",
            tag,
            "--fromImage",
            &self.base,
            "--jdkVersion",
            "17",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.pf.ok(&args)).unwrap()
    }

    fn create_fails(&self, tag: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "create",
            "--tag",
            tag,
            "--fromImage",
            &self.base,
            "--jdkVersion",
            "17",
        ];
        args.extend_from_slice(extra);
        self.pf.fails(&args)
    }
}

/// Unpacks `reference` with umoci; returns (work dir, rootfs).
fn unpack(reference: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("l");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:x", layout.display())));
    let bundle = work.path().join("b");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:x", layout.display()))
        .arg(&bundle));
    (work, bundle.join("rootfs"))
}

fn jar_entry(jar: &Path, name: &str) -> Vec<u8> {
    patchfarm_engine::opatch::apply::jar_entry(&std::fs::read(jar).unwrap(), name)
        .unwrap_or_else(|| panic!("{name} missing from {}", jar.display()))
}

fn raw(reference: &str) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))))
    .unwrap()
}

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

    let err = wls.create_fails(&tag, &["--wdtOperation", "CREATE"]);
    assert!(err.contains("--wdtOperation"), "{err}");

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
    let err = wls.create_fails(&tag, &[]);
    assert!(
        err.contains("Oracle Universal Installer") && err.contains("container"),
        "{err}"
    );
    assert!(
        wls.registry.tags("wls/refused").is_empty(),
        "nothing may be pushed"
    );
}

#[test]
fn update_adds_one_layer_with_only_the_changed_files() {
    let wls = Wls::new();
    wls.fake_jdk();
    let base = wls.tag("app:base");
    wls.create(&base, &[]);
    let updated = wls.tag("app:patched");
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

fn raw_digest(reference: &str) -> String {
    run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}")))
    .trim()
    .to_string()
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
