//! Who may see the dashboard: a connection with a farm certificate, or a request with the
//! read-only token (`Authorization: Bearer`, the cookie a `?token=` link sets once). The TLS
//! setup asks for a certificate without requiring one, so a browser with only the token connects.

use super::{Dashboard, Peer};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use patchfarm_client::tls::TlsFiles;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

const COOKIE: &str = "patchfarm_dashboard";

/// Reads `--dashboard-token-file`: one line, at least 16 characters (a guessable token is refused).
pub fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--dashboard-token-file {}: {e}", path.display()))?;
    let token = text.trim().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if token.len() < 16 || !token.chars().all(plain) {
        anyhow::bail!(
            "--dashboard-token-file {}: the token must be at least 16 characters of A-Z, a-z, 0-9, '-', '.', '_' or '~'",
            path.display()
        );
    }
    Ok(token)
}

/// The dashboard's TLS: the node's certificate, and client certificates from the farm's CA
/// accepted but not required.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let context = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        anyhow::anyhow!("dashboard TLS: {what} {}: {e}", path.display())
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| context("certificate", &files.cert, &e))?;
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| context("key", &files.key, &e))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&files.ca).map_err(|e| context("CA", &files.ca, &e))? {
        let ca = ca.map_err(|e| context("CA", &files.ca, &e))?;
        roots.add(ca).map_err(|e| context("CA", &files.ca, &e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Equal without stopping at the first difference (the token is a secret).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn presented(request: &Request) -> Vec<String> {
    let headers = request.headers();
    let mut found = Vec::new();
    if let Some(bearer) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        found.push(bearer.trim().to_string());
    }
    for cookies in headers.get_all(http::header::COOKIE) {
        for pair in cookies.to_str().unwrap_or_default().split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name == COOKIE {
                    found.push(value.to_string());
                }
            }
        }
    }
    found
}

/// The query without its `token` pair, and the token if there was one.
fn strip_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("token=") {
            Some(value) => {
                token = Some(value.to_string());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    (token, rest.join("&"))
}

/// Admits the request or answers 401; a valid `?token=` sets the cookie and leads to the same
/// page without the token in its address.
pub async fn require(
    State(dashboard): State<Arc<Dashboard>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<Peer>().copied().unwrap_or(Peer {
        tls: false,
        certificate: false,
    });
    if peer.certificate {
        return next.run(request).await;
    }
    if let Some(token) = &dashboard.token {
        if presented(&request).iter().any(|t| same(t, token)) {
            return next.run(request).await;
        }
        let (given, rest) = strip_token(request.uri().query().unwrap_or_default());
        if given.as_deref().is_some_and(|t| same(t, token)) {
            let path = request.uri().path();
            let to = if rest.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{rest}")
            };
            let secure = if peer.tls { "; Secure" } else { "" };
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
            return ([(http::header::SET_COOKIE, cookie)], Redirect::to(&to)).into_response();
        }
    }
    (
        http::StatusCode::UNAUTHORIZED,
        [(http::header::WWW_AUTHENTICATE, "Bearer")],
        "401: present a farm client certificate, or the dashboard token (Authorization: Bearer, or once as ?token=)\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        assert_eq!(
            strip_token("state=failed&token=abc&campaign=q4"),
            (Some("abc".into()), "state=failed&campaign=q4".into())
        );
        assert_eq!(strip_token(""), (None, String::new()));
        assert!(same("abcdef", "abcdef") && !same("abcdef", "abcdeg") && !same("a", "ab"));
    }
}
