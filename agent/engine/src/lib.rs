//! patchfarm's image engine: OCI images read, built and pushed natively, without a Docker daemon.
//! No gRPC, raft or proto types here: the CLI and the agent both drive this crate.

pub mod artifact;
pub mod aru;
pub mod beneath;
pub mod cache;
pub mod digest;
pub mod image;
pub mod installer;
pub mod layer;
pub mod limits;
pub mod opatch;
pub mod recipe;
pub mod rpmdb;
pub mod sign;
pub mod transport;
pub mod tree;

/// `tokio::task::spawn_blocking` inside the caller's tracing span, so what blocking work logs
/// (layer builds, fetches into the cache) still names the job it works for.
pub fn spawn_blocking<F, R>(work: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
}
