//! An OPatch stand-in: `OPatch/opatch` as a shell script (busybox's applets, or a Debian base's
//! own programs and the JDK's `jar`) that answers the command lines WIT's Dockerfile runs
//! (`napply -phBaseDir`, `apply`, `util cleanup`, `version`): it unzips each patch, records it
//! under `inventory/oneoffs/<bug>/` as OPatch does, and carries out `<make>` actions by writing
//! the target's name where make would have built it; `applied-by-opatch.txt` says which
//! command applied which patch, in order. And OPatch's own patch (28186730), whose installer
//! (`OpatchUpgrade.java`, built with the machine's JDK) installs a newer one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const OPATCH: &str = r#"#!/bin/sh
bb=""; [ -x /bin/busybox ] && bb=/bin/busybox
unzip_to() {
  if [ -n "$bb" ]; then $bb unzip -q "$1" -d "$2"; else (cd "$2" && "$JAVA_HOME/bin/jar" -xf "$1"); fi
}
command="$1"; shift
[ "$command" = util ] && { echo "OPatch cleanup: done"; exit 0; }
[ "$command" = version ] && { echo "OPatch Version: $($bb sed -n 's/OPATCH_VERSION://p' "$($bb dirname "$0")/version.txt")"; echo "OPatch succeeded."; exit 0; }
oh=""; base=""; patch=""
while [ $# -gt 0 ]; do
  case "$1" in
    -oh) oh="$2"; shift ;;
    -phBaseDir) base="$2"; shift ;;
    -*) ;;
    *) patch="$1" ;;
  esac
  shift
done
[ -n "$oh" ] || { echo "OPatch: -oh is missing" >&2; exit 2; }
apply_zip() {
  work=$($bb mktemp -d)
  unzip_to "$1" "$work" || { echo "OPatch: cannot unzip $1" >&2; exit 3; }
  for dir in "$work"/*; do
    bug=$($bb basename "$dir")
    $bb mkdir -p "$oh/inventory/oneoffs/$bug" || exit 4
    $bb cp -r "$dir/etc" "$oh/inventory/oneoffs/$bug/" || exit 4
    targets=$($bb sed -n 's/.*make_target="\([^"]*\)".*/\1/p' "$dir/etc/config/actions.xml")
    for target in $targets; do echo "made by OPatch for $bug" > "$oh/OPatch/$target.built"; done
    echo "$command $bug with $($bb cat "$oh/OPatch/version.txt")" >> "$oh/OPatch/applied-by-opatch.txt"
    echo "Patch $bug successfully applied."
  done
}
case "$command" in
  napply) for zip in "$base"/*.zip; do apply_zip "$zip"; done ;;
  apply) apply_zip "$patch" ;;
  *) echo "OPatch: unknown command $command" >&2; exit 2 ;;
esac
echo "OPatch succeeded."
"#;

/// The fixture Oracle Home (`weblogic::oracle_home_zip`) with the OPatch stand-in in it,
/// version 13.9.4.2.5.
pub fn home_with_opatch_zip(path: &Path, version: &str) {
    crate::weblogic::oracle_home_zip(path, version);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut zip = zip::ZipWriter::new_append(file).unwrap();
    let options = zip::write::SimpleFileOptions::default();
    zip.add_directory("OPatch/", options.unix_permissions(0o755))
        .unwrap();
    zip.start_file("OPatch/opatch", options.unix_permissions(0o755))
        .unwrap();
    zip.write_all(OPATCH.as_bytes()).unwrap();
    zip.start_file("OPatch/version.txt", options.unix_permissions(0o644))
        .unwrap();
    zip.write_all(b"OPATCH_VERSION:13.9.4.2.5\n").unwrap();
    zip.finish().unwrap();
}

/// OPatch's own patch as Oracle ships it, `p28186730_139400_Generic.zip`: `6880880/
/// opatch_generic.jar`, an installer of the OPatch stand-in at `version`.
pub fn opatch_patch_zip(dir: &Path, version: &str) -> PathBuf {
    crate::require_tool("javac");
    crate::require_tool("jar");
    let classes = dir.join(format!("opatch-{version}/classes"));
    std::fs::create_dir_all(&classes).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oui/OpatchUpgrade.java");
    crate::run(
        Command::new("javac")
            .args(["--release", "11", "-d"])
            .arg(&classes)
            .arg(&source),
    );
    std::fs::write(classes.join("opatch"), OPATCH).unwrap();
    std::fs::write(
        classes.join("version.txt"),
        format!("OPATCH_VERSION:{version}\n"),
    )
    .unwrap();
    let jar = dir.join(format!("opatch-{version}/opatch_generic.jar"));
    crate::run(
        Command::new("jar")
            .args(["--create", "--file"])
            .arg(&jar)
            .args(["--main-class", "OpatchUpgrade", "-C"])
            .arg(&classes)
            .arg("."),
    );
    let zip_path = dir.join(format!(
        "p28186730_{}_Generic.zip",
        version.replace('.', "")
    ));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    zip.add_directory("6880880/", options).unwrap();
    zip.start_file("6880880/opatch_generic.jar", options)
        .unwrap();
    zip.write_all(&std::fs::read(&jar).unwrap()).unwrap();
    zip.finish().unwrap();
    zip_path
}
