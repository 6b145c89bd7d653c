//! Patches the native engine cannot apply go through the image's own OPatch, as WIT's
//! Dockerfile runs it: `--opatchMode auto` (the default) sends a patch with a `<make>` action to
//! `opatch napply -phBaseDir /tmp/imagetool/patches` in a build step, one layer on top, the same
//! inputs giving the same digest; `--opatchMode native` refuses it naming the action and pushes
//! nothing; copy/jar patches stay native; `--strictPatchOrdering` runs `opatch apply` per patch in
//! order; `update` takes the same road.

use patchfarm_e2e::opatch::home_with_opatch_zip;
use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::weblogic::{patch_zip, Act, WLS_VERSION};
use patchfarm_e2e::wls::{assert_not_pushed, key, raw, raw_digest, unpack, Wls, PSU};

const MAKE: &str = "38000001";
const MAKE_TOO: &str = "38000002";

fn history(image: &str) -> Vec<String> {
    let config: serde_json::Value = serde_json::from_str(&patchfarm_e2e::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--config", "--tls-verify=false"])
            .arg(format!("docker://{image}")),
    ))
    .unwrap();
    config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn patches_only_opatch_can_apply_go_through_the_images_own_opatch() {
    if !steps_available("patches_only_opatch_can_apply_go_through_the_images_own_opatch") {
        return;
    }
    let wls = Wls::new();
    wls.fake_jdk();
    let dir = wls.dir.path();
    let home = dir.join("home-with-opatch.zip");
    home_with_opatch_zip(&home, WLS_VERSION);
    wls.pf.ok(&[
        "cache",
        "addInstaller",
        "--type",
        "wls",
        "--version",
        WLS_VERSION,
        "--path",
        &home.display().to_string(),
        "--force",
    ]);
    for (bug, target) in [(MAKE, "ioracle"), (MAKE_TOO, "client_sharedlib")] {
        let zip = patch_zip(
            dir,
            bug,
            WLS_VERSION,
            &[],
            &[Act::Make { dir: "lib", target }],
        );
        wls.add_patch(bug, &zip);
    }

    // Native only: refused by name before anything is built.
    let refused_tag = wls.tag("opatch:native");
    let refused = wls.create_fails(
        &refused_tag,
        &["--patches", &key(MAKE), "--opatchMode", "native"],
    );
    assert!(
        refused.contains(&format!("patch {}", key(MAKE))) && refused.contains("<make>"),
        "{refused}"
    );
    assert_not_pushed(&refused_tag);

    // auto: OPatch applies it, in one more layer; twice, the same digest.
    let (first, second, plain) = (
        wls.tag("opatch:1"),
        wls.tag("opatch:2"),
        wls.tag("opatch:0"),
    );
    wls.create(&first, &["--patches", &key(MAKE)]);
    wls.create(&second, &["--patches", &key(MAKE)]);
    wls.create(&plain, &[]);
    assert_eq!(
        raw_digest(&first),
        raw_digest(&second),
        "same inputs, same digest"
    );
    assert_eq!(
        raw(&first)["layers"].as_array().unwrap().len(),
        raw(&plain)["layers"].as_array().unwrap().len() + 1
    );
    let top = history(&first).pop().unwrap();
    assert!(top.contains(&format!("opatch napply [{MAKE}]")), "{top}");
    let (_work, rootfs) = unpack(&first);
    let oh = rootfs.join("u01/oracle");
    assert_eq!(
        std::fs::read_to_string(oh.join("OPatch/applied-by-opatch.txt")).unwrap(),
        format!("napply {MAKE}\n")
    );
    assert!(
        oh.join("OPatch/ioracle.built").is_file(),
        "the <make> action ran"
    );
    assert!(oh
        .join(format!("inventory/oneoffs/{MAKE}/etc/config/actions.xml"))
        .is_file());
    assert!(
        !rootfs.join("tmp/imagetool").exists(),
        "patches never land in a layer"
    );

    // A copy/jar patch stays native: no OPatch run.
    let native = wls.tag("opatch:copy");
    wls.create(&native, &["--patches", &key(PSU)]);
    let (_native_work, native_root) = unpack(&native);
    assert!(!native_root
        .join("u01/oracle/OPatch/applied-by-opatch.txt")
        .exists());

    // --opatchMode opatch --strictPatchOrdering: `opatch apply`, one patch at a time, in order.
    let strict = wls.tag("opatch:strict");
    wls.create(
        &strict,
        &[
            "--patches",
            &format!("{},{}", key(MAKE_TOO), key(PSU)),
            "--opatchMode",
            "opatch",
            "--strictPatchOrdering",
        ],
    );
    let (_strict_work, strict_root) = unpack(&strict);
    assert_eq!(
        std::fs::read_to_string(strict_root.join("u01/oracle/OPatch/applied-by-opatch.txt"))
            .unwrap(),
        format!("apply {MAKE_TOO}\napply {PSU}\n")
    );

    // update: the patch goes through OPatch on top of the image; the label records it.
    let updated = wls.tag("opatch:updated");
    wls.pf.ok(&[
        "update",
        "--fromImage",
        &plain,
        "--tag",
        &updated,
        "--patches",
        &key(MAKE_TOO),
    ]);
    let (_updated_work, updated_root) = unpack(&updated);
    assert_eq!(
        std::fs::read_to_string(updated_root.join("u01/oracle/OPatch/applied-by-opatch.txt"))
            .unwrap(),
        format!("napply {MAKE_TOO}\n")
    );
    let labels: serde_json::Value = serde_json::from_str(&patchfarm_e2e::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{updated}")),
    ))
    .unwrap();
    assert_eq!(labels["Labels"]["org.patchfarm.patches"], MAKE_TOO);
}
