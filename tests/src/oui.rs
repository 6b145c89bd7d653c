//! Stand-ins for Oracle Universal Installer archives, built with the machine's JDK: `Installer.java`
//! compiled into a jar, zipped as Oracle ships its installers.

use crate::run;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `fmw_VERSION_wls_lite_Disk1_1of1.zip` holding `fmw_VERSION_wls_lite_generic.jar`, whose
/// silent install writes a WebLogic Server `version` Oracle Home.
pub fn installer_zip(dir: &Path, version: &str) -> PathBuf {
    crate::require_tool("javac");
    crate::require_tool("jar");
    let work = dir.join(format!("oui-{version}"));
    let classes = work.join("classes");
    std::fs::create_dir_all(&classes).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oui/Installer.java");
    run(Command::new("javac")
        .args(["--release", "11", "-d"])
        .arg(&classes)
        .arg(&source));
    std::fs::write(classes.join("version.txt"), version).unwrap();
    let jar_name = format!("fmw_{version}_wls_lite_generic.jar");
    let jar = work.join(&jar_name);
    run(Command::new("jar")
        .args(["--create", "--file"])
        .arg(&jar)
        .args(["--main-class", "Installer", "-C"])
        .arg(&classes)
        .arg("."));
    let zip_path = dir.join(format!("fmw_{version}_wls_lite_Disk1_1of1.zip"));
    zip_holding(&zip_path, &jar_name, &std::fs::read(&jar).unwrap());
    zip_path
}

/// A zip holding one entry.
pub fn zip_holding(path: &Path, name: &str, bytes: &[u8]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(bytes).unwrap();
    zip.finish().unwrap();
}

/// An Oracle installer shipped as a `.bin` (as OHS and others are), standing in as a busybox
/// shell script: it finds `ORACLE_HOME=` among WIT's arguments, writes an Oracle Home with
/// `inventory/registry.xml` naming `version`, and records who ran it with which arguments.
pub fn shell_installer_zip(dir: &Path, version: &str) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
prev=""
for arg in "$@"; do
  case "$arg" in ORACLE_HOME=*) home="${{arg#ORACLE_HOME=}}" ;; esac
  case "$prev" in -responseFile) rsp="$arg" ;; -invPtrLoc) ptr="$arg" ;; esac
  prev="$arg"
done
[ -n "$home" ] || {{ echo "ORACLE_HOME= not given" >&2; exit 2; }}
/bin/busybox mkdir -p "$home/inventory" "$home/wlserver/server/bin" || exit 3
/bin/busybox cat "$rsp" > "$home/inventory/response-used.rsp" || exit 4
/bin/busybox cat "$ptr" > "$home/inventory/pointer-used.loc" || exit 5
echo '<?xml version="1.0"?><registry home="'"$home"'"><distributions><distribution status="installed" name="WebLogic Server" version="{version}"/></distributions></registry>' > "$home/inventory/registry.xml"
echo "uid=$(id -u) args=$*" > "$home/wlserver/server/bin/installed-by.txt"
echo "The installation of Oracle Fusion Middleware {version} completed successfully."
"#
    );
    let zip_path = dir.join(format!("fmw_{version}_wls_Disk1_1of1.zip"));
    zip_holding(
        &zip_path,
        &format!("fmw_{version}_wls_linux64.bin"),
        script.as_bytes(),
    );
    zip_path
}
