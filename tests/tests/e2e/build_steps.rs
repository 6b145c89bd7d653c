//! WIT's `--additionalBuildCommands` on `create` (and `update`): the `[final-build-commands]` section runs
//! through the executor (runc, no Docker daemon) on the built image — RUN as the image's user
//! and as the USER the section names, COPY from `--additionalBuildFiles`, ENV and LABEL into the config — and its
//! changes are one layer (a deleted file a whiteout); the same inputs give the same digest; an
//! unknown directive is refused with file:line and nothing is pushed.

use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::wls::{
    assert_not_pushed, key, layer_history, raw, raw_config, raw_digest, unpack, Wls, PSU,
};
use std::os::unix::fs::MetadataExt;

const COMMANDS: &str = r#"# as WIT's user guide writes them
[final-build-commands]
ENV GREETING=hello
LABEL team=ops
RUN echo "$GREETING from $(id -un)" > /u01/oracle/greeting.txt \
    && busybox rm /u01/oracle/wlserver/server/lib/readme.txt
USER root
RUN busybox mkdir -p /opt/by-root && id -un > /opt/by-root/who
COPY --chown=oracle:oracle files/extra.sh /u01/tools/
USER oracle
WORKDIR /u01/oracle
RUN busybox touch by-oracle
"#;

#[test]
fn final_build_commands_run_in_the_image_and_become_one_reproducible_layer() {
    if !steps_available("final_build_commands_run_in_the_image") {
        return;
    }
    let wls = Wls::new();
    wls.fake_jdk();
    let dir = wls.dir.path();
    let commands = dir.join("commands.txt");
    std::fs::write(&commands, COMMANDS).unwrap();
    let extra = dir.join("extra.sh");
    std::fs::write(&extra, "#!/bin/sh\necho extra\n").unwrap();
    let steps = [
        "--additionalBuildCommands",
        &commands.display().to_string(),
        "--additionalBuildFiles",
        &extra.display().to_string(),
    ]
    .map(str::to_owned);
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let (first, second, plain) = (wls.tag("steps:1"), wls.tag("steps:2"), wls.tag("steps:0"));
    wls.create(&first, &steps);
    wls.create(&second, &steps);
    wls.create(&plain, &[]);
    assert_eq!(
        raw_digest(&first),
        raw_digest(&second),
        "same inputs, same digest"
    );

    let manifest = raw(&first);
    let layers = manifest["layers"].as_array().unwrap().len();
    assert_eq!(
        layers,
        raw(&plain)["layers"].as_array().unwrap().len() + 1,
        "the section is one layer on top"
    );
    let (_work, rootfs) = unpack(&first);
    let home = rootfs.join("u01/oracle");
    assert_eq!(
        std::fs::read_to_string(home.join("greeting.txt")).unwrap(),
        "hello from oracle\n",
        "a step runs as the image's user, as in WIT's Dockerfile"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("opt/by-root/who")).unwrap(),
        "root\n"
    );
    assert_eq!(
        std::fs::metadata(rootfs.join("opt/by-root/who"))
            .unwrap()
            .uid(),
        0
    );
    assert!(
        !home.join("wlserver/server/lib/readme.txt").exists(),
        "a whiteout"
    );
    let oracle_uid = std::fs::metadata(&home).unwrap().uid();
    assert_ne!(oracle_uid, 0);
    assert_eq!(
        std::fs::metadata(home.join("by-oracle")).unwrap().uid(),
        oracle_uid
    );
    let copied = rootfs.join("u01/tools/extra.sh");
    assert_eq!(
        std::fs::read_to_string(&copied).unwrap(),
        "#!/bin/sh\necho extra\n"
    );
    assert_eq!(std::fs::metadata(&copied).unwrap().uid(), oracle_uid);
    assert!(!rootfs
        .join("tmp")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));

    // update runs the section too, on top of the patched image.
    let again = dir.join("update-commands.txt");
    std::fs::write(
        &again,
        "[final-build-commands]\nLABEL stage=updated\nRUN echo updated > /u01/oracle/updated.txt\n",
    )
    .unwrap();
    let updated = wls.tag("steps:updated");
    wls.pf.ok(&[
        "update",
        "--fromImage",
        &first,
        "--tag",
        &updated,
        "--patches",
        &key(PSU),
        "--additionalBuildCommands",
        &again.display().to_string(),
    ]);
    assert_eq!(
        raw(&updated)["layers"].as_array().unwrap().len(),
        layers + 2,
        "the patches' layer, then the section's"
    );
    let (_updated_work, updated_root) = unpack(&updated);
    assert_eq!(
        std::fs::read_to_string(updated_root.join("u01/oracle/updated.txt")).unwrap(),
        "updated\n"
    );
    assert!(updated_root.join("u01/oracle/greeting.txt").is_file());
    let updated_config = &raw_config(&updated)["config"];
    assert_eq!(updated_config["Labels"]["stage"], "updated");
    assert!(
        updated_config["Labels"]["org.patchfarm.patches"]
            .as_str()
            .unwrap()
            .contains(PSU),
        "{updated_config}"
    );

    let config = &raw_config(&first)["config"];
    assert!(
        config["Env"].to_string().contains("GREETING=hello"),
        "{config}"
    );
    assert_eq!(config["Labels"]["team"], "ops");
    assert_eq!(config["User"], "oracle");
    assert_eq!(config["WorkingDir"], "/u01/oracle");
}

