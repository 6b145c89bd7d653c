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

/// How patches go into an Oracle Home (`--opatchMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OpatchMode {
    /// Natively when every action of every patch is one the engine implements, else with the
    /// image's own OPatch.
    #[default]
    Auto,
    /// Natively only: a patch with any other action is refused, naming it.
    Native,
    /// With the image's own `opatch napply`, as WIT does.
    Opatch,
}

impl std::str::FromStr for OpatchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(OpatchMode::Auto),
            "native" => Ok(OpatchMode::Native),
            "opatch" => Ok(OpatchMode::Opatch),
            _ => Err(format!("{s:?}: expected auto, native or opatch")),
        }
    }
}

impl std::fmt::Display for OpatchMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpatchMode::Auto => "auto",
            OpatchMode::Native => "native",
            OpatchMode::Opatch => "opatch",
        })
    }
}

impl OpatchMode {
    /// Whether `set` is applied by the image's OPatch (a build step) rather than natively; a
    /// patch the native engine cannot apply is refused in `Native` mode, naming its action.
    pub fn uses_opatch(self, set: &PatchSet) -> Result<bool, OpatchError> {
        if set.patches.is_empty() {
            return Ok(false);
        }
        let needs = set
            .patches
            .iter()
            .find_map(|p| p.opatch_only.first().map(|action| (p, action)));
        match (self, needs) {
            (OpatchMode::Opatch, _) => Ok(true),
            (OpatchMode::Auto, needs) => Ok(needs.is_some()),
            (OpatchMode::Native, None) => Ok(false),
            (OpatchMode::Native, Some((patch, action))) => Err(OpatchError::UnsupportedAction {
                patch: patch.key.to_string(),
                action: action.clone(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpatchError {
    #[error("patch {patch}: {reason}")]
    BadPatch { patch: String, reason: String },
    #[error("patch {patch}: action <{action}> is not supported natively (only <copy> and <jar>); --opatchMode auto or opatch applies it with the image's own OPatch")]
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
