//! oci-client's errors turned into [`TransportError`]s that name the registry, tell permanent
//! from transient failures, and never carry a password.

use super::TransportError;
use oci_client::errors::{OciDistributionError, OciErrorCode};

/// Turns oci-client's errors into ours, naming the registry and never the password.
pub fn classify(
    error: OciDistributionError,
    registry: &str,
    anonymous: bool,
    what: &str,
    stall_timeout: std::time::Duration,
) -> TransportError {
    let registry = registry.to_string();
    let by_status = |status: u16, message: String| match status {
        401 if anonymous => TransportError::CredentialsRequired {
            registry: registry.clone(),
        },
        401 => TransportError::AuthenticationFailed {
            registry: registry.clone(),
        },
        403 => TransportError::Denied {
            registry: registry.clone(),
            what: what.into(),
        },
        404 => TransportError::NotFound {
            what: format!("{what} on registry {registry}"),
        },
        _ => TransportError::Status {
            registry: registry.clone(),
            what: what.into(),
            status,
            message,
        },
    };
    match error {
        OciDistributionError::RequestError(e) => {
            let reason = root_cause(&e);
            let lower = reason.to_ascii_lowercase();
            if let Some(status) = e.status() {
                by_status(status.as_u16(), e.to_string())
            } else if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake")
            {
                TransportError::Tls { registry, reason }
            } else if e.is_connect()
                && ["refused", "dns", "resolve", "no route"]
                    .iter()
                    .any(|w| lower.contains(w))
            {
                TransportError::Unreachable { registry, reason }
            } else if e.is_timeout() && !e.is_connect() {
                TransportError::Stalled {
                    registry,
                    what: what.into(),
                    seconds: stall_timeout.as_secs_f64(),
                }
            } else if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() {
                TransportError::Interrupted {
                    registry,
                    what: what.into(),
                    reason,
                }
            } else {
                TransportError::Protocol {
                    registry,
                    what: what.into(),
                    reason,
                }
            }
        }
        OciDistributionError::ServerError { code, message, .. } => by_status(code, message),
        OciDistributionError::UnauthorizedError { .. } => by_status(401, String::new()),
        OciDistributionError::AuthenticationFailure(_) => {
            TransportError::AuthenticationFailed { registry }
        }
        OciDistributionError::ImageManifestNotFoundError(_) => by_status(404, String::new()),
        OciDistributionError::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code);
            let message = envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            match code {
                Some(OciErrorCode::Unauthorized) => by_status(401, message),
                Some(OciErrorCode::Denied) => by_status(403, message),
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound,
                ) => by_status(404, message),
                Some(OciErrorCode::Toomanyrequests) => by_status(429, message),
                _ => TransportError::Protocol {
                    registry,
                    what: what.into(),
                    reason: message,
                },
            }
        }
        OciDistributionError::DigestError(e) => TransportError::Protocol {
            registry,
            what: what.into(),
            reason: e.to_string(),
        },
        other => TransportError::Protocol {
            registry,
            what: what.into(),
            reason: other.to_string(),
        },
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}
