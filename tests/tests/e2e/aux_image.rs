//! createAuxImage end to end: real registry, checked by skopeo, umoci and the Docker engine.

use patchfarm_e2e::{busybox_base, docker_available, run, write_wdt_zip, Patchfarm, Registry};
use std::path::Path;
use std::process::Command;

struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("model.yaml"),
            "domainInfo:\n  AdminUserName: '@@SECRET:__weblogic-credentials__:username@@'\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("variables.properties"),
            "ManagedServerCount=2\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("archive.zip"),
            b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        )
        .unwrap();
        write_wdt_zip(&dir.path().join("weblogic-deploy.zip"), "4.2.1");
        Inputs { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn add_wdt(pf: &Patchfarm, inputs: &Inputs) {
    pf.add_wdt(&inputs.dir.path().join("weblogic-deploy.zip"));
}

fn aux_args<'a>(tag: &'a str, base: &'a str, inputs: &'a Inputs, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "createAuxImage".into(),
        "--tag".into(),
        tag.into(),
        "--fromImage".into(),
        base.into(),
        "--wdtModel".into(),
        inputs.path("model.yaml"),
        "--wdtVariables".into(),
        inputs.path("variables.properties"),
        "--wdtArchive".into(),
        inputs.path("archive.zip"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn push_report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn aux_image_is_readable_by_skopeo_umoci_and_docker() {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let pf = Patchfarm::new();
    let inputs = Inputs::new();
    add_wdt(&pf, &inputs);
    let tag = format!("{}/wls/aux:1.0", registry.host());
    pf.ok(&strs(&aux_args(
        &tag,
        &base,
        &inputs,
        &["--chown", "oracle:oracle"],
    )));

    let inspect: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))))
    .unwrap();
    let env: Vec<&str> = inspect["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"AUXILIARY_IMAGE_PATH=/auxiliary"), "{env:?}");
    assert!(env.contains(&"WDT_MODEL_HOME=/auxiliary/models"), "{env:?}");
    assert_eq!(inspect["Labels"]["org.patchfarm.wdt.version"], "latest");
    let raw: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))))
    .unwrap();
    assert_eq!(
        raw["annotations"]["org.opencontainers.image.base.name"],
        base
    );
    assert!(raw["annotations"]["org.opencontainers.image.base.digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    // umoci reads the image from an OCI layout copy and shows files and owners.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{tag}"))
        .arg(format!("oci:{}:aux", layout.display())));
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:aux", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("oracle:x:1000:1000:"), "{passwd}");
    for file in [
        "auxiliary/models/model.yaml",
        "auxiliary/models/variables.properties",
        "auxiliary/models/archive.zip",
        "auxiliary/weblogic-deploy/VERSION.txt",
        "auxiliary/weblogic-deploy/bin/createDomain.sh",
    ] {
        let meta =
            std::fs::symlink_metadata(rootfs.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "{file} owner");
    }
    assert_eq!(
        std::fs::read_to_string(rootfs.join("auxiliary/models/model.yaml")).unwrap(),
        std::fs::read_to_string(inputs.path("model.yaml")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(rootfs.join("auxiliary/weblogic-deploy/bin/createDomain.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );

    // patchfarm inspect reads the same image back without running it.
    let inspected: serde_json::Value =
        serde_json::from_str(&pf.ok(&["inspect", "--image", &tag])).unwrap();
    assert_eq!(inspected["os"]["id"], "busybox");
    assert_eq!(
        inspected["os"]["architecture"], "x86_64",
        "uname -m, as WIT prints it"
    );
    assert_eq!(inspected["packageManager"], "NONE");
    assert_eq!(inspected["wdtHome"], "/auxiliary");
    assert_eq!(inspected["wdtModelHome"], "/auxiliary/models");
    assert_eq!(inspected["wdtVersion"], "4.2.1");
    assert!(
        inspected.get("oracleHome").is_none() && inspected.get("javaHome").is_none(),
        "{inspected}"
    );

    if docker_available("aux_image_is_readable_by_skopeo_umoci_and_docker") {
        run(Command::new("docker").args(["pull", "-q", &tag]));
        let listing =
            run(Command::new("docker").args(["run", "--rm", &tag, "ls", "/auxiliary/models"]));
        let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
        assert!(
            listing.contains("model.yaml") && listing.contains("variables.properties"),
            "{listing}"
        );
    }
}

#[test]
fn same_inputs_same_digest_and_a_repush_uploads_nothing() {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let pf = Patchfarm::new();
    let inputs = Inputs::new();
    add_wdt(&pf, &inputs);
    let tag = format!("{}/aux:det", registry.host());
    let first = push_report(&pf.ok(&strs(&aux_args(&tag, &base, &inputs, &["--json"]))));
    assert!(first["blobs_uploaded"].as_u64().unwrap() >= 2, "{first}");
    let sessions_after_first = registry.upload_sessions();
    let leftovers: Vec<_> = std::fs::read_dir(pf.cache_dir().join("build"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "built layers must not pile up in the cache: {leftovers:?}"
    );
    assert!(
        sessions_after_first > 0,
        "the registry log should show the first push's uploads"
    );

    // Another cache and home: nothing shared but the inputs.
    let pf2 = Patchfarm::new();
    add_wdt(&pf2, &inputs);
    let second = push_report(&pf2.ok(&strs(&aux_args(&tag, &base, &inputs, &["--json"]))));
    assert_eq!(
        first["digest"], second["digest"],
        "same inputs must give the same digest"
    );
    assert_eq!(second["bytes_uploaded"], 0, "{second}");
    assert_eq!(second["blobs_uploaded"], 0, "{second}");
    assert_eq!(
        registry.upload_sessions(),
        sessions_after_first,
        "the registry saw new blob uploads on the re-push"
    );

    // A different timestamp is a different image.
    let mut pf3 = Patchfarm::new();
    pf3.extra_env
        .push(("SOURCE_DATE_EPOCH".into(), "1700000000".into()));
    add_wdt(&pf3, &inputs);
    let third = push_report(&pf3.ok(&strs(&aux_args(
        &format!("{}/aux:epoch", registry.host()),
        &base,
        &inputs,
        &["--json"],
    ))));
    assert_ne!(first["digest"], third["digest"]);
}

#[test]
fn pushes_to_another_repository_by_mounting_and_to_an_oci_layout() {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let pf = Patchfarm::new();
    let inputs = Inputs::new();
    add_wdt(&pf, &inputs);
    let first = push_report(&pf.ok(&strs(&aux_args(
        &format!("{}/team-a/aux:1", registry.host()),
        &base,
        &inputs,
        &["--json"],
    ))));
    let other = push_report(&pf.ok(&strs(&aux_args(
        &format!("{}/team-b/aux:1", registry.host()),
        &base,
        &inputs,
        &["--json"],
    ))));
    assert_eq!(first["digest"], other["digest"]);
    assert_eq!(other["bytes_uploaded"], 0, "{other}");
    assert!(other["blobs_mounted"].as_u64().unwrap() >= 2, "{other}");

    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("oci");
    let layout_tag = format!("oci:{}:v1", layout.display());
    let written = push_report(&pf.ok(&strs(&aux_args(&layout_tag, &base, &inputs, &["--json"]))));
    assert_eq!(
        written["digest"], first["digest"],
        "layout and registry images are the same value"
    );
    let bundle = out.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle));
    assert!(bundle.join("rootfs/auxiliary/models/model.yaml").is_file());
    // And patchfarm reads layouts back.
    let inspected: serde_json::Value =
        serde_json::from_str(&pf.ok(&["inspect", "--image", &layout_tag])).unwrap();
    assert_eq!(inspected["wdtVersion"], "4.2.1");
}

#[test]
fn dry_run_prints_the_plan_and_pushes_nothing() {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let pf = Patchfarm::new();
    let inputs = Inputs::new();
    add_wdt(&pf, &inputs);
    let out = pf.ok(&strs(&aux_args(
        &format!("{}/aux:dry", registry.host()),
        &base,
        &inputs,
        &["--dryRun", "--wdtModelHome", "/auxiliary/m"],
    )));
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let files: Vec<&str> = plan["layers"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"/auxiliary/m/model.yaml"), "{files:?}");
    assert!(
        files.contains(&"/auxiliary/weblogic-deploy/VERSION.txt"),
        "{files:?}"
    );
    assert!(plan["config"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "WDT_MODEL_HOME=/auxiliary/m"));
    assert!(registry.tags("aux").is_empty(), "a dry run must not push");
    assert!(
        !Path::new(&pf.cache_dir().join("build")).exists(),
        "a dry run must not build layers"
    );
}

const AUX_SECTIONS: &str = r#"[initial-build-commands]
ENV FROM_INITIAL=yes
LABEL initial=yes
RUN id -u > /etc/initial-uid.txt && rm /etc/base-model/model.yaml
[final-build-commands]
COPY files/extra.sh ./
RUN echo "$(id -un) in $(pwd) $FROM_INITIAL" > final.txt && test ! -e /etc/base-model/model.yaml
"#;

/// WIT's auxiliary image runs two sections of --additionalBuildCommands: the initial one as root
/// on the base (all of it lands, ENV and LABEL too), the final one last as the image's user in
/// the WDT home. The build-stage sections it has no stage for are refused by file and line.
#[test]
fn aux_image_runs_wits_initial_and_final_sections() {
    use patchfarm_e2e::tools::steps_available;
    use patchfarm_e2e::wls::{assert_not_pushed, layer_history, raw_config, unpack};
    if !steps_available("aux_image_runs_wits_initial_and_final_sections") {
        return;
    }
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let pf = Patchfarm::new();
    let inputs = Inputs::new();
    add_wdt(&pf, &inputs);
    // A base with a file the initial section removes: the final one must not see it.
    let with_model = format!("{}/wls/aux-base:model", registry.host());
    pf.ok(&strs(&aux_args(
        &with_model,
        &base,
        &inputs,
        &[
            "--wdtVersion",
            "none",
            "--wdtHome",
            "/etc",
            "--wdtModelHome",
            "/etc/base-model",
        ],
    )));
    let commands = inputs.dir.path().join("commands.txt");
    std::fs::write(&commands, AUX_SECTIONS).unwrap();
    let extra = inputs.dir.path().join("extra.sh");
    std::fs::write(&extra, "#!/bin/sh\necho extra\n").unwrap();
    let tag = format!("{}/wls/aux:sections", registry.host());
    let (commands_arg, extra_arg) = (commands.display().to_string(), extra.display().to_string());
    pf.ok(&strs(&aux_args(
        &tag,
        &with_model,
        &inputs,
        &[
            "--additionalBuildCommands",
            &commands_arg,
            "--additionalBuildFiles",
            &extra_arg,
        ],
    )));

    let history = layer_history(&tag);
    let at = |needle: &str| {
        history
            .iter()
            .position(|h| h.contains(needle))
            .unwrap_or_else(|| panic!("no layer {needle}: {history:#?}"))
    };
    let (initial, aux, last) = (
        at("[initial-build-commands]"),
        at("createAuxImage --wdtHome /auxiliary"),
        at("[final-build-commands]"),
    );
    assert_eq!((aux, last), (initial + 1, initial + 2), "{history:#?}");
    assert_eq!(last, history.len() - 1);
    let (_work, rootfs) = unpack(&tag);
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).ok();
    assert_eq!(read("etc/initial-uid.txt").as_deref(), Some("0\n"));
    assert!(
        !rootfs.join("etc/base-model/model.yaml").exists(),
        "a whiteout"
    );
    assert_eq!(
        read("auxiliary/final.txt").as_deref(),
        Some("oracle in /auxiliary yes\n"),
        "the final section runs as the image's user in its WORKDIR, after the initial's ENV"
    );
    assert_eq!(
        read("auxiliary/extra.sh").as_deref(),
        Some("#!/bin/sh\necho extra\n")
    );
    assert!(rootfs.join("auxiliary/models/model.yaml").is_file());
    let config = raw_config(&tag);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(env.contains(&"FROM_INITIAL=yes"), "{env:?}");
    assert!(env.contains(&"AUXILIARY_IMAGE_PATH=/auxiliary"), "{env:?}");
    assert_eq!(config["config"]["Labels"]["initial"], "yes");
    assert_eq!(config["config"]["WorkingDir"], "/auxiliary");

    let stage = inputs.dir.path().join("stage.txt");
    std::fs::write(
        &stage,
        "[final-build-commands]\nRUN true\n[after-fmw-install]\nRUN true\n",
    )
    .unwrap();
    let refused = format!("{}/wls/aux:refused", registry.host());
    let stage_arg = stage.display().to_string();
    let error = pf.fails(&strs(&aux_args(
        &refused,
        &base,
        &inputs,
        &["--additionalBuildCommands", &stage_arg],
    )));
    assert!(
        error.contains(&format!("{stage_arg}:4")) && error.contains("[after-fmw-install]"),
        "{error}"
    );
    assert_not_pushed(&refused);
}
