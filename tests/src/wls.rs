//! A WebLogic test bed: a registry with a base image and a patchfarm whose cache holds the
//! fixture Oracle Home and patches, plus helpers to look inside pushed images.

use crate::weblogic::{self, Act, WLS_VERSION};
use crate::{busybox_base, run, Patchfarm, Registry};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PSU: &str = "37000001";
pub const REC: &str = "37000002";
pub const OVERLAY: &str = "37000003";
pub const CONFLICT: &str = "37000004";
pub const ESCAPE: &str = "37000005";

/// A registry with a base image, a patchfarm whose cache holds the Oracle Home and patches.
pub struct Wls {
    pub registry: Registry,
    pub base: String,
    pub pf: Patchfarm,
    pub dir: tempfile::TempDir,
}

pub fn key(bug: &str) -> String {
    format!("{bug}_{WLS_VERSION}")
}

impl Wls {
    pub fn new() -> Self {
        let registry = Registry::start();
        let base = busybox_base(&registry);
        Self::with(registry, base)
    }

    pub fn with(registry: Registry, base: String) -> Self {
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

    pub fn catalog(&self) -> PathBuf {
        self.dir.path().join("catalog.yaml")
    }

    pub fn add_installer(&self, kind: &str, version: &str, path: &Path) {
        self.pf.add_installer(kind, version, path);
    }

    pub fn add_patch(&self, bug: &str, path: &Path) {
        self.add_patch_key(&key(bug), path);
    }

    /// `cache addPatch` under a whole key (`28186730_13.9.4.2.17`).
    pub fn add_patch_key(&self, key: &str, path: &Path) {
        self.pf.ok(&[
            "cache",
            "addPatch",
            "--patchId",
            key,
            "--path",
            &path.display().to_string(),
        ]);
    }

    /// Caches a fake JDK as jdk_17 (for tests that never run Java).
    pub fn fake_jdk(&self) {
        let jdk = self.dir.path().join("fake-jdk.tar.gz");
        weblogic::fake_jdk_tgz(&jdk, "17.0.99");
        self.add_installer("jdk", "17", &jdk);
    }

    pub fn tag(&self, name: &str) -> String {
        format!("{}/wls/{name}", self.registry.host())
    }

    pub fn create(&self, tag: &str, extra: &[&str]) -> serde_json::Value {
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

    pub fn create_fails(&self, tag: &str, extra: &[&str]) -> String {
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
pub fn unpack(reference: &str) -> (tempfile::TempDir, PathBuf) {
    let (work, layout) = layout(reference);
    let bundle = work.path().join("b");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:x", layout.display()))
        .arg(&bundle));
    (work, bundle.join("rootfs"))
}

/// Copies `reference` into an OCI layout (tag `x`) with skopeo; returns (work dir, layout).
pub fn layout(reference: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("l");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:x", layout.display())));
    (work, layout)
}

pub fn jar_entry(jar: &Path, name: &str) -> Vec<u8> {
    patchfarm_engine::opatch::apply::jar_entry(&std::fs::read(jar).unwrap(), name)
        .unwrap_or_else(|| panic!("{name} missing from {}", jar.display()))
}

/// The media types of `reference`'s layers, bottom first.
pub fn layer_media_types(reference: &str) -> Vec<String> {
    raw(reference)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

pub fn raw(reference: &str) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))))
    .unwrap()
}

/// File `path` (relative, no leading `/`) as the top layer of `reference`, pushed to `registry`,
/// holds it: read from the registry's own storage (the layer a build step added, without
/// pulling the image under it).
pub fn top_layer_file(registry: &Registry, reference: &str, path: &str) -> Option<String> {
    let layers = raw(reference)["layers"].as_array()?.len();
    layer_entries(registry, reference, layers - 1)
        .into_iter()
        .find(|(name, _)| name == path)
        .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned())
}

