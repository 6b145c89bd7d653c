//! `rebase` end to end: a Domain-in-Image source made by another tool (umoci on top of a
//! patchfarm base) moved onto a newer patched base by the fast path and by the copy path.

use patchfarm_e2e::weblogic::JAR;
use patchfarm_e2e::wls::*;
use patchfarm_e2e::{docker_available, run};
use std::path::Path;
use std::process::Command;

/// The old base (unpatched), the new target (PSU+REC), and a domain image made with umoci on the old base.
fn setup() -> (Wls, String, String, String) {
    let wls = Wls::new();
    wls.fake_jdk();
    let (old, new) = (wls.tag("base:1"), wls.tag("base:2"));
    wls.create(&old, &[]);
    wls.create(&new, &["--patches", &format!("{},{}", key(PSU), key(REC))]);
    let domain = format!("{}/domains/payments:1", wls.registry.host());
    derive(&old, &domain, add_domain, DOMAIN_CONFIG);
    (wls, old, new, domain)
}

fn rebase(wls: &Wls, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["rebase", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&wls.pf.ok(&all)).unwrap()
}

fn assert_domain_moved(root: &Path) {
    assert_eq!(
        std::fs::read(root.join(DOMAIN).join("security/SerializedSystemIni.dat")).unwrap(),
        INI
    );
    assert_eq!(
        std::fs::read_to_string(root.join(DOMAIN).join("config/config.xml")).unwrap(),
        "<domain><name>payments</name></domain>\n"
    );
    assert_eq!(
        jar_entry(&root.join("u01/oracle").join(JAR), "weblogic/Util.class"),
        b"REC Util",
        "the new Oracle Home's bytes"
    );
}

#[test]
fn fast_path_reuses_the_domain_layer_by_digest() {
    let (wls, old, new, domain) = setup();
    let rebased = format!("{}/domains/payments:2", wls.registry.host());
    // No --oldBase: the labels the domain image inherited from its patchfarm base locate it.
    let out = rebase(
        &wls,
        &[
            "--sourceImage",
            &domain,
            "--targetImage",
            &new,
            "--tag",
            &rebased,
        ],
    );
    assert_eq!(out["path"], "fast", "{out}");
    // A Domain-in-Image image holds its domain: inspect does not call it model-only.
    let inspected: serde_json::Value =
        serde_json::from_str(&wls.pf.ok(&["inspect", "--image", &domain])).unwrap();
    assert_eq!(inspected["domainHome"], "/u01/domains/base_domain");
    assert_eq!(inspected["wdtModelOnly"], false, "{inspected}");
    assert!(
        out["detail"]
            .as_str()
            .unwrap()
            .contains("provenance labels"),
        "{out}"
    );
    assert_eq!(
        out["blobs_uploaded"], 1,
        "only the new config is uploaded, no layer: {out}"
    );
    assert!(
        out["bytes_uploaded"].as_u64().unwrap() <= 16 * 1024,
        "{out}"
    );
    let (src, tgt, res) = (raw(&domain), raw(&new), raw(&rebased));
    let src_layers = src["layers"].as_array().unwrap();
    let mut expected: Vec<serde_json::Value> = tgt["layers"].as_array().unwrap().clone();
    expected.push(src_layers.last().unwrap().clone());
    assert_eq!(
        res["layers"].as_array().unwrap(),
        &expected,
        "target layers + the source's domain layer, same digests"
    );
    assert_eq!(
        res["annotations"]["org.opencontainers.image.base.name"],
        new
    );
    let (_w, root) = unpack(&rebased);
    assert_domain_moved(&root);
    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{rebased}"))))
    .unwrap();
    assert_eq!(config["config"]["WorkingDir"], "/u01/domains/base_domain");
    assert_eq!(config["config"]["Labels"]["com.example.domain"], "payments");
    assert!(config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "DOMAIN_HOME=/u01/domains/base_domain"));
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        expected.len()
    );

    // --oldBase names it explicitly; an OCI layout works as the destination.
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:rebased", dir.path().join("l").display());
    let out = rebase(
        &wls,
        &[
            "--sourceImage",
            &domain,
            "--targetImage",
            &new,
            "--oldBase",
            &old,
            "--tag",
            &layout,
        ],
    );
    assert_eq!(out["path"], "fast");
    assert_eq!(
        out["digest"],
        res_digest(&rebased),
        "both ways give the same image"
    );

    if docker_available("fast_path_reuses_the_domain_layer_by_digest") {
        run(Command::new("docker").args(["pull", "-q", &rebased]));
        let text = run(Command::new("docker").args([
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            &rebased,
            "/u01/domains/base_domain/config/config.xml",
        ]));
        let _ = Command::new("docker")
            .args(["rmi", "-f", &rebased])
            .output();
        assert!(text.contains("payments"), "{text}");
    }
}

