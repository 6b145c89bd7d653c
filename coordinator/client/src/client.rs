//! A client of the farm: any coordinator will do, so calls go to the first address that answers
//! and move on to the next when a node is down or cannot reach a quorum. Writes carry a request
//! id chosen here, so retrying them on another node cannot act twice.

use crate::tls::TlsFiles;
use patchfarm_proto::v1::agent_api_client::AgentApiClient;
use patchfarm_proto::v1::farm_client::FarmClient as Grpc;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

/// How long a call keeps trying other nodes before giving up.
pub const CALL_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--farm names no coordinator address")]
    NoAddress,
    #[error("bad coordinator address {address:?}: {source}")]
    Address {
        address: String,
        source: tonic::transport::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The farm answered with a refusal (bad input, wrong role, not found…): no retry helps.
    #[error("{message} ({address}: {code:?})")]
    Refused {
        code: Code,
        message: String,
        address: String,
    },
    #[error("no coordinator answered within {deadline:?} (tried {addresses}); last error: {last}")]
    Unavailable {
        deadline: Duration,
        addresses: String,
        last: String,
    },
}

#[derive(Clone)]
pub struct FarmClient {
    nodes: Arc<Vec<(String, Channel)>>,
    preferred: Arc<AtomicUsize>,
    deadline: Duration,
}

impl ClientError {
    /// The gRPC code of a refusal (`None` when no coordinator answered).
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl FarmClient {
    /// `tls_dir` holds `ca.crt` and `<identity>.crt/.key`; `None` = plaintext (`--insecure`).
    pub fn new(
        addresses: &[String],
        tls_dir: Option<&Path>,
        identity: &str,
    ) -> Result<Self, ClientError> {
        Self::with_tls(addresses, tls_dir.map(|dir| TlsFiles::new(dir, identity)))
    }

    /// As `new`, with the identity's files named one by one; `None` = plaintext.
    pub fn with_tls(addresses: &[String], files: Option<TlsFiles>) -> Result<Self, ClientError> {
        if addresses.is_empty() {
            return Err(ClientError::NoAddress);
        }
        let tls = files.map(|files| files.client()).transpose()?;
        let nodes = addresses
            .iter()
            .map(|address| {
                connect_lazy(address, tls.clone())
                    .map(|channel| (address.clone(), channel))
                    .map_err(|source| ClientError::Address {
                        address: address.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FarmClient {
            nodes: Arc::new(nodes),
            preferred: Arc::new(AtomicUsize::new(0)),
            deadline: CALL_DEADLINE,
        })
    }

    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Runs `call` against the nodes in turn until one answers something other than
    /// "unavailable"; refusals (bad input, wrong role, not found) are returned at once.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: Fn(Grpc<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_on(|channel| call(Grpc::new(channel))).await
    }

    /// As `call`, for the agent API (heartbeats and leases find the leader this way: other
    /// nodes answer "unavailable, not the leader").
    pub async fn call_agent<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: Fn(AgentApiClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_on(|channel| call(AgentApiClient::new(channel)))
            .await
    }

    /// As `call`, for another service on the coordinators' port (the gRPC health service).
    pub async fn call_service<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_on(call).await
    }

    async fn call_on<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let started = Instant::now();
        let mut last;
        let mut attempt = 0usize;
        loop {
            let index = (self.preferred.load(Ordering::Relaxed) + attempt) % self.nodes.len();
            let (address, client) = &self.nodes[index];
            match call(client.clone()).await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(response.into_inner());
                }
                Err(status) if let Some(refusal) = tls_refusal(&status) => {
                    return Err(ClientError::Refused {
                        code: status.code(),
                        message: format!(
                            "TLS refused the connection: {refusal} (is the certificate in --tls-dir from this farm's CA, and of the right role?)"
                        ),
                        address: address.clone(),
                    })
                }
                Err(status) if retryable(&status) => {
                    last = format!("{address}: {}", status.message());
                }
                Err(status) => {
                    return Err(ClientError::Refused {
                        code: status.code(),
                        message: status.message().to_string(),
                        address: address.clone(),
                    })
                }
            }
            attempt += 1;
            if started.elapsed() >= self.deadline {
                return Err(ClientError::Unavailable {
                    deadline: self.deadline,
                    addresses: self
                        .nodes
                        .iter()
                        .map(|(a, _)| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    last,
                });
            }
            if attempt.is_multiple_of(self.nodes.len()) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The peer's TLS alert behind a status (its certificate check refused ours), if that is what
/// failed: every coordinator of the farm will answer the same, so trying others only hides it.
fn tls_refusal(status: &Status) -> Option<String> {
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        let text = error.to_string();
        if text.contains("alert") {
            return Some(text);
        }
        cause = error.source();
    }
    None
}

fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    ) && !status.message().contains("certificate")
}

/// A lazily connected channel to a coordinator (TLS when configured).
pub fn connect_lazy(
    address: &str,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(3));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect_lazy())
}
