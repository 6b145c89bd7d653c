//! patchfarm's own images, as `deploy/images.sh` builds them: `patchfarm assemble` puts the
//! binaries (and here, the shared libraries they load, instead of a Debian base) on scratch, with
//! their entrypoint — no Dockerfile, no daemon. Built twice, the same digest; the Docker engine
//! runs the result.

use patchfarm_e2e::cluster::coordinator_bin;
use patchfarm_e2e::tools::docker_available;
use patchfarm_e2e::wls::{raw, raw_digest};
use patchfarm_e2e::{run, Patchfarm, Registry};
use std::process::Command;

/// `--add` arguments for the shared libraries `binary` loads, each the real file at the path the
/// loader asks for.
fn libraries(binary: &std::path::Path) -> Vec<String> {
    let listed = run(Command::new("ldd").arg(binary));
    listed
        .lines()
        .filter_map(|line| {
            let path = line
                .split("=>")
                .last()?
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/'))?;
            let real = std::fs::canonicalize(path).ok()?;
            Some(format!("{}:{path}", real.display()))
        })
        .collect()
}

#[test]
fn patchfarms_own_images_are_reproducible_and_run_in_the_docker_engine() {
    let registry = Registry::start();
    let pf = Patchfarm::new();
    let binary = coordinator_bin();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("README"), "configuration goes here\n").unwrap();
    // A root filesystem added at / lands as the image's root entries.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/patchfarm")).unwrap();
    let build = |tag: &str| {
        let mut args: Vec<String> = vec![
            "assemble".into(),
            "--fromImage".into(),
            "scratch".into(),
            "--tag".into(),
            tag.into(),
            "--add".into(),
            format!("{}:/usr/local/bin/patchfarm-coordinator", binary.display()),
            "--add".into(),
            format!("{}:/etc/patchfarm", config.path().display()),
            "--add".into(),
            format!("{}:/", root.path().display()),
            "--label".into(),
            "org.opencontainers.image.title=patchfarm-coordinator".into(),
            "--user".into(),
            "10001:10001".into(),
        ];
        for library in libraries(&binary) {
            args.extend(["--add".into(), library]);
        }
        args.extend([
            "--entrypoint".into(),
            "/usr/local/bin/patchfarm-coordinator".into(),
        ]);
        pf.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    let (first, second) = (
        format!("{}/patchfarm/coordinator:a", registry.host()),
        format!("{}/patchfarm/coordinator:b", registry.host()),
    );
    build(&first);
    build(&second);
    assert_eq!(
        raw_digest(&first),
        raw_digest(&second),
        "same inputs, same digest"
    );
    let manifest = raw(&first);
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        1,
        "scratch: one layer"
    );
    let inspected: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{first}"))))
    .unwrap();
    assert_eq!(
        inspected["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/patchfarm-coordinator"])
    );
    assert_eq!(inspected["config"]["User"], "10001:10001");
    let (_w, unpacked) = patchfarm_e2e::wls::unpack(&first);
    assert!(unpacked.join("var/lib/patchfarm").is_dir());
    assert!(unpacked.join("etc/patchfarm/README").is_file());

    // Bad input is refused by name, nothing pushed.
    let error = pf.fails(&[
        "assemble",
        "--fromImage",
        "scratch",
        "--tag",
        &first,
        "--add",
        "/nonexistent:/x",
    ]);
    assert!(error.contains("/nonexistent"), "{error}");

    if !docker_available("patchfarms_own_images_are_reproducible_and_run_in_the_docker_engine") {
        return;
    }
    run(Command::new("docker").args(["pull", "-q", &first]));
    let version = run(Command::new("docker").args(["run", "--rm", &first, "--version"]));
    assert!(version.starts_with("patchfarm-coordinator "), "{version}");
    let _ = Command::new("docker").args(["rmi", "-f", &first]).output();
}
