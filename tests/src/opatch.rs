//! An OPatch stand-in for images built on the busybox base: `OPatch/opatch` as a shell script
//! that answers the command lines WIT's Dockerfile runs (`napply -phBaseDir`, `apply`, `util
//! cleanup`, `version`): it unzips each patch, records it under `inventory/oneoffs/<bug>/` as
//! OPatch does, and carries out `<make>` actions by writing the target's name where make would
//! have built it; `applied-by-opatch.txt` says which command applied which patch, in order.

use std::io::Write;
use std::path::Path;

const OPATCH: &str = r#"#!/bin/sh
bb=/bin/busybox
command="$1"; shift
[ "$command" = util ] && { echo "OPatch cleanup: done"; exit 0; }
[ "$command" = version ] && { echo "OPatch Version: 13.9.4.2.17"; echo "OPatch succeeded."; exit 0; }
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
  $bb unzip -q "$1" -d "$work" || { echo "OPatch: cannot unzip $1" >&2; exit 3; }
  for dir in "$work"/*; do
    bug=$($bb basename "$dir")
    $bb mkdir -p "$oh/inventory/oneoffs/$bug" || exit 4
    $bb cp -r "$dir/etc" "$oh/inventory/oneoffs/$bug/" || exit 4
    targets=$($bb sed -n 's/.*make_target="\([^"]*\)".*/\1/p' "$dir/etc/config/actions.xml")
    for target in $targets; do echo "made by OPatch for $bug" > "$oh/OPatch/$target.built"; done
    echo "$command $bug" >> "$oh/OPatch/applied-by-opatch.txt"
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

/// The fixture Oracle Home (`weblogic::oracle_home_zip`) with the OPatch stand-in in it.
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
    zip.finish().unwrap();
}
