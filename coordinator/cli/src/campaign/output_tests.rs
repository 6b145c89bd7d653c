//! Campaign outputs beyond the plan: a domain WDT builds from its model, `--gitops-out`'s
//! files and the rollout waves with their script.

use super::tests::{EXAMPLE, KUBECTL_DOMAINS};
use super::*;

#[test]
fn a_domain_with_a_model_is_built_by_wdt_on_the_new_base() {
    let with_model = EXAMPLE.replace(
        "image: registry.eu.example.com:5000/domains/payments:7, base: wls14}",
        "image: registry.eu.example.com:5000/domains/payments:7, base: wls14,\n     model: {files: [models/payments.yaml], archives: [/srv/app.zip], domainHome: /u01/domains/payments}}",
    );
    let dir = std::path::Path::new("/srv/campaigns");
    let (file, _) = CampaignFile::load(&dir.join("cpu.yaml"), &with_model).unwrap();
    let model = file.domains[0].model.as_ref().unwrap();
    assert_eq!(
        model.files,
        ["/srv/campaigns/models/payments.yaml"],
        "anchored"
    );
    assert_eq!(model.domain_type, "WLS");
    let plan = plan(&file).unwrap();
    let job = plan
        .jobs
        .iter()
        .find(|j| j.key == "domain/prod/payments")
        .unwrap();
    assert_eq!(job.after, ["base/wls14"]);
    let patchfarm_jobs::Job::Update(update) = &job.job else {
        panic!(
            "a domain built from its model is an update of the base: {:?}",
            job.job
        )
    };
    assert_eq!(
        update.from_image.to_string(),
        "registry.eu.example.com:5000/wls/base:12.2.1.4.0-cpu-2026-10"
    );
    let domain = update.wdt.domain_build().unwrap();
    assert_eq!(domain.domain_home, "/u01/domains/payments");
    assert_eq!(
        domain.operation,
        patchfarm_engine::recipe::domain::WdtOperation::Create
    );
    assert!(
        job.inputs.contains(&"wdt_latest".to_string()),
        "{:?}",
        job.inputs
    );

    let wrong = with_model.replace(
        "name: payments, namespace: prod, domainHomeSourceType: DomainInImage",
        "name: payments, namespace: prod, domainHomeSourceType: FromModel",
    );
    let err = CampaignFile::parse("wrong.yaml", &wrong)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model: WDT builds a domain"), "{err}");
}

#[test]
fn gitops_out_writes_each_domains_manifest_with_only_its_image_changed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("domains.yaml"), KUBECTL_DOMAINS).unwrap();
    let head = EXAMPLE.split("domains:\n").next().unwrap();
    let text = format!(
        "{head}domainsFrom:\n  - {{file: domains.yaml, base: wls14, namespaces: [prod, shop], selector: \"tier=web\"}}\n"
    );
    let (file, _) = CampaignFile::load(&dir.path().join("q4.yaml"), &text).unwrap();
    // Stored in the farm and read back, as `campaign report` reads it.
    let file = CampaignFile::parse("stored", &serde_norway::to_string(&file).unwrap()).unwrap();
    let new_image = "registry.eu.example.com:5000/domains/payments@sha256:0123";
    let report = serde_json::json!({"domains": [
        {"name": "payments", "namespace": "prod", "newImage": new_image},
        {"name": "orders", "namespace": "shop", "newImage": null},
    ]});
    let files = gitops::files(&file, &report).unwrap();
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "prod/payments.patch.yaml",
            "prod/payments.yaml",
            "kustomization.yaml"
        ]
    );
    let exported: serde_json::Value = serde_norway::from_str(KUBECTL_DOMAINS).unwrap();
    let mut expected = exported["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metadata"]["name"] == "payments")
        .unwrap()
        .clone();
    let written: serde_json::Value = serde_norway::from_str(&files[1].1).unwrap();
    assert_ne!(written, expected);
    expected["spec"]["image"] = new_image.into();
    assert_eq!(
        written, expected,
        "the input Domain with only spec.image changed"
    );
    let patch: serde_json::Value = serde_norway::from_str(&files[0].1).unwrap();
    assert_eq!(patch["spec"], serde_json::json!({"image": new_image}));
    assert_eq!(patch["metadata"]["namespace"], "prod");
    assert!(
        files[2].1.contains("path: prod/payments.patch.yaml"),
        "{}",
        files[2].1
    );

    let mut hostile = file.clone();
    hostile.domains[0].domain_resource = Some("..".into());
    assert!(gitops::files(&hostile, &report).is_err());
}

#[test]
fn waves_roll_the_canary_first_then_batches_each_gated_on_the_operator() {
    let with_waves = format!(
        "{EXAMPLE}rollout:\n  waves:\n    - {{name: canary, namespaces: [ops]}}\n    - {{name: batch, batchSize: 2}}\n"
    );
    let file = CampaignFile::parse("waves.yaml", &with_waves).unwrap();
    let domains: Vec<serde_json::Value> = file
        .domains
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name, "namespace": d.namespace, "domainResource": d.resource(),
                "kubectl": format!("kubectl patch domain {} -n {} --type merge -p '{{\"spec\":{{\"image\":\"new\"}}}}'", d.resource(), d.namespace),
            })
        })
        .collect();
    let waves = waves::report_waves(file.rollout.as_ref(), &domains);
    assert_eq!(
        waves,
        serde_json::json!([
            {"name": "canary", "domains": ["ops/reports", "ops/audit"]},
            {"name": "batch-1", "domains": ["prod/payments", "prod/billing"]},
            {"name": "batch-2", "domains": ["shop/orders", "shop/catalog"]},
        ])
    );
    assert_eq!(
        waves::report_waves(None, &domains)[0]["domains"]
            .as_array()
            .unwrap()
            .len(),
        6,
        "no rollout: one wave of all"
    );

    // The script, run with a kubectl stand-in whose Domains have rolled: each wave is patched,
    // then waited on, before the next.
    let report = serde_json::json!({"campaign": "cpu", "domains": domains, "waves": waves});
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rollout.sh");
    std::fs::write(&script, waves::script(&report)).unwrap();
    let fake = dir.path().join("kubectl");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"$*\" >> \"$KUBECTL_LOG\"\ncase \"$*\" in\n  *metadata.generation*) echo 3 ;;\n  *observedGeneration*) echo 3 ;;\n  *Completed*) echo True ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let log = dir.path().join("kubectl.log");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("KUBECTL_LOG", &log)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    let first_batch = calls
        .iter()
        .position(|c| c == "patch domain payments")
        .unwrap();
    let canary_waits = calls.iter().rposition(|c| c == "get domain audit").unwrap();
    assert!(canary_waits < first_batch, "{calls:?}");
    assert!(calls.contains(&"patch domain reports".to_string()));

    let bad = format!(
        "{EXAMPLE}rollout:\n  waves:\n    - {{name: canary}}\n    - {{name: canary, batchSize: 0}}\n"
    );
    let err = CampaignFile::parse("bad.yaml", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("name namespaces, domains"), "{err}");
    assert!(err.contains("batchSize must be 1 or more"), "{err}");
    assert!(err.contains("a name of its own"), "{err}");
}
