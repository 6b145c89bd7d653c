//! Campaign files: parsing, validation (every problem at once) and the plan per source type.

use super::*;

pub(crate) const EXAMPLE: &str = r#"
name: cpu-2026-10
patchCatalog: /srv/patchfarm/catalog-2026-10.yaml
registries: [registry.eu.example.com:5000, registry.us.example.com/mirror]
limits: {maxParallelJobs: 8, retries: 3}
bases:
  - name: wls14
    type: wls
    version: 12.2.1.4.0
    jdkVersion: "17"
    fromImage: registry.eu.example.com:5000/os/oraclelinux:9
    recommendedPatches: true
    tag: "wls/base:{version}-{campaign}"
domains:
  - {name: payments, namespace: prod, domainHomeSourceType: DomainInImage,
     image: registry.eu.example.com:5000/domains/payments:7, base: wls14}
  - {name: billing, namespace: prod, domainResource: billing-domain,
     domainHomeSourceType: DomainInImage, image: registry.eu.example.com:5000/domains/billing:3, base: wls14}
  - {name: orders, namespace: shop, domainHomeSourceType: ModelInImage,
     image: registry.eu.example.com:5000/mii/orders:2, base: wls14}
  - {name: catalog, namespace: shop, domainHomeSourceType: ModelInImage,
     image: registry.eu.example.com:5000/wls/base:12.2.1.4-2026-07, base: wls14,
     auxiliaryImages: [registry.eu.example.com:5000/aux/catalog:5]}
  - {name: reports, namespace: ops, domainHomeSourceType: PersistentVolume,
     image: registry.eu.example.com:5000/wls/base:12.2.1.4-2026-07, base: wls14}
  - {name: audit, namespace: ops, domainHomeSourceType: DomainInPV,
     image: registry.eu.example.com:5000/wls/base:12.2.1.4-2026-07, base: wls14}
"#;

#[test]
fn the_example_plans_bases_first_then_what_each_source_type_needs() {
    let file = CampaignFile::parse("example.yaml", EXAMPLE).unwrap();
    let plan = plan(&file).unwrap();
    let keys: Vec<&str> = plan.jobs.iter().map(|j| j.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "base/wls14",
            "copy/base/wls14/1",
            "domain/prod/payments",
            "copy/domain/prod/payments/1",
            "domain/prod/billing",
            "copy/domain/prod/billing/1",
            "domain/shop/orders",
            "copy/domain/shop/orders/1",
        ]
    );
    let base = &plan.jobs[0];
    assert_eq!(base.kind, "create");
    let patchfarm_jobs::Job::Create(create) = &base.job else {
        panic!("a base is a create job: {:?}", base.job)
    };
    assert_eq!(
        create.patches.catalog,
        Some((
            "/srv/patchfarm/catalog-2026-10.yaml".into(),
            patchfarm_engine::opatch::CatalogChoice::Recommended
        ))
    );
    assert_eq!(base.inputs, ["jdk_17", "wls_12.2.1.4.0"]);
    let patchfarm_jobs::Job::Copy(copy) = &plan.jobs[1].job else {
        panic!("a copy job: {:?}", plan.jobs[1].job)
    };
    assert_eq!(
        [copy.from.to_string(), copy.to.to_string()],
        [
            "registry.eu.example.com:5000/wls/base:12.2.1.4.0-cpu-2026-10",
            "registry.us.example.com/mirror/wls/base:12.2.1.4.0-cpu-2026-10"
        ]
    );
    let payments = &plan.jobs[2];
    assert_eq!(payments.kind, "rebase");
    assert_eq!(payments.after, ["base/wls14"]);
    assert_eq!(
        payments.pushes,
        "registry.eu.example.com:5000/domains/payments:7-cpu-2026-10"
    );
    let from: Vec<(&str, &str)> = plan
        .domains
        .iter()
        .map(|d| (d.name.as_str(), d.image_from.as_str()))
        .collect();
    assert_eq!(
        from,
        [
            ("payments", "domain/prod/payments"),
            ("billing", "domain/prod/billing"),
            ("orders", "domain/shop/orders"),
            ("catalog", "base/wls14"),
            ("reports", "base/wls14"),
            ("audit", "base/wls14"),
        ]
    );
    assert_eq!(plan.domains[1].domain_resource, "billing-domain");
    assert_eq!(
        plan.domains[5].domain_home_source_type,
        SourceType::PersistentVolume
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let bad = EXAMPLE
        .replace("base: wls14}\n  - {name: billing", "base: wls15}\n  - {name: billing")
        .replace("name: orders", "name: payments")
        .replace("namespace: shop, domainHomeSourceType: ModelInImage,\n     image: registry.eu.example.com:5000/mii", "namespace: prod, domainHomeSourceType: ModelInImage,\n     image: registry.eu.example.com:5000/mii")
        .replace("domainHomeSourceType: DomainInPV", "domainHomeSourceType: Imagine");
    let err = CampaignFile::parse("bad.yaml", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("bad.yaml: 3 problem(s)"), "{err}");
    assert!(
        err.contains("domains[0] (payments): unknown base \"wls15\""),
        "{err}"
    );
    assert!(
        err.contains(
            "domains[2] (payments): duplicate domain name \"payments\" in namespace \"prod\""
        ),
        "{err}"
    );
    assert!(
        err.contains("domains[5] (audit): domainHomeSourceType \"Imagine\""),
        "{err}"
    );
    let err = CampaignFile::parse("x.yaml", "name: [")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("x.yaml: not a campaign file"), "{err}");
}

