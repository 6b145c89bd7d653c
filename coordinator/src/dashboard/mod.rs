//! The web dashboard every coordinator serves on `--http-listen` (HTTPS when the farm has
//! certificates): campaigns, jobs, agents and the cluster as server-rendered pages that a small
//! script of our own keeps live over server-sent events, plus `/metrics`, `/healthz` and
//! `/readyz`. Reads go through the same paths as the CLI's (ReadIndex; agents from the leader).
//! Only GET routes exist: a dashboard credential reaches no write API.

mod auth;
mod campaign;
mod data;
mod pages;

use crate::api::farm::FarmService;
use crate::metrics::FarmMetrics;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use auth::{read_token, server_config};

/// A TLS handshake or a request's headers must arrive within this.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// How often a live page is rendered again (sent only when it changed).
const LIVE_EVERY: Duration = Duration::from_secs(1);

/// What the dashboard reads from.
pub struct Dashboard {
    pub farm: Arc<FarmService>,
    pub metrics: Arc<FarmMetrics>,
    pub data_dir: PathBuf,
    /// The read-only token (`--dashboard-token-file`); `None`: client certificates only.
    pub token: Option<String>,
    /// A channel to the current leader, for pages served by a follower.
    pub leader_channel: std::sync::Mutex<Option<(String, tonic::transport::Channel)>>,
}

/// How the connection came in: over TLS, and with a farm certificate or not.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer {
    pub tls: bool,
    pub certificate: bool,
}

fn router(dashboard: Arc<Dashboard>) -> Router {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/campaigns") }))
        .route("/campaigns", get(page))
        .route("/campaigns/{name}", get(page))
        .route("/jobs", get(page))
        .route("/jobs/{id}", get(page))
        .route("/agents", get(page))
        .route("/cluster", get(page))
        .route("/live", get(live))
        .route("/metrics", get(metrics))
        .route("/assets/live.js", get(script))
        .route("/assets/style.css", get(style))
        .layer(axum::middleware::from_fn_with_state(
            dashboard.clone(),
            auth::require,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .merge(pages)
        .fallback(|| async { (http::StatusCode::NOT_FOUND, "not found\n") })
        .with_state(dashboard)
}

async fn page(
    State(dashboard): State<Arc<Dashboard>>,
    uri: http::Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let path = uri.path().to_string();
    let main = render(&dashboard, &path, &query).await;
    let live = uri.path_and_query().map_or(path.clone(), |p| p.to_string());
    let seen = fingerprint(&main.0);
    Html(pages::layout(&path, &live, &seen, main).into_string()).into_response()
}

/// A short digest of a rendering: the live stream sends nothing until the page changes from
/// what the browser already shows.
fn fingerprint(html: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(html.as_bytes())[..8])
}

/// The `<main>` content of `path`.
async fn render(
    dashboard: &Dashboard,
    path: &str,
    query: &BTreeMap<String, String>,
) -> maud::Markup {
    let parts: Vec<&str> = path.trim_matches('/').splitn(2, '/').collect();
    let shown = match parts.as_slice() {
        ["campaigns"] => data::campaigns(dashboard).await.map(pages::campaigns),
        ["campaigns", name] => campaign::page(dashboard, name).await,
        ["jobs"] => data::jobs(dashboard, query)
            .await
            .map(|jobs| pages::jobs(&jobs, query)),
        ["jobs", id] => data::job(dashboard, id).await.map(|j| pages::job(&j)),
        ["agents"] => data::agents(dashboard).await.map(|a| pages::agents(&a)),
        ["cluster"] => data::cluster(dashboard).await.map(|c| pages::cluster(&c)),
        _ => Err(format!("no page at {path}")),
    };
    shown.unwrap_or_else(|e| pages::unavailable(&e))
}

#[derive(serde::Deserialize)]
struct LiveQuery {
    path: String,
    /// The fingerprint of what the page shows now.
    #[serde(default)]
    seen: String,
}

/// Server-sent events: the page's `<main>` again whenever it changed (checked every second).
async fn live(
    State(dashboard): State<Arc<Dashboard>>,
    Query(LiveQuery { path, seen }): Query<LiveQuery>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    // The page's own address, path and query, read as axum reads a request's.
    let uri: http::Uri = path.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    let page = uri.path().to_string();
    let query = Query::<BTreeMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut last = seen;
        let mut tick = tokio::time::interval(LIVE_EVERY);
        loop {
            tick.tick().await;
            let html = render(&dashboard, &page, &query).await.into_string();
            let now = fingerprint(&html);
            if now != last {
                let event = Event::default()
                    .event("main")
                    .data(html.replace('\n', "&#10;"));
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
                last = now;
            } else if tx.is_closed() {
                return;
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default())
}

async fn metrics(State(dashboard): State<Arc<Dashboard>>) -> Response {
    (
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        dashboard.metrics.render(),
    )
        .into_response()
}

async fn ready(State(dashboard): State<Arc<Dashboard>>) -> Response {
    match crate::http::not_ready(&dashboard.farm.node, &dashboard.data_dir).await {
        None => "ready\n".into_response(),
        Some(why) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn script() -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("live.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
        .into_response()
}

/// Serves the dashboard on `listener` until `shutdown`: TLS with an optional farm client
/// certificate when `tls` is given, plain HTTP otherwise (then only the token admits).
pub async fn serve(
    listener: tokio::net::TcpListener,
    dashboard: Arc<Dashboard>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let app = router(dashboard);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let (app, acceptor, shutdown) = (app.clone(), acceptor.clone(), shutdown.clone());
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty());
                    let peer = Peer {
                        tls: true,
                        certificate,
                    };
                    connection(TokioIo::new(stream), app.layer(Extension(peer)), shutdown).await
                }
                None => {
                    let peer = Peer {
                        tls: false,
                        certificate: false,
                    };
                    connection(TokioIo::new(stream), app.layer(Extension(peer)), shutdown).await
                }
            }
        });
    }
}

async fn connection<I>(io: I, app: Router, shutdown: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_DEADLINE)
        .serve_connection(io, service);
    tokio::pin!(served);
    tokio::select! {
        _ = &mut served => {}
        _ = shutdown.cancelled() => served.as_mut().graceful_shutdown(),
    }
}
