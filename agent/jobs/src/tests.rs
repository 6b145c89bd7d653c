//! Jobs survive the wire unchanged, bad specs are refused naming the field, and the inputs rule.

use crate::{CopyJob, Job, RebaseJob, RebaseTarget};
use patchfarm_engine::opatch::CatalogChoice;
use patchfarm_engine::recipe::aux::AuxRequest;
use patchfarm_engine::recipe::create::{CreateRequest, WdtRequest};
use patchfarm_engine::recipe::patching::PatchRequest;
use patchfarm_engine::recipe::rebase::RebaseRequest;
use patchfarm_engine::recipe::update::UpdateRequest;
use patchfarm_engine::recipe::Target;
use patchfarm_proto::v1::job_spec::Verb;
use patchfarm_proto::v1::{self as wire, JobSpec};

fn create() -> CreateRequest {
    CreateRequest {
        tag: "registry.example:5000/wls/base:1".parse().unwrap(),
        from_image: "registry.example:5000/os/debian:12".parse().unwrap(),
        kind: "wls".into(),
        version: "12.2.1.4.0".into(),
        jdk_version: "17".into(),
        patches: PatchRequest {
            ids: vec!["37000002".into(), "37000003_12.2.1.4.0_arm64".into()],
            catalog: Some(("/srv/catalog.yaml".into(), CatalogChoice::LatestPsu)),
            mode: patchfarm_engine::opatch::OpatchMode::Opatch,
            strict_order: true,
            opatch_bug: Some("28186730_13.9.4.2.17".into()),
            skip_opatch_update: false,
        },
        chown: "oracle:oracle".into(),
        wdt: WdtRequest {
            models: vec!["/srv/model.yaml".into()],
            archives: Vec::new(),
            variables: vec!["/srv/vars.properties".into()],
            version: "4.2.1".into(),
            domain: Some(patchfarm_engine::recipe::domain::DomainBuild {
                operation: patchfarm_engine::recipe::domain::WdtOperation::Deploy,
                domain_home: "/u01/domains/orders".into(),
                domain_type: "JRF".into(),
                java_options: Some("-Xmx1g".into()),
                run_rcu: false,
                passphrase: None,
            }),
            home: Some("/opt/wdt".into()),
            model_home: None,
        },
        target: Target::OpenShift,
        additional_files: vec![("/srv/extra.txt".into(), "/u01/files/extra.txt".into())],
        platforms: vec![
            "linux/amd64".parse().unwrap(),
            "linux/arm64".parse().unwrap(),
        ],
        build_commands: Some(patchfarm_engine::recipe::steps::BuildCommands {
            file: "/srv/commands.txt".into(),
            files: vec!["/srv/files/extra.sh".into()],
            ..Default::default()
        }),
        installer_options: patchfarm_engine::recipe::oui::InstallerOptions {
            response_files: vec!["/srv/wls.rsp".into()],
            inventory_pointer: Some("/srv/oraInst.loc".into()),
            inventory_pointer_dir: Some("/u01/pointer".into()),
        },
        step_network: true,
        package_manager: patchfarm_engine::recipe::packages::PackageManager::AptGet,
    }
}

fn every_verb() -> Vec<Job> {
    let rebase = RebaseRequest {
        source: "registry.example:5000/domains/payments:7".parse().unwrap(),
        tag: "registry.example:5000/domains/payments:8".parse().unwrap(),
        old_base: Some("registry.example:5000/wls/base:0".parse().unwrap()),
        force: true,
        copy_domain: false,
        platform: "linux/amd64".parse().unwrap(),
        build_commands: Some(patchfarm_engine::recipe::steps::BuildCommands {
            file: "/srv/rebase-commands.txt".into(),
            ..Default::default()
        }),
        step_network: false,
    };
    vec![
        Job::Create(create()),
        Job::Update(UpdateRequest {
            tag: "registry.example:5000/wls/base:2".parse().unwrap(),
            from_image: "registry.example:5000/wls/base:1".parse().unwrap(),
            patches: PatchRequest {
                ids: vec!["37000004_12.2.1.4.0".into()],
                catalog: None,
                mode: patchfarm_engine::opatch::OpatchMode::Native,
                strict_order: false,
                opatch_bug: None,
                skip_opatch_update: true,
            },
            chown: None,
            wdt: WdtRequest {
                version: "none".into(),
                ..Default::default()
            },
            platform: "linux/arm64".parse().unwrap(),
            target: Target::Default,
            build_commands: None,
            step_network: false,
            kind: Some("fmw".into()),
        }),
        Job::Rebase(RebaseJob {
            request: rebase.clone(),
            target: RebaseTarget::Image("registry.example:5000/wls/base:2".parse().unwrap()),
        }),
        Job::Rebase(RebaseJob {
            target: RebaseTarget::Build(Box::new(CreateRequest {
                tag: rebase.tag.clone(),
                additional_files: Vec::new(),
                platforms: vec![rebase.platform.clone()],
                ..create()
            })),
            request: rebase,
        }),
        Job::CreateAuxImage(AuxRequest {
            tag: "oci:/srv/layout:aux".parse().unwrap(),
            from_image: "registry.example:5000/busybox:1".parse().unwrap(),
            wdt_models: vec!["/srv/model.yaml".into()],
            wdt_archives: vec!["/srv/archive.zip".into()],
            wdt_variables: Vec::new(),
            wdt_version: "latest".into(),
            wdt_home: "/auxiliary".into(),
            wdt_model_home: None,
            chown: "oracle:root".into(),
            platform: "linux/amd64".parse().unwrap(),
            target: Target::OpenShift,
            build_commands: Some(patchfarm_engine::recipe::steps::BuildCommands {
                file: "/srv/aux-commands.txt".into(),
                files: vec!["/srv/aux-extra.sh".into()],
                ..Default::default()
            }),
            step_network: true,
        }),
        Job::Copy(CopyJob {
            from: "registry.example:5000/wls/base:2".parse().unwrap(),
            to: "registry.us.example/mirror/wls/base:2".parse().unwrap(),
            platform: "linux/amd64".parse().unwrap(),
        }),
        Job::RefreshAuxImage(patchfarm_engine::recipe::aux_refresh::AuxRefreshRequest {
            source: "registry.example:5000/aux/app:1".parse().unwrap(),
            tag: "registry.example:5000/aux/app:1-wdt4.3".parse().unwrap(),
            wdt_version: "4.3.0".into(),
            platform: "linux/arm64".parse().unwrap(),
        }),
        Job::Noop,
    ]
}