#[test]
fn a_bad_directive_or_a_failing_step_pushes_nothing() {
    if !steps_available("a_bad_directive_or_a_failing_step_pushes_nothing") {
        return;
    }
    let wls = Wls::new();
    wls.fake_jdk();
    let commands = wls.dir.path().join("commands.txt");
    let tag = wls.tag("steps:never");
    for (body, needle) in [
        (
            "[final-build-commands]\nRUN true\nADD https://example.com/x /x\n",
            "commands.txt:3: directive ADD",
        ),
        (
            "[final-build-commands]\nRUN echo last words; exit 3\n",
            "last words",
        ),
    ] {
        std::fs::write(&commands, body).unwrap();
        let err = wls.create_fails(
            &tag,
            &["--additionalBuildCommands", &commands.display().to_string()],
        );
        assert!(err.contains(needle), "{body}: {err}");
    }
    assert_not_pushed(&tag);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let cache = wls.pf.cache_dir().display().to_string();
    assert!(!mounts.contains(&cache), "no sandbox left mounted");
    let builds = wls.pf.cache_dir().join("build");
    let left: Vec<_> = std::fs::read_dir(&builds)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no build directory left: {left:?}");
}

const SECTIONS: &str = r#"[initial-build-commands]
ENV FROM_INITIAL=yes
LABEL initial=yes
RUN echo "$FROM_INITIAL" > "/etc/initial-by-$(id -un).txt"
[before-jdk-install]
RUN test "$(id -u)" != 0
[after-jdk-install]
ENV STAGE=jdk
LABEL stage=jdk
RUN echo "$STAGE by $(id -un)" > /u01/jdk/added-by-section.txt && echo stray > /u01/outside-jdk.txt
[before-fmw-install]
RUN busybox mkdir -p /u01/oracle/early && echo early > /u01/oracle/early/by-before-fmw.txt \
    && echo stray > /u01/before-fmw-stray.txt
[after-fmw-install]
RUN echo fmw > /u01/oracle/added-by-section.txt \
    && busybox rm /u01/oracle/wlserver/server/lib/readme.txt && echo stray > /u01/stray.txt && echo x > /tmp/scratch
COPY files/extra.sh /u01/oracle/tools/
[before-wdt-command]
RUN echo before > /u01/wdt/models/before-wdt.txt
[after-wdt-command]
RUN echo after > /u01/wdt/models/after-wdt.txt && echo stray > /u01/oracle/after-wdt-stray.txt
[final-build-commands]
LABEL stage=final
RUN test -f /u01/jdk/added-by-section.txt && test -f /u01/oracle/added-by-section.txt \
    && test ! -e /u01/oracle/wlserver/server/lib/readme.txt && test ! -e /u01/stray.txt && test ! -e /tmp/scratch \
    && echo "[$STAGE]" > /u01/oracle/final-saw.txt
"#;

