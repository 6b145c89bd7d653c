//! Farm jobs are typed values: a bad field is refused at submission (INVALID_ARGUMENT naming it,
//! nothing queued), and what a job did comes back typed — `jobs show --json` lists the patches an
//! `update` applied and the ones the image already held.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::wls::{self, PSU, REC};
use patchfarm_proto::v1::*;
use std::time::Duration;
use tonic::Code;

fn create_spec(tag: &str, patch: &str) -> JobSpec {
    JobSpec {
        verb: Some(job_spec::Verb::Create(CreateJob {
            tag: tag.into(),
            from_image: "registry.example:5000/os/debian:12".into(),
            install: Some(InstallSpec {
                r#type: "wls".into(),
                version: "12.2.1.4.0".into(),
                jdk_version: "17".into(),
                patches: Some(PatchSelection {
                    ids: vec![patch.into()],
                    ..Default::default()
                }),
                chown: "oracle:oracle".into(),
                wdt: Some(WdtFiles {
                    version: "latest".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            platforms: vec!["linux/amd64".into()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn aux_spec(models: &[&str]) -> JobSpec {
    JobSpec {
        verb: Some(job_spec::Verb::CreateAuxImage(CreateAuxImageJob {
            tag: "registry.example:5000/wdt/app:1".into(),
            from_image: "registry.example:5000/os/busybox:1".into(),
            wdt: Some(WdtFiles {
                models: models.iter().map(|m| m.to_string()).collect(),
                version: "4.2.1".into(),
                ..Default::default()
            }),
            wdt_home: "/auxiliary".into(),
            chown: "oracle:root".into(),
            platform: "linux/amd64".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn with_install(change: impl FnOnce(&mut InstallSpec)) -> JobSpec {
    let mut spec = create_spec("registry.example:5000/wls/base:4", "37000001");
    if let Some(job_spec::Verb::Create(create)) = spec.verb.as_mut() {
        change(create.install.as_mut().unwrap());
    }
    spec
}

async fn job_count(farm: &Farm) -> usize {
    farm.cluster
        .client()
        .call(|mut c| async move { c.list_jobs(ListJobsRequest::default()).await })
        .await
        .unwrap()
        .jobs
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_are_refused_at_submit_and_outcomes_are_recorded() {
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let client = farm.cluster.client();

    // The control: a well-formed spec is accepted (and then cancelled: no agent runs yet).
    let good = SubmitJobRequest {
        request_id: "good".into(),
        spec: Some(create_spec("registry.example:5000/wls/base:1", "37000001")),
    };
    let accepted = client
        .call(|mut c| {
            let request = good.clone();
            async move { c.submit_job(request).await }
        })
        .await
        .unwrap();
    assert_eq!(
        accepted.spec.as_ref().unwrap().inputs,
        ["jdk_17", "wls_12.2.1.4.0", "37000001_12.2.1.4.0"],
        "the coordinator derives the inputs from the verb"
    );
    farm.ok(&["jobs", "cancel", &accepted.id]);

    let rebase_without_target = JobSpec {
        verb: Some(job_spec::Verb::Rebase(RebaseJob {
            source_image: "registry.example:5000/domains/payments:7".into(),
            tag: "registry.example:5000/domains/payments:8".into(),
            platform: "linux/amd64".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let mut oversized = create_spec("registry.example:5000/wls/base:3", "37000001");
    if let Some(job_spec::Verb::Create(create)) = oversized.verb.as_mut() {
        let install = create.install.as_mut().unwrap();
        install.wdt.as_mut().unwrap().models = vec!["/srv/models/app.yaml".repeat(100); 200];
    }
    let bad = [
        (
            create_spec("registry.example:5000/wls/base:2", "PSU-2026-10"),
            "create.install.patches.ids[0]",
        ),
        (
            create_spec("registry.example:5000/wls/base", "37000001"),
            "create.tag",
        ),
        (rebase_without_target, "rebase.target"),
        (oversized, "spec"),
        (
            JobSpec {
                verb: Some(job_spec::Verb::Copy(CopyJob {
                    from: "registry.example:5000/wls/base:1".into(),
                    to: "oci:/root/.ssh:x".into(),
                    platform: "linux/amd64".into(),
                })),
                ..Default::default()
            },
            "copy.to",
        ),
        (JobSpec::default(), "verb"),
        // A name without a registry is one machine's engine image: no place for a farm job.
        (
            create_spec("wls:12.2.1.4.0", "37000001"),
            "create.tag: docker-daemon:wls:12.2.1.4.0 names no registry",
        ),
        // A farm job's files come from the artifact store, never from the agent's disk.
        (
            aux_spec(&["/etc/patchfarm/agent.key"]),
            "create_aux_image.wdt.models[0]: /etc/patchfarm/agent.key is a path on the agents",
        ),
        (
            aux_spec(&[&format!("artifact:sha256:{}/..", "a".repeat(64))]),
            "create_aux_image.wdt.models[0]",
        ),
        (
            aux_spec(&["artifact:sha256:beef/model.yaml"]),
            "create_aux_image.wdt.models[0]",
        ),
        (
            with_install(|i| {
                i.patches.as_mut().unwrap().catalog_choice = CatalogChoice::Recommended as i32;
                i.patches.as_mut().unwrap().catalog_path = "/root/.docker/config.json".into();
            }),
            "create.install.patches.catalog_path: /root/.docker/config.json is a path",
        ),
        (
            {
                let mut spec = create_spec("registry.example:5000/wls/base:5", "37000001");
                if let Some(job_spec::Verb::Create(create)) = spec.verb.as_mut() {
                    create.additional_files = vec![AdditionalFile {
                        source: "/var/lib/patchfarm/agent/tls/agent.key".into(),
                        destination: "/u01/keys/agent.key".into(),
                    }];
                }
                spec
            },
            "create.additional_files[0].source",
        ),
        // Installer options' files are the job's too, and the pointer's place is in the image.
        (
            with_install(|i| {
                i.installer_options = Some(InstallerOptions {
                    inventory_pointer: "/etc/shadow".into(),
                    ..Default::default()
                });
            }),
            "create.install.installer_options.inventory_pointer: /etc/shadow is a path",
        ),
        (
            with_install(|i| {
                i.installer_options = Some(InstallerOptions {
                    inventory_pointer_dir: "u01/pointer".into(),
                    ..Default::default()
                });
            }),
            "create.install.installer_options.inventory_pointer_dir",
        ),
    ];
    for (i, (spec, field)) in bad.into_iter().enumerate() {
        let request = SubmitJobRequest {
            request_id: format!("bad-{i}"),
            spec: Some(spec.clone()),
        };
        let refused = client
            .call(|mut c| {
                let request = request.clone();
                async move { c.submit_job(request).await }
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some(Code::InvalidArgument), "{refused}");
        assert!(
            refused.to_string().starts_with(field),
            "{refused} should start with {field}"
        );
        // In a batch too, with the job's place named; nothing of the batch is queued.
        let batch = SubmitJobsRequest {
            jobs: vec![good.clone(), request.clone()],
        };
        let refused = client
            .call(|mut c| {
                let batch = batch.clone();
                async move { c.submit_jobs(batch).await }
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some(Code::InvalidArgument), "{refused}");
        assert!(refused.to_string().contains("jobs[1]"), "{refused}");
        assert!(refused.to_string().contains(field), "{refused}");
    }
    // The CLI's path to the same check: a --tag without a tag, named by the coordinator.
    let host = farm.registry.host();
    let base = farm.base.clone();
    let untagged = format!("{host}/wls/untagged");
    let out = farm.cli(&["create", "--tag", &untagged, "--fromImage", &base]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("create.tag") && stderr.contains("InvalidArgument"),
        "{stderr}"
    );
    assert_eq!(job_count(&farm).await, 1, "only the control was queued");

    // Outcomes: a base with the PSU, then an update asking for the PSU and REC.
    farm.upload_weblogic();
    farm.start_agent("agent-1", &[]);
    let (psu, rec) = (wls::key(PSU), wls::key(REC));
    let (old, new) = (
        format!("{host}/wls/base:psu"),
        format!("{host}/wls/base:rec"),
    );
    let created = farm.submit(&[
        "create",
        "--tag",
        &old,
        "--fromImage",
        &base,
        "--jdkVersion",
        "17",
        "--patches",
        &psu,
    ]);
    let jobs = farm
        .wait_done(std::slice::from_ref(&created), Duration::from_secs(120))
        .await;
    assert_eq!(jobs[0].state(), JobState::Succeeded, "{}", jobs[0].error);
    let updated = farm.submit(&[
        "update",
        "--tag",
        &new,
        "--fromImage",
        &old,
        "--patches",
        &format!("{psu},{rec}"),
    ]);
    let jobs = farm
        .wait_done(std::slice::from_ref(&updated), Duration::from_secs(120))
        .await;
    assert_eq!(jobs[0].state(), JobState::Succeeded, "{}", jobs[0].error);

    let show = |id: &str| -> serde_json::Value {
        let out: serde_json::Value =
            serde_json::from_str(&farm.ok(&["--json", "jobs", "show", id])).unwrap();
        out[0].clone()
    };
    let create_shown = show(&created);
    assert_eq!(create_shown["kind"], "create");
    assert_eq!(
        create_shown["outcome"]["patchesApplied"],
        serde_json::json!([PSU])
    );
    let update_shown = show(&updated);
    assert_eq!(update_shown["kind"], "update");
    assert_eq!(
        update_shown["spec"]["update"]["patches"]["ids"],
        serde_json::json!([psu, rec])
    );
    assert_eq!(
        update_shown["outcome"]["patchesApplied"],
        serde_json::json!([REC])
    );
    assert_eq!(
        update_shown["outcome"]["patchesPresent"],
        serde_json::json!([PSU])
    );
    let pushed = &update_shown["outcome"]["pushed"][0];
    assert_eq!(pushed["reference"], new.as_str());
    assert_eq!(
        update_shown["digests"][0],
        format!("{new}@{}", pushed["digest"].as_str().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_short_stores_nothing_and_input_files_need_a_plain_name() {
    let farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let client = farm.cluster.client();
    let upload = |header: ArtifactHeader, data: Vec<u8>| {
        let client = client.clone();
        async move {
            client
                .call(|mut c| {
                    let chunk = ArtifactChunk {
                        header: Some(header.clone()),
                        data: data.clone(),
                    };
                    async move { c.put_artifact(futures_util::stream::iter([chunk])).await }
                })
                .await
        }
    };
    let short = ArtifactHeader {
        request_id: "short".into(),
        key: "jdk_17".into(),
        kind: "installer".into(),
        file_name: "jdk.tar.gz".into(),
        size: 1000,
        ..Default::default()
    };
    let refused = upload(short, vec![7; 10]).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::InvalidArgument), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("ended after 10 of its 1000 bytes"),
        "{refused}"
    );
    let catalog = client
        .call(|mut c| async move { c.catalog_list(CatalogListRequest {}).await })
        .await
        .unwrap();
    assert!(catalog.entries.is_empty(), "{catalog:?}");

    let input = |name: &str| ArtifactHeader {
        request_id: format!("input-{name}"),
        kind: "input".into(),
        file_name: name.into(),
        size: 3,
        ..Default::default()
    };
    let refused = upload(input("../agent.key"), b"abc".to_vec())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(Code::InvalidArgument), "{refused}");
    let stored = upload(input("model.yaml"), b"abc".to_vec()).await.unwrap();
    assert_eq!(stored.key, "", "an input file is no catalog entry");
    assert!(stored.digest.starts_with("sha256:ba7816bf"), "{stored:?}");
}