#[test]
fn layouts_parent_paths_bad_patch_ids_and_zero_retries_are_refused() {
    let bad = EXAMPLE
        .replace(
            "registries: [registry.eu.example.com:5000, registry.us.example.com/mirror]",
            "registries: [registry.eu.example.com:5000, \"oci:/etc/layout\", registry.us.example.com/../x]",
        )
        .replace("retries: 3", "retries: 0")
        .replace("tag: \"wls/base:{version}-{campaign}\"", "tag: \"../wls/base:x\"\n    patches: [\"37000001_../x\", \"37000002\"]");
    let err = CampaignFile::parse("bad.yaml", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("bad.yaml: 5 problem(s)"), "{err}");
    assert!(
        err.contains("registries[1] \"oci:/etc/layout\": a campaign pushes to registries"),
        "{err}"
    );
    assert!(err.contains("registries[2]"), "{err}");
    assert!(err.contains("limits.retries: must be 1 or more"), "{err}");
    assert!(
        err.contains("patches[0]: invalid cache key '37000001_../x'"),
        "{err}"
    );
    assert!(err.contains("tag \"../wls/base:x\""), "{err}");
}

#[test]
fn domains_sharing_an_image_share_its_rebase() {
    let yaml = |second_base: &str| {
        format!(
            r#"
name: q4
registries: [registry.example:5000]
bases:
  - {{name: a, version: 12.2.1.4.0, jdkVersion: "17", fromImage: "registry.example:5000/os:1", tag: "wls/a:q4"}}
  - {{name: b, version: 12.2.1.4.0, jdkVersion: "17", fromImage: "registry.example:5000/os:1", tag: "wls/b:q4"}}
domains:
  - {{name: one, namespace: x, domainHomeSourceType: ModelInImage, image: "registry.example:5000/mii/app:1", base: a}}
  - {{name: two, namespace: y, domainHomeSourceType: ModelInImage, image: "registry.example:5000/mii/app:1", base: {second_base}}}
"#
        )
    };
    let file = CampaignFile::parse("q4.yaml", &yaml("a")).unwrap();
    let shared = plan(&file).unwrap();
    let rebases: Vec<&str> = shared
        .jobs
        .iter()
        .filter(|j| j.kind == "rebase")
        .map(|j| j.key.as_str())
        .collect();
    assert_eq!(rebases, ["domain/x/one"], "one push per tag");
    assert_eq!(shared.domains[1].image_from, "domain/x/one");

    let file = CampaignFile::parse("q4.yaml", &yaml("b")).unwrap();
    let refused = plan(&file).unwrap_err().to_string();
    assert!(
        refused.contains("domain/y/two") && refused.contains("mii/app:1-q4"),
        "{refused}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
        ))]

        /// Any text, and the example with bytes changed: parsed or refused, never a panic; what
        /// parses also plans or is refused.
        #[test]
        fn campaign_files_parse_or_refuse_never_panic(
            text in ".{0,300}",
            cuts in prop::collection::vec((any::<usize>(), ".{0,6}"), 0..6),
        ) {
            let _ = CampaignFile::parse("fuzz.yaml", &text);
            let mut mutated = EXAMPLE.to_string();
            for (at, insert) in cuts {
                let mut at = at % mutated.len();
                while !mutated.is_char_boundary(at) {
                    at -= 1;
                }
                mutated.insert_str(at, &insert);
            }
            if let Ok(file) = CampaignFile::parse("fuzz.yaml", &mutated) {
                let _ = plan(&file);
            }
        }
    }
}

