//! patchfarm-coordinator: the coordinator daemon — gRPC services (`api`), the raft-rs node on
//! sled (`raft`), the replicated state machine (`state`), the scheduler and heartbeat verdicts
//! (`scheduler`), callers' roles from their certificates (`roles`), all composed in `server`.
//! No other crate depends on this one.

pub mod api;
pub mod dashboard;
pub mod fencing;
pub mod grpc_health;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod raft;
pub mod roles;
pub mod scheduler;
pub mod server;
pub mod state;
