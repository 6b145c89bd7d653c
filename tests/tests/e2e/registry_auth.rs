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

/// A docker credential helper on PATH (`docker-credential-NAME get`), as credHelpers/credsStore name them.
fn install_helper(dir: &std::path::Path, name: &str, user: &str, secret: &str) {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn credentials_come_from_cred_helpers_and_creds_store() {
    let registry = Registry::start_with_auth_tls("helper-user", "helper-secret");
    let base = busybox_base(&registry);
    let ca = registry
        .tls
        .as_ref()
        .unwrap()
        .join("ca.crt")
        .display()
        .to_string();
    let bin = tempfile::tempdir().unwrap();
    install_helper(bin.path(), "pftest", "helper-user", "helper-secret");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let model = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(model.path(), "topology: {}\n").unwrap();
    let model = model.path().display().to_string();

    for (tag, config) in [
        (
            "helpers",
            serde_json::json!({"credHelpers": {registry.host(): "pftest"}}),
        ),
        ("store", serde_json::json!({"credsStore": "pftest"})),
    ] {
        let mut pf = Patchfarm::new();
        pf.extra_env.push(("PATH".into(), path.clone()));
        std::fs::create_dir_all(pf.docker_config_dir()).unwrap();
        std::fs::write(
            pf.docker_config_dir().join("config.json"),
            config.to_string(),
        )
        .unwrap();
        let target = format!("{}/helper/aux:{tag}", registry.host());
        pf.ok(&[
            "createAuxImage",
            "--registry-ca",
            &ca,
            "--tag",
            &target,
            "--fromImage",
            &base,
            "--wdtModel",
            &model,
            "--wdtVersion",
            "none",
        ]);
    }
    let mut tags = registry.tags("helper/aux");
    tags.sort();
    assert_eq!(tags, vec!["helpers".to_string(), "store".to_string()]);
}