/// Each section sees the image as built so far, exactly: the final one sees a file an earlier one
/// deleted gone, and neither what an earlier one wrote outside what its stage keeps nor its /tmp.
/// WIT runs [initial-build-commands] first, as root, in the stage the image is built from: all of
/// it lands, ENV and LABEL too. It runs its stage sections in the build stages that install the
/// JDK, the Oracle Home and WDT, and copies only those into the image: their changes there land, around the JDK's layer,
/// around the Oracle Home's and after WDT's files; their changes elsewhere, their ENV and their
/// LABEL do not. `update` refuses them; WDT's sections without WDT files are refused.
#[test]
fn wits_stage_sections_land_where_wit_puts_them() {
    if !steps_available("wits_stage_sections_land_where_wit_puts_them") {
        return;
    }
    let wls = Wls::new();
    wls.fake_jdk();
    let dir = wls.dir.path();
    let commands = dir.join("sections.txt");
    std::fs::write(&commands, SECTIONS).unwrap();
    let extra = dir.join("extra.sh");
    std::fs::write(&extra, "#!/bin/sh\necho extra\n").unwrap();
    let commands = commands.display().to_string();
    let model = dir.join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let tag = wls.tag("sections:1");
    let extra_arg = extra.display().to_string();
    let model_arg = model.display().to_string();
    let args = [
        "--additionalBuildCommands",
        commands.as_str(),
        "--additionalBuildFiles",
        extra_arg.as_str(),
    ];
    let wdt = [
        "--wdtModel",
        model_arg.as_str(),
        "--wdtModelOnly",
        "--wdtVersion",
        "none",
    ];
    wls.create(&tag, &[&args[..], &wdt[..]].concat());
    let error = wls.create_fails(&wls.tag("sections:nowdt"), &args);
    assert!(
        error.contains(&format!("{commands}:19")) && error.contains("[before-wdt-command]"),
        "{error}"
    );
    let config = raw_config(&tag);
    let history = layer_history(&tag);
    let at = |needle: &str| {
        history
            .iter()
            .position(|h| h.contains(needle))
            .unwrap_or_else(|| panic!("no layer {needle}: {history:#?}"))
    };
    let (initial, jdk, after_jdk) = (
        at("[initial-build-commands]"),
        at("create: JDK"),
        at("[after-jdk-install]"),
    );
    assert_eq!(
        jdk,
        initial + 1,
        "the initial section goes first: {history:#?}"
    );
    let (before_fmw, home) = (at("[before-fmw-install]"), at("at /u01/oracle"));
    let (after_fmw, before_wdt) = (at("[after-fmw-install]"), at("[before-wdt-command]"));
    let (after_wdt, last) = (at("[after-wdt-command]"), at("[final-build-commands]"));
    assert!(
        !history.iter().any(|h| h.contains("[before-jdk-install]")),
        "it changed nothing that lands: no layer"
    );
    assert_eq!(
        (after_jdk, before_fmw, home),
        (jdk + 1, jdk + 2, jdk + 3),
        "{history:#?}"
    );
    assert!(home < after_fmw && after_fmw < before_wdt, "{history:#?}");
    assert_eq!(
        (after_wdt, last),
        (before_wdt + 1, before_wdt + 2),
        "{history:#?}"
    );
    assert_eq!(last, history.len() - 1);

    let (_work, rootfs) = unpack(&tag);
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).ok();
    assert_eq!(
        read("u01/jdk/added-by-section.txt").as_deref(),
        Some("jdk by oracle\n")
    );
    assert_eq!(
        read("u01/oracle/added-by-section.txt").as_deref(),
        Some("fmw\n")
    );
    assert_eq!(
        read("u01/oracle/tools/extra.sh").as_deref(),
        Some("#!/bin/sh\necho extra\n")
    );
    assert!(
        !rootfs
            .join("u01/oracle/wlserver/server/lib/readme.txt")
            .exists(),
        "a whiteout"
    );
    assert_eq!(read("etc/initial-by-root.txt").as_deref(), Some("yes\n"));
    assert_eq!(config["config"]["Labels"]["initial"], "yes");
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(env.contains(&"FROM_INITIAL=yes"), "{env:?}");
    assert_eq!(
        read("u01/oracle/early/by-before-fmw.txt").as_deref(),
        Some("early\n")
    );
    assert_eq!(
        read("u01/wdt/models/before-wdt.txt").as_deref(),
        Some("before\n")
    );
    assert_eq!(
        read("u01/wdt/models/after-wdt.txt").as_deref(),
        Some("after\n")
    );
    for stray in [
        "u01/outside-jdk.txt",
        "u01/stray.txt",
        "u01/before-fmw-stray.txt",
        "u01/oracle/after-wdt-stray.txt",
    ] {
        assert!(
            !rootfs.join(stray).exists(),
            "{stray}: outside what WIT copies"
        );
    }
    assert_eq!(
        read("u01/oracle/final-saw.txt").as_deref(),
        Some("[]\n"),
        "ENV stays in its stage"
    );
    assert_eq!(config["config"]["Labels"]["stage"], "final");

    let refused = wls.tag("sections:update");
    let error = wls.pf.fails(&[
        "update",
        "--fromImage",
        &tag,
        "--tag",
        &refused,
        "--patches",
        &key(PSU),
        "--additionalBuildCommands",
        &commands,
    ]);
    assert!(
        error.contains(&format!("{commands}:2")) && error.contains("[initial-build-commands]"),
        "{error}"
    );
    assert_not_pushed(&refused);
}

/// `--dryRun` runs no build step: Oracle's installers and the OS package install are described
/// (a busybox base has no apt-get, so running it would fail), and nothing is pushed.
#[test]
fn a_dry_run_describes_build_steps_without_running_them() {
    let wls = Wls::new();
    wls.fake_jdk();
    let installer = patchfarm_e2e::oui::shell_installer_zip(wls.dir.path(), "14.1.1.0.0");
    wls.add_installer("wls", "14.1.1.0.0", &installer);
    let tag = wls.tag("dry:1");
    let out = wls.pf.ok(&[
        "create",
        "--dryRun",
        "--tag",
        &tag,
        "--fromImage",
        &wls.base,
        "--jdkVersion",
        "17",
        "--version",
        "14.1.1.0.0",
        "--packageManager",
        "APTGET",
    ]);
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let image = &plan["images"][0];
    assert_eq!(
        image["oracleHome"]["installedBy"], "Oracle's installers, run as build steps",
        "{image}"
    );
    let command = image["osPackages"]["command"].as_str().unwrap();
    assert!(command.starts_with("apt-get -y update"), "{command}");
    assert_not_pushed(&tag);
}
