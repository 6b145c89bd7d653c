//! `--otlp-endpoint`: the daemons export their spans as OpenTelemetry traces over OTLP/gRPC. A
//! collector stand-in (the OTLP trace service from `opentelemetry-proto`) receives the agent's
//! span of a job it ran, with the job's id, campaign and agent, under the agent's service name;
//! the agent's log lines for the job carry the same.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use patchfarm_e2e::farm::Farm;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A received span: service name, span name, string attributes.
type Received = (String, String, BTreeMap<String, String>);

#[derive(Default, Clone)]
struct Collector(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
            .as_ref()
            .and_then(|v| v.value.clone())
        {
            Some(AnyValue::StringValue(s)) => s,
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect();
                    self.0
                        .lock()
                        .unwrap()
                        .push((service.clone(), span.name, attributes));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_span_reaches_the_otlp_collector_with_its_job_campaign_and_agent() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let otlp = format!("--otlp-endpoint={endpoint}");
    let mut farm = Farm::start(1, &[&otlp]);
    farm.cluster.wait_leader(&[1]).await;
    farm.upload_weblogic();
    farm.start_agent("agent-1", &[&otlp]);
    let tag = format!("{}/wls/traced:1", farm.registry.host());
    let pushed = farm.ok(&[
        "--wait",
        "create",
        "--tag",
        &tag,
        "--fromImage",
        &farm.base,
        "--jdkVersion",
        "17",
    ]);
    assert!(pushed.contains("@sha256:"), "{pushed}");
    // A clean stop sends what the exporter still holds.
    assert!(farm.terminate_agent("agent-1"));
    // The job's log lines name it, its campaign and the agent, blocking work's lines too (the
    // installers are fetched into the cache on a blocking thread).
    let log = farm.agent_log("agent-1");
    for said in ["job started", "artifact fetched", "job succeeded"] {
        let line = log
            .lines()
            .find(|l| l.contains(said))
            .unwrap_or_else(|| panic!("no {said:?} in {log}"));
        assert!(
            line.contains("job{job=job-") && line.contains("agent=agent-1"),
            "{line}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = collector.0.lock().unwrap().clone();
        if let Some((service, _, attributes)) = spans.iter().find(|(_, name, _)| name == "job") {
            assert_eq!(service, "patchfarm-agent");
            assert!(attributes["job"].starts_with("job-"), "{attributes:?}");
            assert_eq!(attributes["agent"], "agent-1", "{attributes:?}");
            assert!(attributes.contains_key("campaign"), "{attributes:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no job span reached the collector: {spans:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
