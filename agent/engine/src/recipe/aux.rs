//! `createAuxImage`: a Model-in-Image auxiliary image — WDT install, models, archives and
//! variables under `/auxiliary` (or `--wdtHome`) on a small base, as WIT lays it out, with the
//! two sections of `--additionalBuildCommands` WIT's auxiliary image runs: `[initial-build-commands]`
//! as root on the base first, `[final-build-commands]` last as the image's user in `--wdtHome`.

use super::build::{self, fetch_base};
use super::owner::ResolvedOwner;
use super::steps::{self, BuildCommands};
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
    /// `--additionalBuildCommands` with its `--additionalBuildFiles`.
    pub build_commands: Option<BuildCommands>,
    /// `--buildNetwork`: build steps get the network.
    pub step_network: bool,
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
    if let Some(commands) = &request.build_commands {
        // WIT's auxiliary image has no JDK, Oracle Home or WDT command stage, nor OS packages.
        if !commands.packages.is_empty() {
            return Err(RecipeError::input(
                commands.at(commands.packages_line),
                "[package-manager-packages]: createAuxImage installs no OS packages (create does, on the base image)",
            ));
        }
        commands.only_stages(&[steps::INITIAL], |name| format!("[{name}]: createAuxImage runs only [initial-build-commands] and [final-build-commands], as WIT's auxiliary image does; create runs this section"))?;
    }
    let wdt = if request.wdt_version.eq_ignore_ascii_case("none") {
        None
    } else {
        let key = CacheKey::installer("wdt", &request.wdt_version, None)?;
        let cache = engine.cache.clone();
        let arch = request.platform.wit_arch().to_string();
        Some(
            crate::spawn_blocking(move || cache.find_for_arch(&key, &arch))
                .await
                .expect("cache task")?,
        )
    };
    if wdt.is_none() && names.is_empty() {
        return Err(RecipeError::input("createAuxImage", "nothing to put in the image: give --wdtModel, --wdtArchive or --wdtVariables, or a --wdtVersion to install"));
    }

    build::check_signed_base(engine, "--fromImage", &request.from_image).await?;
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
    let wdt_labels = wdt
        .as_ref()
        .map(|item| (request.wdt_version.clone(), item.entry.digest.to_string()));
    finish_config(
        &mut config,
        &wdt_home,
        &wdt_model_home,
        &owner.user,
        wdt_labels,
    );
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

/// What WIT's final stage sets, over whatever the base (and the initial section) set.
fn finish_config(
    config: &mut ImageConfig,
    wdt_home: &str,
    wdt_model_home: &str,
    user: &str,
    wdt: Option<(String, String)>,
) {
    config.set_env("AUXILIARY_IMAGE_PATH", wdt_home);
    config.set_env("WDT_HOME", wdt_home);
    config.set_env("WDT_MODEL_HOME", wdt_model_home);
    config.set_user(user);
    config.set_working_dir(wdt_home);
    config.set_label("com.oracle.weblogic.imagetool.buildid", "patchfarm");
    config.set_label("org.patchfarm.recipe", "createAuxImage");
    if let Some((version, digest)) = wdt {
        config.set_label("org.patchfarm.wdt.version", &version);
        config.set_label("org.patchfarm.wdt.digest", &digest);
    }
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
            "buildCommands": self.request.build_commands.as_ref().map(|c| {
                let runs: Vec<&str> = [
                    (!c.stage(steps::INITIAL).is_empty()).then_some(steps::INITIAL),
                    (!c.final_commands.is_empty()).then_some(steps::FINAL),
                ]
                .into_iter()
                .flatten()
                .collect();
                json!({"file": c.file.display().to_string(), "runs": runs})
            }),
        })
    }

    fn created_by(&self) -> String {
        format!(
            "patchfarm createAuxImage --wdtHome {} --wdtModelHome {} --chown {}:{}",
            self.request.wdt_home, self.wdt_model_home, self.owner.user, self.owner.group
        )
    }

    /// Runs `[initial-build-commands]` on the base, writes the layer, runs
    /// `[final-build-commands]` on top and assembles the image value (pushes nothing).
    pub async fn build(&self, engine: &Engine) -> Result<build::Built, RecipeError> {
        let dir = build::BuildDir::new(engine)?;
        let mut layers = Vec::new();
        let mut config = self.config.clone();
        let commands = self.request.build_commands.as_ref();
        if let Some(commands) = commands.filter(|c| !c.stage(steps::INITIAL).is_empty()) {
            // WIT's os_update stage: as root on the base; the final stage is built from it, so
            // its ENV and LABEL stay unless the final stage sets the same.
            let mut on_base = self.base.config.clone();
            on_base.set_user("0:0");
            on_base.set_working_dir("/");
            let (layer, after) = steps::run_section(
                engine,
                &dir,
                &build::base_layers(&self.base),
                on_base,
                commands,
                (steps::INITIAL, commands.stage(steps::INITIAL)),
                self.request.step_network,
                None,
            )
            .await?;
            config = self.base.config.clone();
            for (name, value) in after.env() {
                config.set_env(&name, &value);
            }
            for (key, value) in after.labels() {
                config.set_label(&key, &value);
            }
            let wdt = self.wdt.as_ref().map(|item| {
                (
                    self.request.wdt_version.clone(),
                    item.entry.digest.to_string(),
                )
            });
            finish_config(
                &mut config,
                &self.request.wdt_home,
                &self.wdt_model_home,
                &self.owner.user,
                wdt,
            );
            if let Some(layer) = layer {
                let by = format!(
                    "patchfarm: additionalBuildCommands [{}] {}",
                    steps::INITIAL,
                    commands.file.display()
                );
                layers.push((layer, by));
            }
        }
        let layer = dir.write_layer(engine, self.spec.clone()).await?;
        layers.push((layer, self.created_by()));
        let image = build::assemble(engine, &self.base, config, &layers);
        let image = match commands.filter(|c| !c.final_commands.is_empty()) {
            Some(commands) => {
                steps::on_top(
                    engine,
                    &dir,
                    &self.base,
                    layers,
                    image,
                    commands,
                    self.request.step_network,
                )
                .await?
            }
            None => image,
        };
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
