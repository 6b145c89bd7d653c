//! patchfarm-coordinator: today the `patchfarm` CLI (one module per verb); the coordinator
//! daemon (gRPC API, raft-rs node, scheduler) joins it here.

pub mod cli;
