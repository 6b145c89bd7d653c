//! `copy` keeps the digest across registries and layouts, and moves only what is missing.

use patchfarm_e2e::{busybox_base, run, Patchfarm, Registry};
use std::process::Command;

fn digest_of(reference: &str) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(reference));
    out.trim().to_string()
}

#[test]
fn copies_between_registries_and_layouts_keeping_the_digest() {
    let east = Registry::start();
    let west = Registry::start();
    let base = busybox_base(&east);
    let pf = Patchfarm::new();
    let original = digest_of(&format!("docker://{base}"));

    let to_west = format!("{}/mirror/busybox:1", west.host());
    let report: serde_json::Value =
        serde_json::from_str(&pf.ok(&["copy", &base, &to_west, "--json"])).unwrap();
    assert_eq!(report["digest"], original);
    assert!(report["bytes_uploaded"].as_u64().unwrap() > 0);
    assert_eq!(digest_of(&format!("docker://{to_west}")), original);

    // Again: everything is already there.
    let again: serde_json::Value =
        serde_json::from_str(&pf.ok(&["copy", &base, &to_west, "--json"])).unwrap();
    assert_eq!(again["bytes_uploaded"], 0);

    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:bb", dir.path().join("l").display());
    pf.ok(&["copy", &to_west, &layout]);
    assert_eq!(digest_of(&layout), original);
    // And back from the layout into a new repository of the first registry.
    let back = format!("{}/from-layout/busybox:2", east.host());
    pf.ok(&["copy", &layout, &back]);
    assert_eq!(digest_of(&format!("docker://{back}")), original);
}
