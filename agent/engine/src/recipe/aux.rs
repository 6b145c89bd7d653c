//! `createAuxImage`: a Model-in-Image auxiliary image — WDT install, models, archives and
//! variables under `/auxiliary` (or `--wdtHome`) on a small base, as WIT lays it out.

use super::build::{self, fetch_base};
use super::owner::ResolvedOwner;
use super::{Engine, RecipeError};
use crate::cache::{CacheKey, CachedItem};
use crate::image::{ImageConfig, ImageRef, Platform};
use crate::layer::{writer::FileSource, LayerSpec};
use crate::transport::{PushReport, ResolvedImage};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Everything `createAuxImage` was asked for.
#[derive(Clone, Debug)]
pub struct AuxRequest {
    pub tag: ImageRef,
    pub from_image: ImageRef,
    pub wdt_models: Vec<PathBuf>,
    pub wdt_archives: Vec<PathBuf>,
    pub wdt_variables: Vec<PathBuf>,
    /// A WDT version whose zip is cached as `wdt_<version>`, or `none`.
    pub wdt_version: String,
    pub wdt_home: String,
    pub wdt_model_home: Option<String>,
    pub chown: String,
    pub platform: Platform,
    /// WIT's `--target`.
    pub target: super::Target,
}

/// A validated plan: what the one new layer holds and the config it gets.
pub struct AuxPlan {
    pub request: AuxRequest,
    pub base: ResolvedImage,
    pub owner: ResolvedOwner,
    pub spec: LayerSpec,
    pub config: ImageConfig,
    pub wdt: Option<CachedItem>,
    pub wdt_model_home: String,
}

fn absolute_dir(flag: &str, dir: &str) -> Result<String, RecipeError> {
    if !dir.starts_with('/') {
        return Err(RecipeError::input(
            format!("{flag} {dir}"),
            "must be an absolute path",
        ));
    }
    Ok(format!(
        "/{}",
        crate::layer::writer::image_path(dir)
            .map_err(|e| RecipeError::input(flag, e.to_string()))?
    ))
}

/// Validates every input (files, cache entries, base image) and plans the layer. Pushes nothing.
pub async fn plan(engine: &Engine, request: AuxRequest) -> Result<AuxPlan, RecipeError> {
    let wdt_home = absolute_dir("--wdtHome", &request.wdt_home)?;
    let wdt_model_home = match &request.wdt_model_home {
        Some(dir) => absolute_dir("--wdtModelHome", dir)?,
        None => format!("{wdt_home}/models"),
    };
    let mut names = BTreeSet::new();
    for (flag, files) in [
        ("--wdtModel", &request.wdt_models),
        ("--wdtArchive", &request.wdt_archives),
        ("--wdtVariables", &request.wdt_variables),
    ] {
        for file in files {
            super::check_input_files(flag, [file])?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !names.insert(name.clone()) {
                return Err(RecipeError::input(format!("{flag} {}", file.display()), format!("another input is also named '{name}'; both would land at {wdt_model_home}/{name}")));
            }
        }
    }
    let wdt = if request.wdt_version.eq_ignore_ascii_case("none") {
        None
    } else {
        let key = CacheKey::installer("wdt", &request.wdt_version, None)?;
        let cache = engine.cache.clone();
        let arch = request.platform.wit_arch().to_string();
        Some(
            tokio::task::spawn_blocking(move || cache.find_for_arch(&key, &arch))
                .await
                .expect("cache task")?,
        )
    };
    if wdt.is_none() && names.is_empty() {
        return Err(RecipeError::input("createAuxImage", "nothing to put in the image: give --wdtModel, --wdtArchive or --wdtVariables, or a --wdtVersion to install"));
    }

    let base = fetch_base(engine, &request.from_image, &request.platform).await?;
    let owner = build::resolve_owner(engine, &base, &request.chown).await?;
    let mut spec = LayerSpec::new();
    build::add_account_files(&mut spec, &owner)?;
    spec.add_dir(&wdt_home, 0o755, owner.owner)?;
    spec.add_dir(&wdt_model_home, 0o755, owner.owner)?;
    if let Some(item) = &wdt {
        spec.add_zip(&item.path, &wdt_home, owner.owner)?;
    }
    for file in request
        .wdt_models
        .iter()
        .chain(&request.wdt_archives)
        .chain(&request.wdt_variables)
    {
        let name = file.file_name().expect("checked above").to_string_lossy();
        spec.add_file(
            &format!("{wdt_model_home}/{name}"),
            FileSource::Path(file.clone()),
            0o644,
            owner.owner,
        )?;
    }
    request.target.apply(
        &mut spec,
        &[(wdt_home.as_str(), true), (wdt_model_home.as_str(), true)],
    )?;

    let mut config = base.config.clone();
    config.set_env("AUXILIARY_IMAGE_PATH", &wdt_home);
    config.set_env("WDT_HOME", &wdt_home);
    config.set_env("WDT_MODEL_HOME", &wdt_model_home);
    config.set_user(&owner.user);
    config.set_working_dir(&wdt_home);
    config.set_label("com.oracle.weblogic.imagetool.buildid", "patchfarm");
    config.set_label("org.patchfarm.recipe", "createAuxImage");
    if let Some(item) = &wdt {
        config.set_label("org.patchfarm.wdt.version", &request.wdt_version);
        config.set_label("org.patchfarm.wdt.digest", &item.entry.digest.to_string());
    }
    Ok(AuxPlan {
        request,
        base,
        owner,
        spec,
        config,
        wdt,
        wdt_model_home,
    })
}

