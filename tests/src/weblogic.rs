//! WebLogic-shaped fixtures made by test code: an installed Oracle Home archive with jars holding
//! classes, OPatch one-off patch zips (copy and jar actions, overlays, conflicts, escapes), a patch
//! catalog, JDK installers (the machine's real JDK, or a tiny fake one), and a Debian base image.

use crate::tools::{require_tool, run};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const WLS_VERSION: &str = "12.2.1.4.0";
pub const JAR: &str = "wlserver/server/lib/weblogic.jar";

/// The untouched content of the fixture Oracle Home's jar entries.
pub const ORIGINAL_ENTRIES: &[(&str, &[u8])] = &[
    (
        "META-INF/MANIFEST.MF",
        b"Manifest-Version: 1.0\nCreated-By: patchfarm fixture\n",
    ),
    ("weblogic/Server.class", b"\xca\xfe\xba\xbe original Server"),
    ("weblogic/Util.class", b"\xca\xfe\xba\xbe original Util"),
    (
        "weblogic/Untouched.class",
        b"\xca\xfe\xba\xbe never patched",
    ),
];

fn zip_with(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            zip.add_directory(*name, options.unix_permissions(0o755))
                .unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
    }
    zip.finish().unwrap();
}

fn jar_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jar");
    zip_with(&path, entries);
    std::fs::read(path).unwrap()
}

/// An installed Oracle Home (native form) as a zip whose root holds inventory/registry.xml.
pub fn oracle_home_zip(path: &Path, version: &str) {
    let registry = format!(
        "<?xml version=\"1.0\"?>\n<registry home=\"/u01/oracle\"><distributions>\n<distribution status=\"installed\" name=\"WebLogic Server\" version=\"{version}\"/>\n<distribution status=\"installed\" name=\"Coherence\" version=\"{version}\"/>\n</distributions></registry>\n"
    );
    let jar = jar_bytes(ORIGINAL_ENTRIES);
    zip_with(
        path,
        &[
            ("inventory/", b""),
            ("inventory/registry.xml", registry.as_bytes()),
            ("wlserver/server/lib/", b""),
            (JAR, &jar),
            ("wlserver/server/lib/readme.txt", b"original readme\n"),
            ("oracle_common/common/bin/", b""),
            ("oracle_common/common/bin/wlst.sh", b"#!/bin/sh\n"),
        ],
    );
}

/// One more product installed into an Oracle Home (what OUI leaves after SOA's installer ran
/// over FMW's, say), as a zip: its registry.xml names `product`, beside `files`.
pub fn product_home_zip(path: &Path, version: &str, product: &str, files: &[(&str, &[u8])]) {
    let registry = format!(
        "<?xml version=\"1.0\"?>\n<registry home=\"/u01/oracle\"><distributions>\n<distribution status=\"installed\" name=\"{product}\" version=\"{version}\"/>\n</distributions></registry>\n"
    );
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("inventory/", b""),
        ("inventory/registry.xml", registry.as_bytes()),
    ];
    entries.extend_from_slice(files);
    zip_with(path, &entries);
}

/// An Oracle Universal Installer archive (what Oracle ships: a .jar inside a zip).
pub fn oui_installer_zip(path: &Path) {
    zip_with(
        path,
        &[("fmw_12.2.1.4.0_wls.jar", b"PK not really an installer")],
    );
}

/// One action of a fixture patch.
pub enum Act<'a> {
    /// Copy payload `content` to `%ORACLE_HOME%/<dir>/<name>`.
    Copy {
        dir: &'a str,
        name: &'a str,
        content: &'a [u8],
    },
    /// Run make in `%ORACLE_HOME%/<dir>`: an action only OPatch itself applies.
    Make { dir: &'a str, target: &'a str },
    /// Replace `entry` in `%ORACLE_HOME%/<dir>/<jar>` with `content`.
    Jar {
        dir: &'a str,
        jar: &'a str,
        entry: &'a str,
        content: &'a [u8],
    },
}

/// A one-off patch zip `p<bug>_<release>_Generic.zip` with inventory.xml, actions.xml and payload.
pub fn patch_zip(
    dir: &Path,
    bug: &str,
    version: &str,
    overlays: &[&str],
    actions: &[Act],
) -> PathBuf {
    let overlay_xml: String = overlays
        .iter()
        .map(|o| format!("<overlay_oneoff number=\"{o}\"/>"))
        .collect();
    let inventory = format!(
        "<?xml version=\"1.0\"?>\n<oneoff_inventory><patch_id number=\"{bug}\"/><unique_patch_id>{bug}9</unique_patch_id>\n<patch_description>fixture patch {bug}</patch_description>\n<required_components><component internal_name=\"oracle.wls.core.app.server\" version=\"{version}\"/></required_components>\n<overlay_oneoffs>{overlay_xml}</overlay_oneoffs></oneoff_inventory>\n"
    );
    let mut action_xml = String::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for action in actions {
        match action {
            Act::Copy { dir, name, content } => {
                let rel = format!("{dir}/{name}").trim_start_matches('/').to_string();
                action_xml.push_str(&format!(
                    "<copy file_name=\"{rel}\" name=\"{name}\" path=\"%ORACLE_HOME%/{dir}\"/>"
                ));
                files.push((format!("{bug}/files/{rel}"), content.to_vec()));
            }
            Act::Jar {
                dir,
                jar,
                entry,
                content,
            } => {
                action_xml.push_str(&format!(
                    "<jar name=\"{jar}\" path=\"%ORACLE_HOME%/{dir}\" class_name=\"{entry}\"/>"
                ));
                files.push((format!("{bug}/files/{dir}/{jar}/{entry}"), content.to_vec()));
            }
            Act::Make { dir, target } => action_xml.push_str(&format!(
                "<make change_dir=\"%ORACLE_HOME%/{dir}\" make_file=\"ins_rdbms.mk\" make_target=\"{target}\"/>"
            )),
        }
    }
    let actions = format!("<?xml version=\"1.0\"?>\n<oneoff_actions><oracle.wls.core.app.server version=\"{version}\">{action_xml}</oracle.wls.core.app.server></oneoff_actions>\n");
    let path = dir.join(format!("p{bug}_{}_Generic.zip", version.replace('.', "")));
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        (
            format!("{bug}/etc/config/inventory.xml"),
            inventory.into_bytes(),
        ),
        (
            format!("{bug}/etc/config/actions.xml"),
            actions.into_bytes(),
        ),
    ];
    entries.extend(files);
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    zip_with(&path, &borrowed);
    path
}

