//! Pushing to a registry with htpasswd auth behind TLS, credentials from a docker config.

use patchfarm_e2e::{busybox_base, run, write_wdt_zip, Patchfarm, Registry};
use std::process::Command;

#[test]
fn pushes_with_docker_config_credentials_and_reports_a_wrong_password_clearly() {
    let registry = Registry::start_with_auth_tls("deployer", "s3cret-pass");
    let base = busybox_base(&registry);
    let ca = registry.tls.as_ref().unwrap().join("ca.crt");
    let inputs = tempfile::tempdir().unwrap();
    let model = inputs.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    write_wdt_zip(&inputs.path().join("wdt.zip"), "4.0.0");
    let model = model.display().to_string();
    let ca_flag = ca.display().to_string();

    let pf = Patchfarm::new();
    pf.login(&registry.host(), "deployer", "s3cret-pass");
    let tag = format!("{}/secure/aux:1", registry.host());
    let args = [
        "createAuxImage",
        "--registry-ca",
        &ca_flag,
        "--tag",
        &tag,
        "--fromImage",
        &base,
        "--wdtModel",
        &model,
        "--wdtVersion",
        "none",
    ];
    pf.ok(&args);
    let mut inspect = Command::new("skopeo");
    inspect
        .arg("inspect")
        .args(registry.skopeo_flags(""))
        .arg(format!("docker://{tag}"));
    let inspected: serde_json::Value = serde_json::from_str(&run(&mut inspect)).unwrap();
    assert_eq!(
        inspected["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.as_str() == Some("WDT_HOME=/auxiliary"))
            .count(),
        1
    );

    let wrong = Patchfarm::new();
    wrong.login(&registry.host(), "deployer", "not-the-password");
    let bad_tag = format!("{}/secure/aux:wrong", registry.host());
    let mut bad_args = args;
    bad_args[4] = &bad_tag;
    let stderr = wrong.fails(&bad_args);
    assert!(
        stderr.contains(&format!(
            "authentication failed for registry {}",
            registry.host()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-password") && !stderr.contains("s3cret-pass"),
        "a password leaked: {stderr}"
    );
    assert_eq!(
        registry.tags("secure/aux"),
        vec!["1".to_string()],
        "the failed push must tag nothing"
    );

    // No credentials at all: told that the registry needs them.
    let anonymous = Patchfarm::new();
    let stderr = anonymous.fails(&bad_args);
    assert!(stderr.contains("requires authentication"), "{stderr}");

    // Without the CA the certificate is not trusted, and the error says TLS went wrong for that registry.
    let stderr = pf.fails(&[
        "createAuxImage",
        "--tag",
        &bad_tag,
        "--fromImage",
        &base,
        "--wdtModel",
        &model,
        "--wdtVersion",
        "none",
    ]);
    assert!(
        stderr.contains(&format!("TLS with registry {} failed", registry.host()))
            && stderr.contains("--registry-ca"),
        "{stderr}"
    );
}
