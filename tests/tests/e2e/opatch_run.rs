//! Patches the native engine cannot apply go through the image's own OPatch, as WIT's
//! Dockerfile runs it: `--opatchMode auto` (the default) sends a patch with a `<make>` action to
//! `opatch napply -phBaseDir /tmp/imagetool/patches` in a build step, one layer on top, the same
//! inputs giving the same digest; `--opatchMode native` refuses it naming the action and pushes
//! nothing; copy/jar patches stay native; `--strictPatchOrdering` runs `opatch apply` per patch in
//! order; `update` takes the same road. OPatch is first upgraded from its own patch (28186730,
//! the newest cached or the version asked with `--opatchBugNumber`; not with
//! `--skipOpatchUpdate`), its installer run on the image's JDK.

use patchfarm_e2e::opatch::{home_with_opatch_zip, opatch_patch_zip};
use patchfarm_e2e::tools::add_installer_args;
use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::weblogic::{self, patch_zip, Act, WLS_VERSION};
use patchfarm_e2e::wls::{
    assert_not_pushed, key, layer_history, raw, raw_digest, top_layer_file, unpack, Wls, PSU,
};

const MAKE: &str = "38000001";
const MAKE_TOO: &str = "38000002";
/// The OPatch the fixture home holds.
const OLD: &str = "OPATCH_VERSION:13.9.4.2.5";

/// Replaces the cached wls installer with the fixture home holding OPatch 13.9.4.2.5, and caches
/// the patches only OPatch applies.
fn with_opatch_home(wls: &Wls) {
    let dir = wls.dir.path();
    let home = dir.join("home-with-opatch.zip");
    home_with_opatch_zip(&home, WLS_VERSION);
    let mut replace = add_installer_args("wls", WLS_VERSION, &home);
    replace.push("--force".into());
    wls.pf
        .ok(&replace.iter().map(String::as_str).collect::<Vec<_>>());
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
}

#[test]
fn patches_only_opatch_can_apply_go_through_the_images_own_opatch() {
    if !steps_available("patches_only_opatch_can_apply_go_through_the_images_own_opatch") {
        return;
    }
    let wls = Wls::new();
    wls.fake_jdk();
    with_opatch_home(&wls);

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
    let top = layer_history(&first).pop().unwrap();
    assert!(top.contains(&format!("opatch napply [{MAKE}]")), "{top}");
    let (_work, rootfs) = unpack(&first);
    let oh = rootfs.join("u01/oracle");
    assert_eq!(
        std::fs::read_to_string(oh.join("OPatch/applied-by-opatch.txt")).unwrap(),
        format!("napply {MAKE} with {OLD}\n")
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
        format!("apply {MAKE_TOO} with {OLD}\napply {PSU} with {OLD}\n")
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
        format!("napply {MAKE_TOO} with {OLD}\n")
    );
    let labels: serde_json::Value = serde_json::from_str(&patchfarm_e2e::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{updated}")),
    ))
    .unwrap();
    assert_eq!(labels["Labels"]["org.patchfarm.patches"], MAKE_TOO);

    // With OPatch's own patch cached, --skipOpatchUpdate keeps the image's OPatch (upgrading it
    // runs Java, which this base has not: the test below does that on Debian with a real JDK).
    let opatch = opatch_patch_zip(wls.dir.path(), "13.9.4.2.17");
    wls.add_patch_key("28186730_13.9.4.2.17", &opatch);
    let skipped = wls.tag("opatch:skipped");
    wls.pf.ok(&[
        "update",
        "--fromImage",
        &plain,
        "--tag",
        &skipped,
        "--patches",
        &key(MAKE_TOO),
        "--skipOpatchUpdate",
    ]);
    assert_eq!(
        top_layer_file(
            &wls.registry,
            &skipped,
            "u01/oracle/OPatch/applied-by-opatch.txt"
        )
        .unwrap(),
        format!("napply {MAKE_TOO} with {OLD}\n")
    );
}

/// OPatch runs on the image's JDK here: a Debian base and the machine's real JDK.
#[test]
fn opatch_is_first_upgraded_from_its_own_patch_as_wit_does() {
    if !steps_available("opatch_is_first_upgraded_from_its_own_patch_as_wit_does") {
        return;
    }
    let registry = patchfarm_e2e::Registry::start();
    let base = weblogic::debian_base(&registry);
    let wls = Wls::with(registry, base);
    let (jdk_tgz, _, _) = weblogic::real_jdk_tgz();
    wls.add_installer("jdk", "17", jdk_tgz);
    with_opatch_home(&wls);
    for version in ["13.9.4.2.9", "13.9.4.2.17"] {
        let zip = opatch_patch_zip(wls.dir.path(), version);
        wls.add_patch_key(&format!("28186730_{version}"), &zip);
    }
    let applied = |tag: &str| {
        top_layer_file(
            &wls.registry,
            tag,
            "u01/oracle/OPatch/applied-by-opatch.txt",
        )
        .expect("OPatch's layer holds its record")
    };

    // By default the newest cached OPatch (28186730, as WIT picks for 12.2.1.4) goes in first.
    let newest = wls.tag("opatch:newest");
    wls.create(&newest, &["--patches", &key(MAKE)]);
    assert_eq!(
        applied(&newest),
        format!("napply {MAKE} with OPATCH_VERSION:13.9.4.2.17\n")
    );
    let top = layer_history(&newest).pop().unwrap();
    assert!(
        top.contains("OPatch upgraded from 28186730_13.9.4.2.17"),
        "{top}"
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&wls.pf.ok(&["inspect", "--image", &newest])).unwrap();
    assert_eq!(inspected["opatchVersion"], "13.9.4.2.17", "{inspected}");

    // A version asked for by number.
    let asked = wls.tag("opatch:asked");
    wls.create(
        &asked,
        &[
            "--patches",
            &key(MAKE),
            "--opatchBugNumber",
            "28186730_13.9.4.2.9",
        ],
    );
    assert_eq!(
        applied(&asked),
        format!("napply {MAKE} with OPATCH_VERSION:13.9.4.2.9\n")
    );
    // A version not in the cache is named, with how to add it; nothing is pushed.
    let missing = wls.tag("opatch:missing");
    let error = wls.create_fails(
        &missing,
        &[
            "--patches",
            &key(MAKE),
            "--opatchBugNumber",
            "28186730_13.9.4.2.99",
        ],
    );
    assert!(
        error.contains("28186730_13.9.4.2.99 is not in the cache")
            && error.contains("cache addPatch"),
        "{error}"
    );
    assert_not_pushed(&missing);
}
