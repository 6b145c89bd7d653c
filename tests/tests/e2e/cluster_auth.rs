//! mTLS and roles: only certificates from the farm's CA get in, and each role reaches only its
//! own service (client → Farm, agent → AgentApi, coordinator → Raft). Leases carry fencing
//! tokens: a completion with a stale token is refused.

use patchfarm_e2e::cluster::Cluster;
use patchfarm_proto::v1::agent_api_client::AgentApiClient;
use patchfarm_proto::v1::farm_client::FarmClient;
use patchfarm_proto::v1::raft_client::RaftClient;
use patchfarm_proto::v1::*;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;

fn tls(ca_dir: &Path, identity: Option<(&Path, &str)>) -> ClientTlsConfig {
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(ca_dir.join("ca.crt")).unwrap(),
        ))
        .domain_name("patchfarm-coordinator");
    if let Some((dir, name)) = identity {
        config = config.identity(Identity::from_pem(
            std::fs::read(dir.join(format!("{name}.crt"))).unwrap(),
            std::fs::read(dir.join(format!("{name}.key"))).unwrap(),
        ));
    }
    config
}

async fn channel(address: &str, tls: Option<ClientTlsConfig>) -> Result<Channel, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    endpoint.connect().await.map_err(|e| format!("{e:?}"))
}

/// Submits a copy job pushing `to` under `request_id` on a client channel.
async fn submit_as(channel: &Channel, request_id: &str, to: &str) -> Job {
    FarmClient::new(channel.clone())
        .submit_job(SubmitJobRequest {
            request_id: request_id.into(),
            spec: Some(JobSpec {
                verb: Some(job_spec::Verb::Copy(CopyJob {
                    from: "registry.example/source:1".into(),
                    to: to.into(),
                    platform: "linux/amd64".into(),
                })),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn status_with(address: &str, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let channel = channel(address, tls).await?;
    FarmClient::new(channel)
        .cluster_status(ClusterStatusRequest {})
        .await
        .map(|_| ())
        .map_err(|s| format!("{s:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_and_roles_are_enforced() {
    let cluster = Cluster::start(1);
    cluster.wait_leader(&[1]).await;
    let address = cluster.address(1);
    let certs = cluster.certs_dir().to_path_buf();

    // The right certificate works (control).
    status_with(&address, Some(tls(&certs, Some((&certs, "client")))))
        .await
        .expect("client certificate accepted");

    // No certificate, a certificate from another CA, no TLS at all: refused.
    assert!(
        status_with(&address, Some(tls(&certs, None)))
            .await
            .is_err(),
        "no client certificate"
    );
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(patchfarm_e2e::patchfarm_bin())
        .args(["certs", "init", "--out"])
        .arg(other.path())
        .args(["--coordinators", "1", "--agents", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        status_with(&address, Some(tls(&certs, Some((other.path(), "client")))))
            .await
            .is_err(),
        "certificate from another CA"
    );
    assert!(status_with(&address, None).await.is_err(), "plaintext");

    // The CLI with another CA's certificates fails and says why it could not get through.
    let out = std::process::Command::new(patchfarm_e2e::patchfarm_bin())
        .args(["--farm", &address, "--tls-dir"])
        .arg(other.path())
        .args(["cluster", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&address), "{stderr}");

    // The farm's CA but a client certificate from another CA: the coordinator's TLS alert is
    // named at once, not retried on every node until the call's deadline.
    let mixed = tempfile::tempdir().unwrap();
    std::fs::copy(certs.join("ca.crt"), mixed.path().join("ca.crt")).unwrap();
    for file in ["client.crt", "client.key"] {
        std::fs::copy(other.path().join(file), mixed.path().join(file)).unwrap();
    }
    let out = std::process::Command::new(patchfarm_e2e::patchfarm_bin())
        .args(["--farm", &address, "--tls-dir"])
        .arg(mixed.path())
        .args(["cluster", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS refused the connection") && stderr.contains("alert"),
        "{stderr}"
    );

    let as_client = channel(&address, Some(tls(&certs, Some((&certs, "client")))))
        .await
        .unwrap();
    let as_agent = channel(&address, Some(tls(&certs, Some((&certs, "agent-1")))))
        .await
        .unwrap();

    // A client certificate can act neither as a peer nor as an agent.
    let denied = RaftClient::new(as_client.clone())
        .send(RaftBatch {
            from: 9,
            messages: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("role client"), "{denied:?}");
    let denied = AgentApiClient::new(as_client.clone())
        .lease(LeaseRequest {
            request_id: "x".into(),
            max_jobs: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // An agent certificate cannot submit jobs or speak raft.
    let denied = FarmClient::new(as_agent.clone())
        .submit_job(SubmitJobRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let denied = RaftClient::new(as_agent.clone())
        .send(RaftBatch {
            from: 9,
            messages: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // Agents lease under fencing tokens; a stale token cannot complete the job.
    let job = submit_as(&as_client, "submit-1", "registry.example/copy:1").await;
    let mut agent = AgentApiClient::new(as_agent.clone());
    let registered = agent
        .register(RegisterRequest {
            request_id: "reg-1".into(),
            slots: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        registered.name, "agent-1",
        "the agent's name comes from its certificate"
    );
    let leased = agent
        .lease(LeaseRequest {
            request_id: "lease-1".into(),
            max_jobs: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].id, job.id);
    let token = leased[0].lease.as_ref().unwrap().fencing_token;
    let stale = agent
        .complete(CompleteRequest {
            request_id: "complete-stale".into(),
            job_id: job.id.clone(),
            fencing_token: token - 1,
            success: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");
    assert!(stale.message().contains("stale fencing token"), "{stale:?}");
    let done = agent
        .complete(CompleteRequest {
            request_id: "complete-1".into(),
            job_id: job.id.clone(),
            fencing_token: token,
            success: true,
            digests: vec!["sha256:00".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state(), JobState::Succeeded);

    // The same submission request id twice is one job.
    let again = submit_as(&as_client, "submit-1", "registry.example/copy:1").await;
    assert_eq!(again.id, job.id);

    // WatchJob follows a job to its end; `patchfarm jobs cancel` ends this one.
    let watched = submit_as(&as_client, "submit-2", "registry.example/copy:2").await;
    let mut stream = FarmClient::new(as_client)
        .watch_job(WatchJobRequest {
            id: watched.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.state(), JobState::Queued);
    let out = cluster.cli(&["jobs", "cancel", &watched.id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let next = stream.message().await.unwrap().unwrap();
    assert_eq!(next.state(), JobState::Cancelled);
    assert!(
        stream.message().await.unwrap().is_none(),
        "the stream ends with the job"
    );
    let out = cluster.cli(&["jobs", "cancel", &watched.id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already cancelled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
