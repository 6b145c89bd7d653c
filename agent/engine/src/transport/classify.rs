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
        OciDistributionError::ServerError { code, message, .. } => {
            let digests = unknown_blobs(&message);
            if code == 400 && !digests.is_empty() {
                TransportError::BlobsUnknown {
                    registry,
                    what: what.into(),
                    digests,
                }
            } else {
                by_status(code, message)
            }
        }
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
            let unknown: Vec<String> = envelope
                .errors
                .iter()
                .filter(|e| e.code == OciErrorCode::ManifestBlobUnknown)
                .map(|e| detail_digest(&e.detail))
                .collect();
            if !unknown.is_empty() {
                return TransportError::BlobsUnknown {
                    registry,
                    what: what.into(),
                    digests: unknown,
                };
            }
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

/// The digests a registry's error body names as MANIFEST_BLOB_UNKNOWN (oci-client keeps bodies
/// with codes it does not know, such as DIGEST_INVALID, as plain text).
fn unknown_blobs(body: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    value["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["code"] == "MANIFEST_BLOB_UNKNOWN")
        .map(|e| detail_digest(&e["detail"]))
        .collect()
}

/// A blob-unknown error's detail: the digest itself, or an object holding it (`{"digest": …}`).
fn detail_digest(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::String(s) => s.clone(),
        other => other["digest"].as_str().unwrap_or("?").to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_naming_unknown_blobs_says_which() {
        // What Debian's docker-registry answered when a manifest raced a re-link of its layer.
        let body = r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:51ea"}]}"#;
        let error = OciDistributionError::ServerError {
            code: 400,
            url: "http://r/v2/x/manifests/1".into(),
            message: body.into(),
        };
        let classified = classify(error, "r", true, "pushing manifest", Default::default());
        match classified {
            TransportError::BlobsUnknown { digests, .. } => assert_eq!(digests, ["sha256:51ea"]),
            other => panic!("expected BlobsUnknown, got {other:?}"),
        }
        let plain = OciDistributionError::ServerError {
            code: 400,
            url: "http://r/v2/x/manifests/1".into(),
            message: r#"{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}"#.into(),
        };
        assert!(matches!(
            classify(plain, "r", true, "pushing manifest", Default::default()),
            TransportError::Status { status: 400, .. }
        ));
    }
}
