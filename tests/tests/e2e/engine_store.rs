//! Tags without a registry, as in every WIT example (`--tag wls:12.2.1.4.0`): the image lands in
//! the Docker engine's image store (`docker images` lists it, `docker run` starts it), is read
//! back from there by `inspect` and `update`, and with no engine reachable the command refuses
//! naming the two ways out, leaving nothing behind.

use patchfarm_e2e::tools::{docker_available, run};
use patchfarm_e2e::wls::{key, Wls, PSU, REC};
use std::process::Command;

/// A name no other test or run uses, removed from the engine when dropped.
struct EngineTags(Vec<String>);

impl EngineTags {
    fn new(names: &[&str]) -> Self {
        let unique = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        EngineTags(
            names
                .iter()
                .map(|n| format!("patchfarm-test-{n}:{unique}"))
                .collect(),
        )
    }
}

impl Drop for EngineTags {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
        }
    }
}

#[test]
fn a_tag_without_a_registry_goes_to_the_docker_engine_and_is_read_back_from_it() {
    if !docker_available("a_tag_without_a_registry_goes_to_the_docker_engine") {
        return;
    }
    let wls = Wls::new();
    wls.fake_jdk();
    let tags = EngineTags::new(&["wls", "wls-patched"]);
    let (created, updated) = (&tags.0[0], &tags.0[1]);
    let report = wls.create(created, &["--patches", &key(PSU)]);
    assert_eq!(
        report["reference"],
        format!("docker-daemon:{created}"),
        "{report}"
    );

    let listed =
        run(Command::new("docker").args(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        listed.lines().any(|l| l == created),
        "docker images:\n{listed}"
    );
    let java = run(Command::new("docker").args([
        "run",
        "--rm",
        created,
        "sh",
        "-c",
        "id -un; ls /u01/oracle/wlserver/server/lib",
    ]));
    assert!(
        java.starts_with("oracle\n") && java.contains("weblogic.jar"),
        "{java}"
    );

    // Read back from the engine: inspect sees the patches, update builds on it.
    let inspected: serde_json::Value = serde_json::from_str(&wls.pf.ok(&[
        "inspect",
        "--image",
        created,
        "--patches",
        "--format",
        "JSON",
    ]))
    .unwrap();
    let patches = inspected["oraclePatches"].to_string();
    assert!(patches.contains(PSU), "{inspected}");
    wls.pf.ok(&[
        "update",
        "--fromImage",
        created,
        "--tag",
        updated,
        "--patches",
        &key(REC),
    ]);
    let inspected: serde_json::Value = serde_json::from_str(&wls.pf.ok(&[
        "inspect",
        "--image",
        &format!("docker-daemon:{updated}"),
        "--patches",
        "--format",
        "JSON",
    ]))
    .unwrap();
    let patches = inspected["oraclePatches"].to_string();
    assert!(
        patches.contains(PSU) && patches.contains(REC),
        "{inspected}"
    );
    // The engine holds the same image the CLI built: its id is the config digest of the build.
    let id = run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", updated]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
}

#[test]
fn without_a_reachable_engine_a_tag_without_a_registry_is_refused_naming_the_ways_out() {
    let wls = Wls::new();
    wls.fake_jdk();
    let gone = wls.dir.path().join("no-engine.sock");
    let mut wls = wls;
    wls.pf
        .extra_env
        .push(("DOCKER_HOST".into(), format!("unix://{}", gone.display())));
    let err = wls.create_fails("wls:12.2.1.4.0", &[]);
    for needle in [
        "docker-daemon:wls:12.2.1.4.0 names no registry",
        "not reachable",
        "HOST[:PORT]/wls:12.2.1.4.0",
        "oci:DIR:12.2.1.4.0",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in: {err}");
    }
    // A name without a registry that the engine cannot answer for is looked for where docker
    // would pull it, and both places are named.
    let err = wls.pf.fails(&["inspect", "--image", "busybox"]);
    assert!(
        err.contains("not read from the local container engine")
            && err.contains("docker.io/library/busybox:latest"),
        "{err}"
    );
}