/// A patch catalog naming `psu` and `recommended` for WLS at [`WLS_VERSION`].
pub fn catalog(path: &Path, psu: &str, recommended: &[&str]) {
    let list = recommended.join(", ");
    std::fs::write(path, format!("quarter: 2026-10\nproducts:\n  - type: wls\n    version: {WLS_VERSION}\n    psu: {psu}\n    recommended: [{list}]\n")).unwrap();
}

/// A tiny JDK-shaped tar.gz (bin/java script + release file) for tests that never run Java.
pub fn fake_jdk_tgz(path: &Path, version: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("jdk-fake");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/java"), "#!/bin/sh\necho fake java\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("bin/java"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        root.join("release"),
        format!("JAVA_VERSION=\"{version}\"\n"),
    )
    .unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-czf")
        .arg(path)
        .arg("jdk-fake"));
}

/// The machine's real JDK (smallest under /usr/lib/jvm) packed as Oracle ships JDKs: one top
/// directory, symlinks resolved; jmods and the source zip left out. Made once per test process.
/// Returns (tar.gz, JAVA_VERSION, the JDK directory).
pub fn real_jdk_tgz() -> &'static (PathBuf, String, PathBuf) {
    static JDK: OnceLock<(tempfile::TempDir, (PathBuf, String, PathBuf))> = OnceLock::new();
    &JDK.get_or_init(|| {
        let mut jdks: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
            .expect("a JDK under /usr/lib/jvm")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                !p.is_symlink() && p.join("bin/java").is_file() && p.join("release").is_file()
            })
            .collect();
        jdks.sort_by_key(|p| {
            std::fs::read_dir(p.join("lib"))
                .map(|d| d.count())
                .unwrap_or(0)
        });
        let jdk = jdks
            .into_iter()
            .next()
            .expect("a JDK with bin/java and release under /usr/lib/jvm");
        let release = std::fs::read_to_string(jdk.join("release")).unwrap();
        let version = release
            .lines()
            .find_map(|l| l.strip_prefix("JAVA_VERSION="))
            .unwrap()
            .trim_matches('"')
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("jdk.tar.gz");
        let script = format!(
            "tar -C '{}' -ch --exclude=jmods --exclude=lib/src.zip -f - '{}' | gzip -1 > '{}'",
            jdk.parent().unwrap().display(),
            jdk.file_name().unwrap().to_string_lossy(),
            out.display()
        );
        run(Command::new("bash").arg("-c").arg(&script));
        (dir, (out, version, jdk))
    })
    .1
}

/// A Debian bookworm minbase image (glibc, so the JDK runs), pushed to `registry` as
/// `debian:bookworm`. debootstrap runs once per test process; the rootfs tarball is kept in
/// `target/fixtures/` so later runs on the same checkout skip it.
pub fn debian_base(registry: &crate::Registry) -> String {
    static LAYOUT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let layout = &LAYOUT
        .get_or_init(|| {
            require_tool("debootstrap");
            require_tool("umoci");
            let target = std::env::current_exe()
                .unwrap()
                .parent()
                .and_then(Path::parent)
                .and_then(Path::parent)
                .unwrap()
                .join("fixtures");
            std::fs::create_dir_all(&target).unwrap();
            let tarball = target.join("debian-bookworm-minbase.tar");
            let work = tempfile::tempdir().unwrap();
            if !tarball.is_file() {
                let staging = work.path().join("debootstrap");
                run(Command::new("debootstrap")
                    .args(["--variant=minbase", "bookworm"])
                    .arg(&staging));
                let partial = target.join("debian-bookworm-minbase.tar.partial");
                run(Command::new("tar")
                    .arg("-C")
                    .arg(&staging)
                    .arg("--exclude=./proc/*")
                    .arg("--exclude=./sys/*")
                    .arg("--exclude=./dev/*")
                    .arg("-cf")
                    .arg(&partial)
                    .arg("."));
                std::fs::rename(&partial, &tarball).unwrap();
            }
            let layout = crate::tools::umoci_image(
                work.path(),
                "bookworm",
                |rootfs| {
                    run(Command::new("tar")
                        .arg("-C")
                        .arg(rootfs)
                        .arg("-xf")
                        .arg(&tarball));
                },
                &[
                    "--config.env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--config.cmd",
                    "/bin/bash",
                ],
            );
            (work, layout)
        })
        .1;
    let reference = format!("{}/debian:bookworm", registry.host());
    let mut cmd = Command::new("skopeo");
    cmd.arg("copy")
        .arg("-q")
        .args(registry.skopeo_flags("dest-"))
        .arg(format!("oci:{}:bookworm", layout.display()))
        .arg(format!("docker://{reference}"));
    run(&mut cmd);
    reference
}
