//! Layers: the deterministic writer (tar → gzip or zstd → file with diffID and digest in one pass)
//! and the reader used by the merged tree view.

pub mod capture;
pub mod compress;
pub mod fingerprint;
pub mod materialize;
pub mod reader;
pub mod rootfs;
pub mod source;
pub mod writer;
pub mod xattr;

#[cfg(test)]
pub(crate) mod test_support {
    /// `cap_net_raw+ep` as the kernel stores it (VFS_CAP_REVISION_2, effective).
    pub const CAP_NET_RAW: &[u8] = &[
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// Whether the test runs as root (owners, whiteouts and capabilities need it); CI does.
    pub fn as_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the tests as root"
            );
            eprintln!("skipped: owners, whiteouts and capabilities need root");
        }
        root
    }
}

pub use compress::Compression;
pub use writer::{LayerBlob, LayerSpec, Owner, WriteOptions};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read {path}: {source}")]
    ReadInput {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while it was being added to the layer (expected {expected} bytes, read {actual})")]
    InputChanged {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("'{path}' is not a path that can go in an image layer: {reason}")]
    BadPath { path: String, reason: String },
    #[error("cannot read zip archive {path}: {reason}")]
    Zip { path: String, reason: String },
    #[error("cannot write layer in {dir}: {source}")]
    Write {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read layer {digest}: {reason}")]
    Corrupt { digest: String, reason: String },
    #[error("layer {digest} uses media type {media_type}, which patchfarm cannot read (gzip or plain tar only)")]
    UnsupportedMediaType { digest: String, media_type: String },
}
