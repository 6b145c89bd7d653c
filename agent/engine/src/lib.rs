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
