//! patchfarm-client: how anything reaches the farm — a client with fail-over across
//! coordinators, the mTLS files and roles, request ids that make retried writes act once — and
//! the start-up every binary shares (logging, async main).

mod client;
pub mod plain_http;
pub mod runtime;
pub mod tls;

pub use client::{connect_lazy, ClientError, FarmClient, CALL_DEADLINE};

/// A fresh request id: the same id twice is one write, so a client retrying on another
/// coordinator cannot act twice.
pub fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A coordinator as `ID=ADDR` (`--peer`, `cluster add-node`).
#[derive(Debug, thiserror::Error)]
pub enum NodeSpecError {
    #[error("{0:?} is not ID=ADDR (for example 4=127.0.0.1:7004)")]
    Shape(String),
    #[error("{0:?}: node id {1:?} is not a number")]
    Id(String, String),
    #[error("{0:?}: node ids start at 1")]
    Zero(String),
    #[error("{0:?}: the address is empty")]
    NoAddress(String),
}

/// Parses `ID=ADDR`.
pub fn parse_node(text: &str) -> Result<(u64, String), NodeSpecError> {
    let (id, address) = text
        .split_once('=')
        .ok_or_else(|| NodeSpecError::Shape(text.into()))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| NodeSpecError::Id(text.into(), id.into()))?;
    if id == 0 {
        return Err(NodeSpecError::Zero(text.into()));
    }
    if address.trim().is_empty() {
        return Err(NodeSpecError::NoAddress(text.into()));
    }
    Ok((id, address.trim().to_string()))
}
