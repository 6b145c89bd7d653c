//! Recipes: the verbs (createAuxImage, inspect, …) composed from images, layers, the tree,
//! the cache and the transports. Each recipe plans first (validating every input), then builds.

pub mod assemble;
pub mod aux;
pub mod aux_refresh;
pub mod build;
pub mod commands;
pub mod copy;
pub mod create;
pub mod domain;
pub mod inspect;
pub mod opatch_run;
pub mod oui;
pub mod owner;
pub mod packages;
pub mod patching;
pub mod rebase;
pub mod sbom;
pub mod sections;
pub mod step_layer;
pub mod steps;
pub mod trees;
pub mod update;

use crate::cache::{Cache, CacheError};
use crate::image::config::ConfigError;
use crate::layer::LayerError;
use crate::transport::{Registries, TransportError};
use crate::tree::TreeError;

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{what}: {reason}")]
    Input { what: String, reason: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Key(#[from] crate::cache::KeyError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("reading the image's files: {0}")]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Opatch(#[from] crate::opatch::OpatchError),
    #[error(transparent)]
    Installer(#[from] crate::installer::InstallerError),
    #[error("signing: {0}")]
    Sign(#[from] crate::sign::attach::AttachError),
}

impl RecipeError {
    pub fn input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        RecipeError::Input {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// WIT's `--target`: the environment the image is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    #[default]
    Default,
    /// Files the server writes get group permissions equal to the owner's, and the default
    /// group is root: OpenShift runs containers as an arbitrary uid in group root.
    OpenShift,
}

impl Target {
    /// WIT's spelling, `Default` or `OpenShift`, matched ignoring case.
    pub fn parse(text: &str) -> Result<Target, String> {
        match text.to_ascii_lowercase().as_str() {
            "default" | "" => Ok(Target::Default),
            "openshift" => Ok(Target::OpenShift),
            _ => Err(format!(
                "unknown target {text:?}; WIT's targets are Default and OpenShift"
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Target::Default => "Default",
            Target::OpenShift => "OpenShift",
        }
    }

    /// The `--chown` to use when none is given: `oracle:root` for OpenShift, as WIT.
    pub fn default_chown(&self) -> &'static str {
        match self {
            Target::Default => "oracle:oracle",
            Target::OpenShift => "oracle:root",
        }
    }

    /// For OpenShift, `chmod g=u` where WIT does it: each `(path, recursive)` of `paths`
    /// present in `spec`.
    pub(crate) fn apply(
        &self,
        spec: &mut crate::layer::LayerSpec,
        paths: &[(&str, bool)],
    ) -> Result<(), RecipeError> {
        if *self == Target::OpenShift {
            for (path, recursive) in paths {
                spec.group_like_owner(path, *recursive)?;
            }
        }
        Ok(())
    }
}

/// Every file named by `flag` must be a readable regular file; the error names flag and file.
pub(crate) fn check_input_files<'a>(
    flag: &str,
    files: impl IntoIterator<Item = &'a std::path::PathBuf>,
) -> Result<(), RecipeError> {
    for path in files {
        let what = || format!("{flag} {}", path.display());
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(RecipeError::input(what(), "is not a regular file")),
            Err(e) => return Err(RecipeError::input(what(), e.to_string())),
        }
    }
    Ok(())
}

/// What every recipe needs: the cache, registry access, and the timestamp images are stamped with.
pub struct Engine {
    pub cache: Cache,
    pub registries: Registries,
    /// Seconds since the epoch for every mtime and `created` field: `SOURCE_DATE_EPOCH` or 0.
    pub source_date_epoch: u64,
    /// How the layers this engine writes are compressed (`--compression`; gzip by default).
    pub compression: crate::layer::Compression,
    /// Why this engine runs no build steps though the machine could (an agent started with
    /// `--no-build-steps`: the farm sends it no job that needs them, and a stale one fails).
    pub steps_refused: Option<String>,
    /// Why build steps never get the network here, whatever a job asks (an agent started with
    /// `--no-step-network`).
    pub step_network_refused: Option<String>,
    /// Signs every image pushed to a registry (`--sign-key`): the signature is attached in
    /// sigstore's format (`crate::sign`).
    pub signer: Option<std::sync::Arc<crate::sign::Signer>>,
    /// Who builds here, as provenance names the builder: the agent's name, or `cli@HOST`.
    pub builder: String,
    /// The image a job builds on must be signed by one of these keys (none: any image).
    pub base_keys: Vec<crate::sign::PublicKey>,
}

impl Engine {
    /// Reads `SOURCE_DATE_EPOCH` (unset or empty → 0); a malformed value is an error naming it.
    pub fn source_date_epoch_from_env() -> Result<u64, RecipeError> {
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                RecipeError::input(
                    "SOURCE_DATE_EPOCH",
                    format!("'{v}' is not a number of seconds"),
                )
            }),
            _ => Ok(0),
        }
    }

    /// A sandbox for build steps over `lowers` in `work`, unless this engine refuses steps.
    pub fn sandbox(
        &self,
        lowers: &[std::path::PathBuf],
        work: &std::path::Path,
    ) -> Result<patchfarm_executor::Sandbox, patchfarm_executor::ExecError> {
        if let Some(why) = &self.steps_refused {
            return Err(patchfarm_executor::ExecError::Unavailable(why.clone()));
        }
        patchfarm_executor::Sandbox::new(lowers, work)
    }

    /// RFC 3339 form of [`Engine::source_date_epoch`] for `created` fields.
    pub fn created(&self) -> String {
        rfc3339(self.source_date_epoch)
    }
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_timestamps() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn an_engine_that_refuses_steps_gives_no_sandbox_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let engine = super::Engine {
            cache: crate::cache::Cache::new(dir.path().join("cache")),
            registries: Default::default(),
            source_date_epoch: 0,
            compression: Default::default(),
            steps_refused: Some("turned off with --no-build-steps".into()),
            step_network_refused: None,
            signer: None,
            builder: "test".into(),
            base_keys: Vec::new(),
        };
        let refused = engine
            .sandbox(&[dir.path().to_path_buf()], &dir.path().join("work"))
            .err()
            .expect("refused");
        assert_eq!(
            refused.to_string(),
            "build steps cannot run here: turned off with --no-build-steps"
        );
        assert!(!dir.path().join("work").exists(), "nothing was made");
    }
}