/// What `kubectl get domains -A -o yaml` prints: a v1 List of v9 and v8 Domains.
pub(crate) const KUBECTL_DOMAINS: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {name: payments, namespace: prod, labels: {tier: web}}
  spec: {domainHomeSourceType: Image, image: "registry.eu.example.com:5000/domains/payments:7",
         imagePullSecrets: [{name: eu-pull}], restartVersion: "3"}
- apiVersion: weblogic.oracle/v8
  kind: Domain
  metadata: {name: orders, namespace: shop, labels: {tier: web}}
  spec:
    image: "registry.eu.example.com:5000/wls/base:12.2.1.4-2026-07"
    configuration:
      model:
        auxiliaryImages:
        - {image: "registry.eu.example.com:5000/aux/orders:3"}
        - {image: "registry.eu.example.com:5000/aux/orders-apps:9"}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {name: elsewhere, namespace: other, labels: {tier: web}}
  spec: {image: "registry.eu.example.com:5000/domains/elsewhere:1"}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {name: nightly, namespace: prod, labels: {tier: batch}}
  spec: {image: "registry.eu.example.com:5000/domains/nightly:1"}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {name: imageless, namespace: prod, labels: {tier: web}}
  spec: {domainHomeSourceType: PersistentVolume}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {name: outsider, namespace: shop, labels: {tier: web}}
  spec: {image: "quay.example.org/partner/outsider:1"}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {name: odd, namespace: shop, labels: {tier: web}}
  spec: {domainHomeSourceType: Sideways, image: "registry.eu.example.com:5000/domains/odd:1"}
"#;

