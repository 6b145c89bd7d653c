//! Transient registry failures (503, 429, dropped connections) are retried; the push completes.

use patchfarm_e2e::faults::{Fault, FaultProxy, Rule};
use patchfarm_e2e::{run, AuxFixture};
use std::process::Command;

#[test]
fn push_survives_503_429_and_dropped_connections() {
    let fx = AuxFixture::new();
    let proxy = FaultProxy::start(
        fx.registry.addr,
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
    let base = fx.base.replace(&fx.registry.host(), &proxy.host());
    let tag = format!("{}/retry/aux:1", proxy.host());
    let report: serde_json::Value = serde_json::from_str(&fx.pf.ok(&[
        "createAuxImage",
        "--json",
        "--tag",
        &tag,
        "--fromImage",
        &base,
        "--wdtModel",
        &fx.model(),
    ]))
    .unwrap();
    assert_eq!(proxy.injected(), 4, "every planned fault was hit");
    let direct = format!("docker://{}/retry/aux:1", fx.registry.host());
    let digest = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &direct,
    ]));
    assert_eq!(digest.trim(), report["digest"].as_str().unwrap());
    // The image is whole: every blob can be read back.
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", &direct])
        .arg(format!("oci:{}:x", dir.path().join("l").display())));
}

#[test]
fn a_permanent_failure_is_not_retried_and_tags_nothing() {
    let fx = AuxFixture::new();
    let proxy = FaultProxy::start(
        fx.registry.addr,
        vec![Rule {
            method: "PUT",
            path_part: "/blobs/uploads/",
            fault: Fault::Status(400),
            times: 100,
        }],
    );
    let base = fx.base.replace(&fx.registry.host(), &proxy.host());
    let tag = format!("{}/perm/aux:1", proxy.host());
    let err = fx.pf.fails(&[
        "createAuxImage",
        "--tag",
        &tag,
        "--fromImage",
        &base,
        "--wdtModel",
        &fx.model(),
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
    assert!(fx.registry.tags("perm/aux").is_empty());
}

#[test]
fn a_stalled_registry_is_reported_at_its_deadline_and_tags_nothing() {
    let fx = AuxFixture::new();
    // The base's manifest never comes, then its config blob never comes.
    for (path_part, what) in [("/manifests/", "manifest"), ("/blobs/sha256:", "blob")] {
        let proxy = FaultProxy::start(
            fx.registry.addr,
            vec![Rule {
                method: "GET",
                path_part,
                fault: Fault::Stall,
                times: 100,
            }],
        );
        let base = fx.base.replace(&fx.registry.host(), &proxy.host());
        let tag = format!("{}/stalled/aux:1", fx.registry.host());
        let err = fx.pf.fails(&[
            "--registry-timeout",
            "1",
            "createAuxImage",
            "--tag",
            &tag,
            "--fromImage",
            &base,
            "--wdtModel",
            &fx.model(),
            "--wdtVersion",
            "none",
        ]);
        assert!(
            err.contains(&format!("registry {} sent nothing for 1 s", proxy.host())),
            "{what}: {err}"
        );
        assert_eq!(proxy.injected(), 1, "{what}: a stall is not retried");
        assert!(fx.registry.tags("stalled/aux").is_empty());
    }
}
