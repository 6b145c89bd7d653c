//! Telling whether a loopback or `--insecure-registry` host speaks TLS, before choosing a scheme.

use tokio::io::AsyncWriteExt;

/// Whether the server at `registry` answers a plaintext request the way a TLS server does
/// (a TLS alert, or Go's "HTTP request to an HTTPS server"). Loopback and `--insecure-registry`
/// hosts speak plain HTTP unless this says otherwise, as Docker falls back between the two.
pub async fn speaks_tls(registry: &str) -> bool {
    use tokio::io::AsyncReadExt;
    let addr = with_default_port(registry);
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
        stream
            .write_all(b"GET /v2/ HTTP/1.0\r\nHost: patchfarm-probe\r\n\r\n")
            .await
            .ok()?;
        let mut reply = [0u8; 256];
        let n = stream.read(&mut reply).await.ok()?;
        let reply = &reply[..n];
        Some(
            !reply.starts_with(b"HTTP/") || String::from_utf8_lossy(reply).contains("HTTPS server"),
        )
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// `host:port` to connect to: the registry as written, or with :443 when it names no port.
fn with_default_port(registry: &str) -> String {
    let has_port = match registry.rsplit_once(':') {
        Some((host, port)) => {
            port.bytes().all(|b| b.is_ascii_digit())
                && (!host.starts_with('[') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        registry.to_string()
    } else {
        format!("{registry}:443")
    }
}

#[cfg(test)]
mod tests {
    use super::with_default_port;

    #[test]
    fn probe_addresses() {
        assert_eq!(with_default_port("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(with_default_port("localhost"), "localhost:443");
        assert_eq!(with_default_port("[::1]:5000"), "[::1]:5000");
        assert_eq!(with_default_port("[::1]"), "[::1]:443");
    }
}
