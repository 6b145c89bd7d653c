//! OPatch one-off patches applied natively: parse a patch zip's inventory and actions, check a
//! set of patches against an Oracle Home (versions, conflicts, overlays, confinement) before
//! anything is built, then apply `copy` and `jar` actions and record them like OPatch does.

pub mod apply;
pub mod catalog;
pub mod patch;
pub mod plan;
pub mod xml;

pub use apply::{apply, Changes, HomeFiles};
pub use catalog::{Catalog, CatalogChoice};
pub use patch::Patch;
pub use plan::{check, PatchSet};

#[derive(Debug, thiserror::Error)]
pub enum OpatchError {
    #[error("patch {patch}: {reason}")]
    BadPatch { patch: String, reason: String },
    #[error("patch {patch}: action <{action}> is not supported natively (only <copy> and <jar>)")]
    UnsupportedAction { patch: String, action: String },
    #[error("patch {patch}: target '{path}' is refused: {reason}")]
    Escapes {
        patch: String,
        path: String,
        reason: String,
    },
    #[error("patches {first} and {second} conflict: both change {file} and neither is an overlay of the other")]
    Conflict {
        first: String,
        second: String,
        file: String,
    },
    #[error("patch {patch} is for version {patch_version} but the Oracle Home is version {home_version}")]
    VersionMismatch {
        patch: String,
        patch_version: String,
        home_version: String,
    },
    #[error("patch {patch} is an overlay on {base}, which is neither in this build nor already in the image")]
    MissingBase { patch: String, base: String },
    #[error("patch {patch}: {target} is not in the Oracle Home")]
    MissingTarget { patch: String, target: String },
    #[error("patch catalog {path}: {reason}")]
    Catalog { path: String, reason: String },
    #[error("reading {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
