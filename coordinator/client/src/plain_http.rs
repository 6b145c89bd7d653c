//! The small plain-HTTP port coordinators and agents serve for probes and scrapers
//! (`/metrics`, `/healthz`, `/readyz`): one request per connection, its path handed to the
//! daemon's own `answer`, the request read and the answer written within a deadline. Small
//! enough not to need an HTTP framework.

use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// A client gets this long to send its request line and to take the answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// Plain text, as probes and people read it.
const TEXT: &str = "text/plain; charset=utf-8";
/// OpenMetrics text, as `prometheus-client` writes it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An answer: status line (`200 OK`), content type and body.
pub type Answer = (&'static str, &'static str, String);

/// `/metrics`: the daemon's OpenMetrics text.
pub fn metrics(text: String) -> Answer {
    ("200 OK", OPENMETRICS, text)
}

/// `/healthz`: the process answers.
pub fn alive() -> Answer {
    ("200 OK", TEXT, "ok\n".into())
}

/// `/readyz`: 200, or 503 with why the daemon should get no traffic now.
pub fn readiness(not_ready: Option<String>) -> Answer {
    match not_ready {
        None => ("200 OK", TEXT, "ready\n".into()),
        Some(why) => (
            "503 Service Unavailable",
            TEXT,
            format!("not ready: {why}\n"),
        ),
    }
}

/// The answer for a path no daemon serves.
pub fn not_found() -> Answer {
    (
        "404 Not Found",
        TEXT,
        "not found: /metrics, /healthz or /readyz\n".into(),
    )
}

/// Serves `listener` until `shutdown`, each request's path (query left off) answered by
/// `answer`.
pub async fn serve<F, Fut>(
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    answer: F,
) where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let Ok(Ok(read)) = tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buf[..read]);
            let target = request.split_whitespace().nth(1).unwrap_or("/");
            let path = target.split('?').next().unwrap_or(target).to_string();
            let (status, content_type, body) = answer(path).await;
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(DEADLINE, stream.write_all(response.as_bytes())).await;
        });
    }
}