#[test]
fn domains_come_from_the_clusters_own_domain_resources() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("domains.yaml"), KUBECTL_DOMAINS).unwrap();
    let head = EXAMPLE.split("domains:\n").next().unwrap();
    let text = format!(
        "{head}domainsFrom:\n  - {{file: domains.yaml, base: wls14, namespaces: [prod, shop], selector: \"tier=web\"}}\n"
    );
    let path = dir.path().join("q4.yaml");
    let (file, read_more) = CampaignFile::load(&path, &text).unwrap();
    assert!(read_more);
    let names: Vec<(&str, &str)> = file
        .domains
        .iter()
        .map(|d| (d.namespace.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("prod", "payments"), ("shop", "orders")],
        "namespaces and labels select"
    );
    assert_eq!(
        file.domains[0].source_type(),
        Some(SourceType::DomainInImage)
    );
    assert_eq!(
        file.domains[1].source_type(),
        Some(SourceType::ModelInImage),
        "the operator's default: FromModel when spec.configuration.model is set"
    );
    assert_eq!(file.domains[1].auxiliary_images.len(), 2);
    let skipped: Vec<(&str, &str)> = file
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped[0].0 == "imageless" && skipped[0].1.contains("spec.image"));
    assert!(skipped[1].0 == "odd" && skipped[1].1.contains("Sideways"));
    assert!(
        skipped[2].0 == "outsider" && skipped[2].1.contains("none of the campaign's registries"),
        "{skipped:?}"
    );
    assert_eq!(file.domains[0].image_pull_secrets, ["eu-pull"]);
    assert_eq!(file.domains[0].restart_version.as_deref(), Some("3"));
    assert_eq!(file.domains[0].labels["tier"], "web");
    let planned = plan(&file).unwrap();
    assert_eq!((planned.domains.len(), planned.skipped.len()), (2, 3));
    assert_eq!(planned.domains[0].image_pull_secrets, ["eu-pull"]);
    // Written out, the campaign holds its domains and needs no other file.
    let stored = serde_norway::to_string(&file).unwrap();
    let again = CampaignFile::parse("stored", &stored).unwrap();
    assert_eq!(again.domains, file.domains);

    let missing = CampaignFile::load(
        &dir.path().join("other.yaml"),
        &text.replace("domains.yaml", "gone.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("domainsFrom[0]") && missing.contains("gone.yaml"),
        "{missing}"
    );
    std::fs::write(
        dir.path().join("pods.yaml"),
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n",
    )
    .unwrap();
    let wrong = CampaignFile::load(&path, &text.replace("domains.yaml", "pods.yaml"))
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("not a weblogic.oracle Domain"), "{wrong}");
}

/// A domain pulling from a regional mirror gets the mirror's copy as its new image, named only
/// once the copy is there.
#[test]
fn domains_on_a_mirror_get_the_mirrors_copy() {
    let text = EXAMPLE.to_string()
        + "  - {name: ledger, namespace: fin, domainHomeSourceType: Image,\n     image: registry.us.example.com/mirror/domains/ledger:4, base: wls14}\n"
        + "  - {name: archive, namespace: fin, domainHomeSourceType: PersistentVolume,\n     image: registry.us.example.com/mirror/wls/base:12.2.1.4-2026-07, base: wls14}\n";
    let file = CampaignFile::parse("mirror.yaml", &text).unwrap();
    let planned = plan(&file).unwrap();
    let domain = |name: &str| planned.domains.iter().find(|d| d.name == name).unwrap();
    assert_eq!(domain("ledger").image_from, "domain/fin/ledger");
    assert_eq!(domain("ledger").pulled_from, "copy/domain/fin/ledger/1");
    assert_eq!(domain("archive").pulled_from, "copy/base/wls14/1");
    assert_eq!(
        domain("payments").pulled_from,
        domain("payments").image_from
    );

    let finished = |copy_fails: bool| -> Vec<patchfarm_proto::v1::Job> {
        planned
            .jobs
            .iter()
            .map(|p| {
                let failed = copy_fails && p.key == "copy/domain/fin/ledger/1";
                patchfarm_proto::v1::Job {
                    request_id: report::request_id(&planned.campaign, &p.key),
                    state: if failed {
                        patchfarm_proto::v1::JobState::Failed
                    } else {
                        patchfarm_proto::v1::JobState::Succeeded
                    } as i32,
                    digests: vec![format!("{}@sha256:{}", p.pushes, "ab".repeat(32))],
                    ..Default::default()
                }
            })
            .collect()
    };
    let built = report::build(&planned, &finished(false)).unwrap();
    let new_image = |report: &serde_json::Value, name: &str| {
        report["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()["newImage"]
            .clone()
    };
    let ledger = new_image(&built, "ledger");
    assert!(
        ledger
            .as_str()
            .unwrap()
            .starts_with("registry.us.example.com/mirror/domains/ledger@sha256:"),
        "{ledger}"
    );
    assert!(new_image(&built, "payments")
        .as_str()
        .unwrap()
        .starts_with("registry.eu.example.com:5000/"));
    let broken = report::build(&planned, &finished(true)).unwrap();
    assert!(
        new_image(&broken, "ledger").is_null(),
        "not named before the copy is there"
    );
}