impl AuxPlan {
    /// The dry-run view: base, layer contents and the resulting config, as JSON.
    pub fn describe(&self) -> serde_json::Value {
        let files: Vec<_> = self
            .spec
            .listing()
            .into_iter()
            .map(|(path, kind, mode, owner)| json!({"path": path, "type": kind.to_string(), "mode": format!("{mode:04o}"), "uid": owner.uid, "gid": owner.gid}))
            .collect();
        json!({
            "tag": self.request.tag.to_string(),
            "base": {"image": self.base.reference.to_string(), "digest": self.base.manifest_digest.to_string(), "layers": self.base.manifest.layers.len()},
            "layers": [{"createdBy": self.created_by(), "files": files}],
            "config": {
                "env": self.config.env().into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                "user": self.config.user(),
                "workingDir": self.config.working_dir(),
                "labels": self.config.labels(),
            },
            "wdt": self.wdt.as_ref().map(|w| json!({"key": w.entry.key, "sha256": w.entry.digest.to_string()})),
        })
    }

    fn created_by(&self) -> String {
        format!(
            "patchfarm createAuxImage --wdtHome {} --wdtModelHome {} --chown {}:{}",
            self.request.wdt_home, self.wdt_model_home, self.owner.user, self.owner.group
        )
    }

    /// Writes the layer and assembles the image value (pushes nothing).
    pub async fn build(&self, engine: &Engine) -> Result<build::Built, RecipeError> {
        let dir = build::BuildDir::new(engine)?;
        let layer = dir.write_layer(engine, self.spec.clone()).await?;
        let image = build::assemble(
            engine,
            &self.base,
            self.config.clone(),
            &[(layer, self.created_by())],
        );
        Ok(build::Built { image, dir })
    }

    /// Builds the layer and pushes the image under the requested tag.
    pub async fn push(&self, engine: &Engine) -> Result<PushReport, RecipeError> {
        let built = self.build(engine).await?;
        build::publish(engine, &built.image, &self.request.tag).await
    }
}

/// Plans, builds and pushes; returns the push report.
pub async fn run(engine: &Engine, request: AuxRequest) -> Result<PushReport, RecipeError> {
    plan(engine, request).await?.push(engine).await
}