#[test]
fn every_verb_survives_the_wire_unchanged() {
    for job in every_verb() {
        let spec = job.to_spec();
        let back = Job::from_spec(&spec).unwrap_or_else(|e| panic!("{}: {e}", job.verb()));
        assert_eq!(back.to_verb(), job.to_verb(), "{}", job.verb());
        assert_eq!(back.inputs(), spec.inputs, "{}", job.verb());
    }
}

fn refusal(verb: Verb) -> String {
    let spec = JobSpec {
        verb: Some(verb),
        ..Default::default()
    };
    Job::from_spec(&spec).unwrap_err().to_string()
}

fn create_verb(edit: impl FnOnce(&mut wire::CreateJob)) -> Verb {
    let Verb::Create(mut c) = Job::Create(create()).to_verb() else {
        unreachable!()
    };
    edit(&mut c);
    Verb::Create(c)
}

#[test]
fn bad_fields_are_refused_by_name() {
    let missing = Job::from_spec(&JobSpec::default()).unwrap_err();
    assert_eq!(missing.field, "verb");

    let untagged = refusal(create_verb(|c| {
        c.tag = "registry.example:5000/wls/base".into()
    }));
    assert!(untagged.starts_with("create.tag: "), "{untagged}");
    assert!(untagged.contains("names no tag"), "{untagged}");

    let bad_patch = refusal(create_verb(|c| {
        c.install.as_mut().unwrap().patches.as_mut().unwrap().ids[1] = "PSU-2026".into()
    }));
    assert!(
        bad_patch.starts_with("create.install.patches.ids[1]: "),
        "{bad_patch}"
    );

    let bad_type = refusal(create_verb(|c| {
        c.install.as_mut().unwrap().r#type = "weblogic".into()
    }));
    assert!(
        bad_type.starts_with("create.install.type: ") && bad_type.contains("SOA_OSB"),
        "{bad_type}"
    );

    let bad_mode = refusal(create_verb(|c| {
        c.install
            .as_mut()
            .unwrap()
            .patches
            .as_mut()
            .unwrap()
            .opatch_mode = "manual".into()
    }));
    assert!(
        bad_mode.starts_with("create.install.patches.opatch_mode: ")
            && bad_mode.contains("auto, native or opatch"),
        "{bad_mode}"
    );

    let no_catalog = refusal(create_verb(|c| {
        c.install
            .as_mut()
            .unwrap()
            .patches
            .as_mut()
            .unwrap()
            .catalog_path
            .clear()
    }));
    assert!(
        no_catalog.starts_with("create.install.patches.catalog_path: "),
        "{no_catalog}"
    );

    let no_platform = refusal(create_verb(|c| c.platforms.clear()));
    assert!(
        no_platform.starts_with("create.platforms: "),
        "{no_platform}"
    );

    let relative = refusal(create_verb(|c| {
        c.additional_files[0].destination = "files/x".into()
    }));
    assert!(
        relative.starts_with("create.additional_files[0].destination: "),
        "{relative}"
    );

    let targetless = refusal(Verb::Rebase(wire::RebaseJob {
        source_image: "registry.example:5000/domains/payments:7".into(),
        tag: "registry.example:5000/domains/payments:8".into(),
        platform: "linux/amd64".into(),
        ..Default::default()
    }));
    assert!(targetless.starts_with("rebase.target: "), "{targetless}");

    let oversized = refusal(create_verb(|c| {
        c.install.as_mut().unwrap().wdt.as_mut().unwrap().models =
            vec!["/srv/m.yaml".repeat(1000); 30]
    }));
    assert!(oversized.starts_with("spec: is "), "{oversized}");
    assert!(oversized.contains("at most 262144 bytes"), "{oversized}");

    let bad_platform = refusal(Verb::Copy(wire::CopyJob {
        from: "registry.example:5000/a:1".into(),
        to: "registry.example:5000/b:1".into(),
        platform: "linux".into(),
    }));
    assert!(
        bad_platform.starts_with("copy.platform: "),
        "{bad_platform}"
    );
}