fn res_digest(reference: &str) -> String {
    raw_digest(reference)
}

#[test]
fn copy_path_moves_domain_home_when_the_old_base_is_unknown() {
    let (wls, _old, new, domain) = setup();
    // Strip every trace of the base: no labels, no annotations.
    let anonymous = format!("{}/domains/anonymous:1", wls.registry.host());
    derive(
        &domain,
        &anonymous,
        |_| {},
        &["--clear=config.labels", "--clear=manifest.annotations"],
    );
    let rebased = format!("{}/domains/anonymous:2", wls.registry.host());
    let out = rebase(
        &wls,
        &[
            "--sourceImage",
            &anonymous,
            "--targetImage",
            &new,
            "--tag",
            &rebased,
        ],
    );
    assert_eq!(out["path"], "copy", "{out}");
    let (tgt, res) = (raw(&new), raw(&rebased));
    assert_eq!(
        res["layers"].as_array().unwrap().len(),
        tgt["layers"].as_array().unwrap().len() + 1,
        "one new layer with the domain"
    );
    let (_w, root) = unpack(&rebased);
    assert_domain_moved(&root);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root.join(DOMAIN).join("config/config.xml"))
            .unwrap()
            .uid(),
        1000,
        "owned like the target's Oracle Home"
    );
}

#[test]
fn mismatched_homes_missing_domain_and_a_wrong_old_base_are_refused() {
    let (wls, _old, new, domain) = setup();
    let odd = wls.tag("odd:1");
    derive(&new, &odd, |_| {}, &["--config.env", "JAVA_HOME=/opt/jdk"]);
    let tag = format!("{}/domains/refused:1", wls.registry.host());
    let err = wls.pf.fails(&[
        "rebase",
        "--sourceImage",
        &domain,
        "--targetImage",
        &odd,
        "--tag",
        &tag,
    ]);
    assert!(
        err.contains("JAVA_HOME") && err.contains("/u01/jdk") && err.contains("/opt/jdk"),
        "{err}"
    );

    let no_domain = format!("{}/domains/nodomain:1", wls.registry.host());
    derive(
        &new,
        &no_domain,
        |_| {},
        &[
            "--clear=config.env",
            "--config.env",
            "JAVA_HOME=/u01/jdk",
            "--config.env",
            "ORACLE_HOME=/u01/oracle",
        ],
    );
    let err = wls.pf.fails(&[
        "rebase",
        "--sourceImage",
        &no_domain,
        "--targetImage",
        &new,
        "--tag",
        &tag,
    ]);
    assert!(err.contains("no DOMAIN_HOME"), "{err}");

    let unrelated = wls.tag("unrelated:1");
    wls.create(&unrelated, &["--patches", &key(PSU)]);
    let err = wls.pf.fails(&[
        "rebase",
        "--sourceImage",
        &domain,
        "--targetImage",
        &new,
        "--oldBase",
        &unrelated,
        "--tag",
        &tag,
    ]);
    assert!(
        err.contains("not the first layers") && err.contains("unrelated"),
        "{err}"
    );
    assert!(
        wls.registry.tags("domains/refused").is_empty(),
        "nothing may be tagged"
    );
}

#[test]
fn without_a_target_image_the_target_is_built_as_create_would() {
    let (wls, _old, new, domain) = setup();
    let rebased = format!("{}/domains/payments:built", wls.registry.host());
    let patches = format!("{},{}", key(PSU), key(REC));
    let out = rebase(
        &wls,
        &[
            "--sourceImage",
            &domain,
            "--fromImage",
            &wls.base,
            "--jdkVersion",
            "17",
            "--patches",
            &patches,
            "--tag",
            &rebased,
        ],
    );
    assert_eq!(out["path"], "fast", "{out}");
    // The in-process target is the same value `create` pushed as base:2.
    let (tgt, res) = (raw(&new), raw(&rebased));
    let res_layers = res["layers"].as_array().unwrap();
    assert_eq!(
        &res_layers[..res_layers.len() - 1],
        tgt["layers"].as_array().unwrap().as_slice()
    );
    let (_w, root) = unpack(&rebased);
    assert_domain_moved(&root);
}

