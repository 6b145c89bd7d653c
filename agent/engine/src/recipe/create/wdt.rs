//! WDT's inputs to `create` and `update`: the model, archive and variables files, which WDT,
//! where it and the models go, and the domain WDT builds from them (Domain in Image).

use super::*;

/// WDT's inputs: placed in the image (Model in Image), or run by WDT to build the domain in it
/// (Domain in Image, `domain`).
#[derive(Clone, Debug, Default)]
pub struct WdtRequest {
    pub models: Vec<PathBuf>,
    pub archives: Vec<PathBuf>,
    pub variables: Vec<PathBuf>,
    /// `wdt_<version>` from the cache, or `none`.
    pub version: String,
    /// WDT builds the domain in the image; `None` with `--wdtModelOnly`.
    pub domain: Option<crate::recipe::domain::DomainBuild>,
    /// `--wdtHome` (default `/u01/wdt`).
    pub home: Option<String>,
    /// `--wdtModelHome` (default `<wdtHome>/models`).
    pub model_home: Option<String>,
}

impl WdtRequest {
    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.archives.is_empty() && self.variables.is_empty()
    }

    /// Where WDT is unzipped.
    pub fn home(&self) -> &str {
        self.home
            .as_deref()
            .map(|h| h.trim_end_matches('/'))
            .filter(|h| !h.is_empty())
            .unwrap_or(WDT_HOME)
    }

    /// Where the models, archives and variables go.
    pub fn model_home(&self) -> String {
        match self.model_home.as_deref().map(|h| h.trim_end_matches('/')) {
            Some(home) if !home.is_empty() => home.to_string(),
            _ => format!("{}/models", self.home()),
        }
    }

    /// WDT's homes, where `--target OpenShift` gives the group the owner's permissions.
    pub fn homes(&self) -> [(String, bool); 2] {
        [(self.home().to_string(), true), (self.model_home(), true)]
    }

    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.models
            .iter()
            .chain(&self.archives)
            .chain(&self.variables)
    }

    /// The domain WDT builds, when it runs (files given without `--wdtModelOnly`).
    pub fn domain_build(&self) -> Option<&crate::recipe::domain::DomainBuild> {
        self.domain.as_ref().filter(|_| !self.is_empty())
    }

    /// Every model, archive and variables file must be a readable regular file; a domain
    /// build needs WDT itself.
    pub fn check_files(&self) -> Result<(), RecipeError> {
        if let Some(domain) = self.domain_build() {
            domain.check()?;
            if self.version.eq_ignore_ascii_case("none") {
                return Err(RecipeError::input(
                    "--wdtVersion none",
                    "WDT builds the domain here (no --wdtModelOnly), so it must be installed: name a cached WDT (cache key wdt_VERSION)",
                ));
            }
        }
        for (option, home) in [
            ("--wdtHome", self.home()),
            ("--wdtModelHome", &self.model_home()),
        ] {
            if !home.starts_with('/') {
                return Err(RecipeError::input(
                    format!("{option} {home}"),
                    "must be an absolute path in the image",
                ));
            }
        }
        crate::recipe::check_input_files("--wdtModel", &self.models)?;
        crate::recipe::check_input_files("--wdtArchive", &self.archives)?;
        crate::recipe::check_input_files("--wdtVariables", &self.variables)
    }

    /// The cached WDT installer, when models are placed and a version is asked for.
    pub async fn installer(
        &self,
        engine: &Engine,
        arch: &str,
    ) -> Result<Option<CachedItem>, RecipeError> {
        if self.is_empty() || self.version.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        Ok(Some(
            cached(
                engine,
                CacheKey::installer("wdt", &self.version, None)?,
                arch,
            )
            .await?,
        ))
    }

    /// Adds WDT's home (the installer unzipped) and the model files under its model home.
    pub fn add_to(
        &self,
        spec: &mut LayerSpec,
        installer: Option<&CachedItem>,
        owner: Owner,
    ) -> Result<(), RecipeError> {
        spec.add_dir(self.home(), 0o750, owner)?;
        spec.add_dir(&self.model_home(), 0o750, owner)?;
        if let Some(wdt) = installer {
            spec.add_zip(&wdt.path, self.home(), owner)?;
        }
        self.add_files(spec, owner)
    }

    /// Adds the model, archive and variables files under the model home.
    pub fn add_files(&self, spec: &mut LayerSpec, owner: Owner) -> Result<(), RecipeError> {
        for file in self.files() {
            let name = file.file_name().expect("checked file").to_string_lossy();
            spec.add_file(
                &format!("{}/{name}", self.model_home()),
                FileSource::Path(file.clone()),
                0o640,
                owner,
            )?;
        }
        Ok(())
    }
}
