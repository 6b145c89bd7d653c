//! patchfarm-coordinator: the coordinator daemon (gRPC API, raft-rs node on sled, mTLS) and the
//! `patchfarm` CLI (one module per verb), which also speaks to the farm through `client`.

pub mod api;
pub mod campaign;
pub mod cli;
pub mod client;
pub mod raft;
pub mod scheduler;
pub mod server;
pub mod state;
pub mod tls;
