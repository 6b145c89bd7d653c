//! Transient registry failures (503, 429, dropped connections) are retried; the push completes.

use patchfarm_e2e::faults::{Fault, FaultProxy, Rule};
use patchfarm_e2e::{busybox_base, run, write_wdt_zip, Patchfarm, Registry};
use std::process::Command;

#[test]
fn push_survives_503_429_and_dropped_connections() {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let proxy = FaultProxy::start(
        registry.addr,
        vec![
            Rule {
                method: "PUT",
                path_part: "/blobs/uploads/",
                fault: Fault::Status(503),
                times: 2,
            },
            Rule {
                method: "HEAD",
                path_part: "/blobs/",
                fault: Fault::Status(429),
                times: 1,
            },
            Rule {
                method: "PUT",
                path_part: "/manifests/",
                fault: Fault::Drop,
                times: 1,
            },
        ],
    );
    let pf = Patchfarm::new();
    let inputs = tempfile::tempdir().unwrap();
    let model = inputs.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    write_wdt_zip(&inputs.path().join("wdt.zip"), "4.2.1");
    pf.ok(&[
        "cache",
        "addInstaller",
        "--type",
        "wdt",
        "--version",
        "latest",
        "--path",
        &inputs.path().join("wdt.zip").display().to_string(),
    ]);
    let through_proxy_base = base.replace(&registry.host(), &proxy.host());
    let tag = format!("{}/retry/aux:1", proxy.host());
    let report: serde_json::Value = serde_json::from_str(&pf.ok(&[
        "createAuxImage",
        "--json",
        "--tag",
        &tag,
        "--fromImage",
        &through_proxy_base,
        "--wdtModel",
        &model.display().to_string(),
    ]))
    .unwrap();
    assert_eq!(proxy.injected(), 4, "every planned fault was hit");
    let direct = format!("docker://{}/retry/aux:1", registry.host());
    let digest = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &direct,
    ]));
    assert_eq!(digest.trim(), report["digest"].as_str().unwrap());
    // The image is whole: every layer can be read back.
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", &direct])
        .arg(format!("oci:{}:x", dir.path().join("l").display())));
}

#[test]
fn a_permanent_failure_is_not_retried_and_tags_nothing() {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let proxy = FaultProxy::start(
        registry.addr,
        vec![Rule {
            method: "PUT",
            path_part: "/blobs/uploads/",
            fault: Fault::Status(400),
            times: 100,
        }],
    );
    let pf = Patchfarm::new();
    let inputs = tempfile::tempdir().unwrap();
    let model = inputs.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let tag = format!("{}/perm/aux:1", proxy.host());
    let err = pf.fails(&[
        "createAuxImage",
        "--tag",
        &tag,
        "--fromImage",
        &base.replace(&registry.host(), &proxy.host()),
        "--wdtModel",
        &model.display().to_string(),
        "--wdtVersion",
        "none",
    ]);
    assert!(
        err.contains("HTTP 400") && err.contains(&proxy.host()),
        "{err}"
    );
    // The layer and the config upload concurrently: each may meet the 400 once, never again.
    assert!(
        (1..=2).contains(&proxy.injected()),
        "a 400 must not be retried: {} attempts",
        proxy.injected()
    );
    assert!(registry.tags("perm/aux").is_empty());
}
