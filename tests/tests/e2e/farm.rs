//! The farm end to end: 3 coordinators, 3 `patchfarm-agent` processes, a real registry, installers
//! and patches in the artifact store; 30 mixed jobs through the `patchfarm --farm` verbs while an
//! agent and then the leader are killed with SIGKILL. Images are checked with skopeo and umoci.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::tools::write_wdt_zip;
use patchfarm_e2e::weblogic::JAR;
use patchfarm_e2e::wls::{
    self, derive, jar_entry, raw_digest, unpack, DOMAIN, DOMAIN_CONFIG, INI, PSU, REC,
};
use patchfarm_proto::v1::agent_api_client::AgentApiClient;
use patchfarm_proto::v1::{CompleteRequest, Job, JobState};
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn pushed_digest(job: &Job) -> (String, String) {
    assert_eq!(job.digests.len(), 1, "{job:?}");
    let (reference, digest) = job.digests[0].split_once('@').unwrap();
    (reference.to_string(), digest.to_string())
}

/// Completes `job` as agent `name` with the fencing token it held then.
async fn complete_as(farm: &Farm, name: &str, job: &Job) -> Result<Job, tonic::Status> {
    let certs = farm.cluster.certs_dir();
    let pem = |f: &str| std::fs::read(certs.join(f)).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem("ca.crt")))
        .identity(Identity::from_pem(
            pem(&format!("{name}.crt")),
            pem(&format!("{name}.key")),
        ))
        .domain_name("patchfarm-coordinator");
    let mut last = None;
    for address in farm.cluster.addresses() {
        let Ok(endpoint) = Endpoint::from_shared(format!("https://{address}")) else {
            continue;
        };
        let Ok(channel) = endpoint.tls_config(tls.clone()).unwrap().connect().await else {
            continue;
        };
        let answer = AgentApiClient::new(channel)
            .complete(CompleteRequest {
                request_id: format!("late-{}", job.id),
                job_id: job.id.clone(),
                fencing_token: job.lease.as_ref().unwrap().fencing_token,
                success: true,
                digests: vec!["stale@sha256:00".into()],
                ..Default::default()
            })
            .await;
        match answer {
            Ok(done) => return Ok(done.into_inner()),
            Err(status) if status.code() == tonic::Code::Unavailable => last = Some(status),
            Err(status) => return Err(status),
        }
    }
    Err(last.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_mixed_jobs_survive_an_agent_and_the_leader_dying() {
    let mut farm = Farm::start(3, &[]);
    farm.cluster.wait_leader(&[1, 2, 3]).await;
    farm.upload_weblogic();
    let wdt = farm.dir.path().join("wdt.zip");
    write_wdt_zip(&wdt, "4.2.1");
    farm.add_installer("wdt", "4.2.1", &wdt);
    let model = farm.dir.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let model = model.display().to_string();
    for name in ["agent-1", "agent-2", "agent-3"] {
        farm.start_agent(name, &[]);
    }
    let host = farm.registry.host();
    let tag = |name: &str| format!("{host}/wls/{name}");
    let base = farm.base.clone();
    let create = |name: &str, patches: Option<&str>| {
        let t = tag(name);
        let mut args = vec![
            "create",
            "--tag",
            &t,
            "--fromImage",
            &base,
            "--jdkVersion",
            "17",
        ];
        if let Some(p) = patches {
            args.extend(["--patches", p]);
        }
        farm.submit(&args)
    };

    // Two bases first, followed with --wait: the old one and a PSU-patched new one.
    let psu = wls::key(PSU);
    let (old, new) = (tag("base:1"), tag("base:2"));
    let out = farm.ok(&[
        "--wait",
        "create",
        "--tag",
        &old,
        "--fromImage",
        &base,
        "--jdkVersion",
        "17",
    ]);
    assert!(out.trim().starts_with(&format!("{old}@sha256:")), "{out}");
    let out = farm.ok(&[
        "create",
        "--tag",
        &new,
        "--fromImage",
        &base,
        "--jdkVersion",
        "17",
        "--patches",
        &psu,
        "--wait",
    ]);
    assert!(out.contains(&format!("{new}@sha256:")), "{out}");
    // The job carries --compression: the agent writes zstd layers on the gzip base.
    let zstd = tag("z:1");
    let args = [
        "create",
        "--tag",
        &zstd,
        "--fromImage",
        &base,
        "--jdkVersion",
        "17",
    ];
    farm.ok(&[&["--wait", "--compression", "zstd"], &args[..]].concat());
    let (base_types, zstd_types) = (wls::layer_media_types(&base), wls::layer_media_types(&zstd));
    assert!(
        zstd_types[base_types.len()..]
            .iter()
            .all(|t| t.ends_with("tar+zstd"))
            && zstd_types.len() > base_types.len(),
        "{zstd_types:?}"
    );
    let domain = format!("{host}/domains/payments:1");
    derive(&old, &domain, wls::add_domain, DOMAIN_CONFIG);

    // 28 more: creates (half patched), updates, auxiliary images, rebases.
    let mut ids: BTreeMap<String, (&str, String)> = BTreeMap::new();
    let rec = wls::key(REC);
    for i in 0..10 {
        let name = format!("c:{i}");
        let id = create(&name, (i % 2 == 1).then_some(psu.as_str()));
        ids.insert(id, ("create", tag(&name)));
    }
    for i in 0..7 {
        let t = tag(&format!("u:{i}"));
        let id = farm.submit(&[
            "update",
            "--tag",
            &t,
            "--fromImage",
            &old,
            "--patches",
            &rec,
        ]);
        ids.insert(id, ("update", t));
    }
    for i in 0..6 {
        let t = tag(&format!("aux:{i}"));
        let id = farm.submit(&[
            "createAuxImage",
            "--tag",
            &t,
            "--fromImage",
            &base,
            "--wdtModel",
            &model,
            "--wdtVersion",
            "4.2.1",
        ]);
        ids.insert(id, ("createAuxImage", t));
    }
    for i in 0..5 {
        let t = format!("{host}/domains/payments:r{i}");
        let id = farm.submit(&[
            "rebase",
            "--sourceImage",
            &domain,
            "--targetImage",
            &new,
            "--tag",
            &t,
        ]);
        ids.insert(id, ("rebase", t));
    }
    assert_eq!(ids.len() + 2, 30);

    // SIGKILL the agent of a running job: the job must complete elsewhere.
    // (A job may finish between being seen leased and the kill: then try another one.)
    let (victim, victim_agent) = loop {
        let victim = farm.leased_job(Duration::from_secs(30)).await;
        let agent = victim.lease.as_ref().unwrap().agent.clone();
        farm.kill_agent(&agent);
        let now = farm.job(&victim.id).await;
        if now.state() == JobState::Leased && now.lease == victim.lease {
            break (victim, agent);
        }
        farm.restart_agent(&agent);
    };
    // Then the leader, while jobs are still running.
    let leader = farm.cluster.wait_leader(&[1, 2, 3]).await;
    farm.cluster.kill(leader);
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != leader).collect();
    farm.cluster.wait_leader(&rest).await;

    let all: Vec<String> = ids.keys().cloned().collect();
    let jobs = farm.wait_done(&all, Duration::from_secs(240)).await;
    for job in &jobs {
        assert_eq!(
            job.state(),
            JobState::Succeeded,
            "{} ({}) ended {:?}: {}\nlog:\n{}",
            job.id,
            ids[&job.id].0,
            job.state(),
            job.error,
            job.log
        );
    }
    let victim_done = jobs.iter().find(|j| j.id == victim.id).unwrap();
    assert!(victim_done.attempts >= 2, "{victim_done:?}");
    assert!(
        victim_done.log.contains("lapsed"),
        "the first attempt's lease lapsed: {}",
        victim_done.log
    );

    // The killed agent comes back; it cannot complete the lease it lost (fencing).
    farm.restart_agent(&victim_agent);
    let refused = complete_as(&farm, &victim_agent, &victim)
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("stale fencing token"),
        "{refused:?}"
    );

    // The model travelled by content: the jobs name it in the artifact store, never by the
    // client's path, and the agents read it from there.
    let model_digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(std::fs::read(&model).unwrap()))
    );
    for job in jobs.iter().filter(|j| ids[&j.id].0 == "createAuxImage") {
        let spec = job.spec.as_ref().unwrap();
        let Some(patchfarm_proto::v1::job_spec::Verb::CreateAuxImage(aux)) = &spec.verb else {
            panic!("{job:?}")
        };
        let wdt = aux.wdt.as_ref().unwrap();
        assert_eq!(wdt.models, [format!("artifact:{model_digest}/model.yaml")]);
        assert!(spec.artifact_store.starts_with("oci:"), "{spec:?}");
    }

    // Every image is in the registry with the digest the job reported.
    let mut by_kind: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for job in &jobs {
        let (kind, expected_ref) = &ids[&job.id];
        let (reference, digest) = pushed_digest(job);
        assert_eq!(&reference, expected_ref);
        assert_eq!(raw_digest(&reference), digest, "{reference}");
        by_kind.entry(kind).or_default().push((reference, digest));
    }
    // Same inputs, same digest, whichever agent built it: unpatched creates agree, patched too.
    let create_digests: BTreeSet<&String> = by_kind["create"].iter().map(|(_, d)| d).collect();
    assert_eq!(create_digests.len(), 2, "{create_digests:?}");
    let update_digests: BTreeSet<&String> = by_kind["update"].iter().map(|(_, d)| d).collect();
    assert_eq!(update_digests.len(), 1, "{update_digests:?}");

    // One image of each kind, unpacked with umoci.
    let (_w, root) = unpack(&by_kind["create"][1].0);
    assert_eq!(
        jar_entry(&root.join("u01/oracle").join(JAR), "weblogic/Server.class"),
        b"PSU Server",
        "c:1 was built with the PSU"
    );
    let (_w, root) = unpack(&by_kind["update"][0].0);
    assert_eq!(
        jar_entry(&root.join("u01/oracle").join(JAR), "weblogic/Util.class"),
        b"REC Util"
    );
    let (_w, root) = unpack(&by_kind["createAuxImage"][0].0);
    assert_eq!(
        std::fs::read_to_string(root.join("auxiliary/models/model.yaml")).unwrap(),
        "topology: {}\n"
    );
    let (_w, root) = unpack(&by_kind["rebase"][0].0);
    assert_eq!(
        std::fs::read(root.join(DOMAIN).join("security/SerializedSystemIni.dat")).unwrap(),
        INI
    );
    assert_eq!(
        jar_entry(&root.join("u01/oracle").join(JAR), "weblogic/Server.class"),
        b"PSU Server"
    );

    // `agents list` shows the three agents with their slots and caches.
    let listed: serde_json::Value =
        serde_json::from_str(&farm.ok(&["--json", "agents", "list"])).unwrap();
    let names: BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["agent-1", "agent-2", "agent-3"]));
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["slots"] == 2 && a["registrySlots"] == 16));
    // `jobs logs` tells what happened.
    let logs = farm.ok(&["jobs", "logs", &victim.id]);
    assert!(logs.contains("pushed "), "{logs}");
}