#[test]
fn inputs_follow_wits_key_rule() {
    let jobs = every_verb();
    assert_eq!(
        jobs[0].inputs(),
        [
            "jdk_17",
            "wls_12.2.1.4.0",
            "37000002_12.2.1.4.0",
            "37000003_12.2.1.4.0_arm64",
            "wdt_4.2.1"
        ]
    );
    // update: bare bug numbers take the version found in the image, unknown here.
    let Job::Update(mut update) = jobs[1].clone() else {
        unreachable!()
    };
    update.patches.ids.push("37000005".into());
    assert_eq!(Job::Update(update).inputs(), ["37000004_12.2.1.4.0"]);
    assert!(jobs[2].inputs().is_empty(), "a pushed target reads nothing");
    assert_eq!(jobs[3].inputs()[..2], ["jdk_17", "wls_12.2.1.4.0"]);
    assert_eq!(jobs[4].inputs(), ["wdt_latest"]);
    // WDT without model files is not installed, so not read.
    let mut bare = create();
    bare.wdt.models.clear();
    bare.wdt.variables.clear();
    assert!(!Job::Create(bare)
        .inputs()
        .iter()
        .any(|k| k.starts_with("wdt_")));
    // An installer set reads each of its installers, in WIT's order.
    let mut soa = create();
    soa.kind = "soa_osb".into();
    assert_eq!(
        Job::Create(soa).inputs()[..4],
        [
            "jdk_17",
            "fmw_12.2.1.4.0",
            "soa_12.2.1.4.0",
            "osb_12.2.1.4.0"
        ]
    );
}

#[test]
fn artifact_files_round_trip_and_refuse_paths_and_bad_names() {
    use crate::ArtifactFile;
    use std::path::Path;
    let hex = "ab".repeat(32);
    let file = ArtifactFile::parse(Path::new(&format!("artifact:sha256:{hex}/model.yaml")))
        .unwrap()
        .unwrap();
    assert_eq!(file.name, "model.yaml");
    assert_eq!(
        file.to_string(),
        format!("artifact:sha256:{hex}/model.yaml")
    );
    assert_eq!(ArtifactFile::parse(Path::new("/srv/model.yaml")), Ok(None));
    for bad in [
        format!("artifact:sha256:{hex}/.."),
        format!("artifact:sha256:{hex}/a/b"),
        format!("artifact:sha256:{hex}/a\nb"),
        format!("artifact:sha256:{hex}/"),
        format!("artifact:sha256:{hex}"),
        "artifact:sha256:beef/x".to_string(),
    ] {
        assert!(ArtifactFile::parse(Path::new(&bad)).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn an_engine_that_gives_steps_no_network_refuses_a_job_that_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = patchfarm_engine::recipe::Engine {
        cache: patchfarm_engine::cache::Cache::new(dir.path().join("cache")),
        registries: Default::default(),
        source_date_epoch: 0,
        compression: Default::default(),
        steps_refused: None,
        step_network_refused: Some("turned off with --no-step-network".into()),
        signer: None,
        builder: "test".into(),
        base_keys: Vec::new(),
    };
    let mut request = create();
    request.step_network = true;
    let error = crate::run(&engine, &Job::Create(request), &|_| {})
        .await
        .expect_err("refused");
    let shown = format!("{}: {}", error, error.source);
    assert!(
        shown.contains("--buildNetwork") && shown.contains("--no-step-network"),
        "{shown}"
    );
}

#[test]
fn a_spec_says_how_its_layers_are_compressed_and_an_unknown_codec_is_refused() {
    use patchfarm_engine::layer::Compression;
    for compression in [Compression::Gzip, Compression::Zstd] {
        let spec = JobSpec {
            compression: crate::compression_field(compression),
            ..Job::Noop.to_spec()
        };
        assert_eq!(crate::compression(&spec).unwrap(), compression);
    }
    let future = JobSpec {
        compression: 7,
        ..Job::Noop.to_spec()
    };
    let refused = crate::compression(&future).unwrap_err().to_string();
    assert!(
        refused.contains("compression") && refused.contains('7'),
        "{refused}"
    );
}