#[test]
fn a_domain_home_that_is_a_link_or_holds_no_domain_is_refused_on_both_paths() {
    let (wls, old, new, _domain) = setup();
    // DOMAIN_HOME links to the real domain elsewhere: the tree never follows it, so moving it
    // would push an empty domain.
    let linked = format!("{}/domains/linked:1", wls.registry.host());
    derive(
        &old,
        &linked,
        |rootfs| {
            add_domain(rootfs);
            let elsewhere = rootfs.join("u01/domains/real_domain");
            std::fs::rename(rootfs.join(DOMAIN), &elsewhere).unwrap();
            std::os::unix::fs::symlink("/u01/domains/real_domain", rootfs.join(DOMAIN)).unwrap();
        },
        DOMAIN_CONFIG,
    );
    // A directory without the domain's secret.
    let hollow = format!("{}/domains/hollow:1", wls.registry.host());
    derive(
        &old,
        &hollow,
        |rootfs| std::fs::create_dir_all(rootfs.join(DOMAIN).join("config")).unwrap(),
        DOMAIN_CONFIG,
    );
    for (source, why) in [
        (&linked, "symbolic link"),
        (&hollow, "SerializedSystemIni.dat"),
    ] {
        for path in [&[][..], &["--copyDomain"][..]] {
            let tag = format!("{}/domains/refused-again:1", wls.registry.host());
            let mut args = vec![
                "rebase",
                "--sourceImage",
                source.as_str(),
                "--targetImage",
                new.as_str(),
                "--tag",
                tag.as_str(),
            ];
            args.extend_from_slice(path);
            let err = wls.pf.fails(&args);
            assert!(
                err.contains("DOMAIN_HOME /u01/domains/base_domain") && err.contains(why),
                "{source} {path:?}: {err}"
            );
            assert!(wls.registry.tags("domains/refused-again").is_empty());
        }
    }
}

/// WIT's rebase runs `[final-build-commands]` on the rebased image: the section sees the moved
/// domain and its changes are one layer on top of the fast path's reused layers. The sections
/// that belong to building a target are refused by file and line, before anything is pushed.
#[test]
fn final_build_commands_run_on_the_rebased_image() {
    if !patchfarm_e2e::tools::steps_available("final_build_commands_run_on_the_rebased_image") {
        return;
    }
    let (wls, _old, new, domain) = setup();
    let commands = wls.dir.path().join("rebase-commands.txt");
    std::fs::write(
        &commands,
        "[final-build-commands]\nLABEL rebased=yes\nRUN test -f \"$DOMAIN_HOME/config/config.xml\" && id -un > /u01/rebased-by.txt\n",
    )
    .unwrap();
    let commands = commands.display().to_string();
    let rebased = format!("{}/domains/payments:sections", wls.registry.host());
    let out = rebase(
        &wls,
        &[
            "--sourceImage",
            &domain,
            "--targetImage",
            &new,
            "--tag",
            &rebased,
            "--additionalBuildCommands",
            &commands,
        ],
    );
    assert_eq!(out["path"], "fast", "{out}");
    let (source, result) = (raw(&domain), raw(&rebased));
    let history = layer_history(&rebased);
    assert!(
        history.last().unwrap().contains("[final-build-commands]"),
        "{history:#?}"
    );
    assert_eq!(
        result["layers"].as_array().unwrap()[..result["layers"].as_array().unwrap().len() - 1]
            .last(),
        source["layers"].as_array().unwrap().last(),
        "the domain's layer reused by digest under the section's"
    );
    let (_w, root) = unpack(&rebased);
    assert_domain_moved(&root);
    assert_eq!(
        std::fs::read_to_string(root.join("u01/rebased-by.txt")).unwrap(),
        "oracle\n"
    );
    assert_eq!(raw_config(&rebased)["config"]["Labels"]["rebased"], "yes");

    let stage = wls.dir.path().join("stage.txt");
    std::fs::write(
        &stage,
        "[final-build-commands]\nRUN true\n[before-jdk-install]\nRUN true\n",
    )
    .unwrap();
    let stage = stage.display().to_string();
    let refused = format!("{}/domains/payments:refused", wls.registry.host());
    let error = wls.pf.fails(&[
        "rebase",
        "--sourceImage",
        &domain,
        "--targetImage",
        &new,
        "--tag",
        &refused,
        "--additionalBuildCommands",
        &stage,
    ]);
    assert!(
        error.contains(&format!("{stage}:4")) && error.contains("[before-jdk-install]"),
        "{error}"
    );
    assert_not_pushed(&refused);
}
