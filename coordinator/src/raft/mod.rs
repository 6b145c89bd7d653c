//! Consensus: the raft node task (`node`), its sled storage (`storage`), the gRPC transport
//! between coordinators (`transport`), and the handle handlers use (`handle`). What crosses
//! between them is in `messages`, so none of them imports another's internals.

pub mod durable;
mod handle;
pub(crate) mod messages;
mod metrics;
pub mod node;
mod slog_bridge;
pub mod storage;
pub mod transport;

pub use handle::{NodeHandle, REQUEST_DEADLINE};
pub use messages::{now_ms, LocalStatus, NodeError};
pub use metrics::Metrics;
