//! Transports: where images are read from and written to — registries (through oci-client),
//! OCI image layout directories and the local container engine's store — behind one set of
//! operations.

pub mod auth;
mod classify;
pub mod docker_archive;
pub mod engine_store;
pub mod layout;
mod probe;
pub mod push;
pub mod registry;
pub mod retry;
pub mod source;

pub use push::{PushReport, PushedImage};
pub use registry::{Registries, RegistryClient, RegistryOptions};
pub use source::{BlobSource, ResolvedImage};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    /// Not retried: a registry silent for the whole deadline is not a blip, and retrying would
    /// multiply the wait.
    #[error("registry {registry} sent nothing for {seconds} s during {what}; giving up (the no-progress deadline, --registry-timeout SECS)")]
    Stalled {
        registry: String,
        what: String,
        seconds: f64,
    },
    #[error("connection to registry {registry} broke during {what}: {reason}")]
    Interrupted {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("TLS with registry {registry} failed: {reason} (trust its CA with --registry-ca FILE, or use --insecure-registry {registry} for plain HTTP)")]
    Tls { registry: String, reason: String },
    #[error("authentication failed for registry {registry} (check the credentials in your docker config)")]
    AuthenticationFailed { registry: String },
    #[error("registry {registry} requires authentication and no credentials for it were found in $DOCKER_CONFIG/config.json or ~/.docker/config.json")]
    CredentialsRequired { registry: String },
    #[error("access denied by registry {registry} to {what}")]
    Denied { registry: String, what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("registry {registry} failed on {what}: HTTP {status}: {message}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("registry {registry} failed on {what}: {reason}")]
    Protocol {
        registry: String,
        what: String,
        reason: String,
    },
    /// The registry did not find blobs a pushed manifest names. Under concurrent pushes of the
    /// same blobs to one repository this passes: the distribution registry rewrites a blob's
    /// link in place (truncate, then write), so a manifest checked meanwhile reads an empty link.
    #[error("registry {registry} does not know blob(s) {} named by {what}", digests.join(", "))]
    BlobsUnknown {
        registry: String,
        what: String,
        digests: Vec<String>,
    },
    #[error("{what}: digest mismatch (expected {expected}, got {actual})")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container engine at {engine}: {reason}")]
    Engine { engine: String, reason: String },
    #[error("OCI layout {dir}: {reason}")]
    Layout { dir: String, reason: String },
    #[error(transparent)]
    Manifest(#[from] crate::image::manifest::ManifestError),
    #[error(transparent)]
    Config(#[from] crate::image::config::ConfigError),
}

impl TransportError {
    /// Worth retrying: connection trouble, 408, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Interrupted { .. } => true,
            TransportError::Status { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            TransportError::Protocol { reason, .. } => {
                reason.contains("connection") || reason.contains("reset")
            }
            TransportError::Io { .. } => false,
            _ => false,
        }
    }
}