/// Every entry of layer `index` (from the bottom) of `reference`, pushed to `registry`, with its
/// content: read from the registry's own storage.
pub fn layer_entries(registry: &Registry, reference: &str, index: usize) -> Vec<(String, Vec<u8>)> {
    let manifest = raw(reference);
    let digest = manifest["layers"][index]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = std::fs::File::open(registry.blob_path(&digest)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        out.push((name, bytes));
    }
    out
}

/// Fails unless `reference` is absent from its registry (a failed build tagged nothing).
pub fn assert_not_pushed(reference: &str) {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{reference} was pushed");
}

/// The image config of `reference` (skopeo's `inspect --config`).
pub fn raw_config(reference: &str) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))))
    .unwrap()
}

/// What made each layer of `reference`, bottom first: its config's history without the
/// entries that made no layer.
pub fn layer_history(reference: &str) -> Vec<String> {
    raw_config(reference)["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .map(|h| h["created_by"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The manifest digest of `reference` as the registry reports it.
pub fn raw_digest(reference: &str) -> String {
    run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}")))
    .trim()
    .to_string()
}

impl Default for Wls {
    fn default() -> Self {
        Self::new()
    }
}

/// A Domain-in-Image domain home, as tests build it (relative to the rootfs).
pub const DOMAIN: &str = "u01/domains/base_domain";
/// Binary content that must survive a rebase byte for byte.
pub const INI: &[u8] = b"\x00\x01SerializedSystemIni: secret salt \xfe\xff";

/// Copies `reference` into a layout, lets `change` edit its rootfs and umoci config arguments,
/// repacks with umoci and pushes the result as `target`.
pub fn derive(reference: &str, target: &str, change: impl FnOnce(&Path), config: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("l");
    let image = format!("{}:x", layout.display());
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{image}")));
    let bundle = work.path().join("b");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    change(&bundle.join("rootfs"));
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    if !config.is_empty() {
        run(Command::new("umoci")
            .args(["config", "--image", &image])
            .args(config));
    }
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{target}")));
}

/// Adds a small domain (config.xml, SerializedSystemIni.dat) owned by 1000:1000.
pub fn add_domain(rootfs: &Path) {
    let domain = rootfs.join(DOMAIN);
    std::fs::create_dir_all(domain.join("config")).unwrap();
    std::fs::create_dir_all(domain.join("security")).unwrap();
    std::fs::write(
        domain.join("config/config.xml"),
        "<domain><name>payments</name></domain>\n",
    )
    .unwrap();
    std::fs::write(domain.join("security/SerializedSystemIni.dat"), INI).unwrap();
    for p in [
        DOMAIN,
        &format!("{DOMAIN}/config"),
        &format!("{DOMAIN}/security"),
        &format!("{DOMAIN}/config/config.xml"),
        &format!("{DOMAIN}/security/SerializedSystemIni.dat"),
    ] {
        std::os::unix::fs::chown(rootfs.join(p), Some(1000), Some(1000)).unwrap();
    }
}

/// umoci config arguments that make an image a Domain-in-Image image of that domain.
pub const DOMAIN_CONFIG: &[&str] = &[
    "--config.env",
    "DOMAIN_HOME=/u01/domains/base_domain",
    "--config.workingdir",
    "/u01/domains/base_domain",
    "--config.label",
    "com.example.domain=payments",
    "--config.cmd",
    "/u01/domains/base_domain/startWebLogic.sh",
];

/// Every byte `reference` holds: each blob as stored and, for a gzip layer, its tar too.
pub fn image_bytes(reference: &str) -> Vec<u8> {
    let (_work, layout) = layout(reference);
    let mut all = Vec::new();
    for blob in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let bytes = std::fs::read(blob.unwrap().path()).unwrap();
        let mut plain = Vec::new();
        if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
            .is_ok()
        {
            all.extend(plain);
        }
        all.extend(bytes);
    }
    all
}
