//! `rebase`: a Domain-in-Image domain moved onto a new patched base. When the source's old base
//! is known the new image is only a new manifest — the target's layers plus the source's layers
//! above the old base, reused by digest; otherwise (WIT's semantics) `$DOMAIN_HOME` is copied
//! into one new layer. Either way the domain's `SerializedSystemIni.dat` is verified byte for byte.

use super::build::{self, BuildDir, LABEL_HISTORY, LABEL_LAYERS, LABEL_TOP};
use super::{Engine, RecipeError};
use crate::image::{ImageConfig, ImageRef, Platform};
use crate::layer::{LayerSpec, Owner};
use crate::transport::push::OutBlob;
use crate::transport::{PushReport, PushedImage, ResolvedImage};
use crate::tree::{EntryKind, MergedTree, TreeQuery};
use serde::Serialize;

/// The image a domain moves onto: pushed already, or built in this process by `create`.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub digest: String,
    pub config: ImageConfig,
    pub layers: Vec<OutBlob>,
}

impl Target {
    pub fn pushed(image: &ResolvedImage) -> Self {
        Target {
            name: image.reference.to_string(),
            digest: image.manifest_digest.to_string(),
            config: image.config.clone(),
            layers: build::base_layers(image),
        }
    }

    pub fn built(name: String, image: &PushedImage) -> Result<Self, RecipeError> {
        Ok(Target {
            name,
            digest: image.manifest_digest().to_string(),
            config: ImageConfig::parse(&image.config_bytes, "the built target")?,
            layers: image.layers.clone(),
        })
    }
}

#[derive(Clone, Debug)]
pub struct RebaseRequest {
    pub source: ImageRef,
    pub tag: ImageRef,
    pub old_base: Option<ImageRef>,
    pub force: bool,
    /// Copy DOMAIN_HOME into a new layer even when the old base is known (WIT's way).
    pub copy_domain: bool,
    pub platform: Platform,
    /// `--additionalBuildCommands`: its `[final-build-commands]` run on the rebased image.
    pub build_commands: Option<super::steps::BuildCommands>,
    /// `--buildNetwork`: build steps get the network.
    pub step_network: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RebaseOutcome {
    #[serde(flatten)]
    pub report: PushReport,
    /// `fast` (manifest only) or `copy` (DOMAIN_HOME copied into a new layer).
    pub path: &'static str,
    /// How the old base was found (fast path), or what was copied (fallback).
    pub detail: String,
    /// Source layers reused by digest.
    pub reused_layers: usize,
}

/// Where the old base ends inside the source: its layer and history counts.
struct OldBase {
    layers: usize,
    history: usize,
    how: String,
}

const DOMAIN_SETTINGS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
];
const TARGET_ENV: &[&str] = &["JAVA_HOME", "ORACLE_HOME", "PATH", "LD_LIBRARY_PATH"];

fn refuse(what: impl Into<String>, reason: impl Into<String>) -> RecipeError {
    RecipeError::input(what, reason)
}

/// JAVA_HOME and ORACLE_HOME must be the same in both images (WIT's IMG-0021/0026).
fn check_homes(source: &ImageConfig, target: &ImageConfig) -> Result<(), RecipeError> {
    for var in ["JAVA_HOME", "ORACLE_HOME"] {
        let (s, t) = (source.env_var(var), target.env_var(var));
        if s != t {
            return Err(refuse(format!("rebase: {var}"), format!("differs between the source ({}) and the target ({}); the domain would not find its installation", s.as_deref().unwrap_or("unset"), t.as_deref().unwrap_or("unset"))));
        }
    }
    Ok(())
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

async fn wls_version(tree: &MergedTree, oracle_home: &str) -> Result<Option<String>, RecipeError> {
    let path = format!(
        "{}/inventory/registry.xml",
        oracle_home.trim_end_matches('/')
    );
    let files = tree.read_files(&[&path]).await?;
    Ok(files
        .values()
        .next()
        .and_then(|e| e.content.as_ref())
        .and_then(|c| crate::installer::parse_registry(&String::from_utf8_lossy(c)).0))
}

/// Finds the old base: `--oldBase`, inherited provenance labels, or the source's base annotations.
async fn find_old_base(
    engine: &Engine,
    source: &ResolvedImage,
    request: &RebaseRequest,
) -> Result<Option<OldBase>, RecipeError> {
    let source_digests: Vec<_> = source.manifest.layers.iter().map(|l| &l.digest).collect();
    let prefix_of = |base: &ResolvedImage, how: &str| -> Result<OldBase, RecipeError> {
        let digests: Vec<_> = base.manifest.layers.iter().map(|l| &l.digest).collect();
        if digests.len() >= source_digests.len() || source_digests[..digests.len()] != digests[..] {
            return Err(refuse(format!("rebase: old base {}", base.reference), format!("its {} layers are not the first layers of the source {} — it is not the image the source was built on", digests.len(), source.reference)));
        }
        Ok(OldBase {
            layers: digests.len(),
            history: base.config.history().len(),
            how: how.into(),
        })
    };
    if let Some(reference) = &request.old_base {
        let base = build::fetch_base(engine, reference, &request.platform).await?;
        return prefix_of(&base, &format!("--oldBase {reference}")).map(Some);
    }
    // Inherited labels come first: tools that build on an image copy its manifest annotations
    // too, and those name the base's own base, one level too deep.
    let labels = source.config.labels();
    if let (Some(layers), Some(history), Some(top)) = (
        labels.get(LABEL_LAYERS),
        labels.get(LABEL_HISTORY),
        labels.get(LABEL_TOP),
    ) {
        let (layers, history): (usize, usize) =
            (layers.parse().unwrap_or(0), history.parse().unwrap_or(0));
        let diff_ids = source.config.diff_ids();
        // Labels describing the source itself (all its layers) say nothing about a base below it.
        if layers > 0 && layers < diff_ids.len() && diff_ids.get(layers - 1) == Some(top) {
            return Ok(Some(OldBase {
                layers,
                history,
                how: format!("patchfarm provenance labels ({layers} base layers, top {top})"),
            }));
        }
    }
    let annotations = &source.manifest.annotations;
    if let (Some(name), Some(digest)) = (
        annotations.get(build::ANNOTATION_BASE_NAME),
        annotations.get(build::ANNOTATION_BASE_DIGEST),
    ) {
        let by_digest = match name.parse::<ImageRef>() {
            Ok(ImageRef::Registry(r)) => digest
                .parse()
                .ok()
                .map(|d| ImageRef::Registry(r.with_digest(d))),
            Ok(layout) => Some(layout),
            Err(_) => None,
        };
        if let Some(reference) = by_digest {
            match build::fetch_base(engine, &reference, &request.platform).await {
                Ok(base) => {
                    return prefix_of(
                        &base,
                        &format!("the source's base annotation {name}@{digest}"),
                    )
                    .map(Some)
                }
                Err(e) => {
                    tracing::warn!(base = %name, error = %e, "the source names its base, but it cannot be fetched; trying provenance labels")
                }
            }
        }
    }
    Ok(None)
}

/// The target's config carrying the source's domain settings, with `layers` of the source on top.
fn domain_config(
    engine: &Engine,
    target: &Target,
    source: &ImageConfig,
    source_diff_ids: &[String],
    source_history: &[serde_json::Value],
) -> ImageConfig {
    let mut config = target.config.clone();
    for (k, v) in source.env() {
        if !TARGET_ENV.contains(&k.as_str()) {
            config.set_env(&k, &v);
        }
    }
    if let Some(dir) = source.working_dir() {
        config.set_working_dir(&dir);
    }
    if let Some(user) = source.user() {
        config.set_user(&user);
    }
    for key in DOMAIN_SETTINGS {
        if let Some(v) = source.runtime_value(key) {
            config.set_runtime_value(key, v.clone());
        }
    }
    for (k, v) in source.labels() {
        if !k.starts_with("org.patchfarm.") && !k.starts_with("com.oracle.weblogic.imagetool.") {
            config.set_label(&k, &v);
        }
    }
    config.set_label("org.patchfarm.recipe", "rebase");
    let mut diff_ids = target.config.diff_ids();
    diff_ids.extend_from_slice(source_diff_ids);
    let mut history = target.config.history();
    history.extend_from_slice(source_history);
    config.set_layers(&diff_ids, history);
    config.set_created(&engine.created());
    config
}

/// The source's DOMAIN_HOME must be the domain's own directory holding its
/// `security/SerializedSystemIni.dat` (the secret every encrypted value depends on): a link, a
/// missing directory or a home without it would move an empty or broken domain.
async fn check_domain_home(tree: &MergedTree, home: &str) -> Result<(), RecipeError> {
    let home = home.trim_end_matches('/');
    let ini = format!("{home}/security/SerializedSystemIni.dat");
    let found = tree
        .lookup(&TreeQuery::default().stat(home).stat(&ini))
        .await?;
    let what = || format!("rebase: DOMAIN_HOME {home}");
    match found.get(home).map(|e| &e.kind) {
        Some(EntryKind::Dir) => {}
        Some(EntryKind::Symlink(target)) => {
            return Err(refuse(
                what(),
                format!("is a symbolic link (to {target}) in the source image, not the domain's directory; nothing was pushed"),
            ))
        }
        Some(_) => return Err(refuse(what(), "is not a directory in the source image")),
        None => return Err(refuse(what(), "does not exist in the source image")),
    }
    match found.get(&ini).map(|e| &e.kind) {
        Some(EntryKind::File | EntryKind::Hardlink(_)) => Ok(()),
        _ => Err(refuse(
            what(),
            "holds no regular security/SerializedSystemIni.dat: not a WebLogic domain, nothing was pushed",
        )),
    }
}

/// The domain's files copied from the source's merged layers into one layer owned by `owner`.
async fn copy_domain(
    tree: &MergedTree,
    dirs: &[String],
    owner: Owner,
) -> Result<(LayerSpec, usize), RecipeError> {
    let query = dirs
        .iter()
        .fold(TreeQuery::default(), |q, d| q.stat(d).list(d));
    let listing = tree.lookup(&query).await?;
    let mut spec = LayerSpec::new();
    let mut files = Vec::new();
    for dir in dirs {
        let top = listing.get(dir).ok_or_else(|| {
            refuse(
                format!("rebase: {dir}"),
                "does not exist in the source image",
            )
        })?;
        spec.add_dir(dir, top.mode & 0o7777, owner)?;
        for entry in listing
            .listed
            .get(dir.trim_start_matches('/'))
            .into_iter()
            .flatten()
        {
            match &entry.kind {
                EntryKind::Dir => spec.add_dir(&entry.path, entry.mode & 0o7777, owner)?,
                EntryKind::Symlink(target) => spec.add_symlink(&entry.path, target, owner)?,
                EntryKind::File | EntryKind::Hardlink(_) => {
                    files.push((entry.path.clone(), entry.mode & 0o7777))
                }
                EntryKind::Other => {}
            }
        }
    }
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let contents = tree.read_files(&paths).await?;
    for (path, mode) in &files {
        let content = contents
            .get(path)
            .and_then(|e| e.content.clone())
            .ok_or_else(|| {
                refuse(
                    format!("rebase: /{path}"),
                    "could not be read from the source image",
                )
            })?;
        spec.add_bytes(path, content, *mode, owner)?;
    }
    Ok((spec, files.len()))
}

/// Rebases `source` onto `target` and pushes the result under the request's tag.
pub async fn run(
    engine: &Engine,
    request: &RebaseRequest,
    target: Target,
) -> Result<RebaseOutcome, RecipeError> {
    if let Some(commands) = &request.build_commands {
        // WIT's rebase Dockerfile runs [final-build-commands] on the rebased image; the other
        // sections belong to building the target, which create does.
        if !commands.packages.is_empty() {
            return Err(RecipeError::input(
                commands.at(commands.packages_line),
                "[package-manager-packages]: rebase installs no OS packages (create does, on the base image)",
            ));
        }
        commands.only_stages(&[], |name| format!("[{name}]: rebase runs only [final-build-commands]; build the target with create --additionalBuildCommands and give it as --targetImage"))?;
    }
    let source = build::fetch_base(engine, &request.source, &request.platform).await?;
    tracing::debug!(stage = "source fetched");
    check_homes(&source.config, &target.config)?;
    let source_tree = build::tree_of(engine, &source);
    let target_tree = MergedTree::over(target.layers.clone(), engine.cache.layers_dir());
    if let Some(home) = target.config.env_var("ORACLE_HOME") {
        let (from, to) = (
            wls_version(&source_tree, &home).await?,
            wls_version(&target_tree, &home).await?,
        );
        if let (Some(from), Some(to)) = (&from, &to) {
            if major(from) != major(to) && !request.force {
                return Err(refuse("rebase", format!("the target's WebLogic {to} is a different major version than the source's {from}; pass --force to rebase anyway")));
            }
        }
    }
    tracing::debug!(stage = "versions checked");
    // Both paths need a domain to move (WIT's IMG-0025); an empty value means model-only.
    let domain_home = source.config.env_var("DOMAIN_HOME").ok_or_else(|| {
        refuse(format!("rebase: --sourceImage {}", request.source), "the source image has no DOMAIN_HOME in its environment, so there is no domain to move (WIT's IMG-0025)")
    })?;

    if !domain_home.is_empty() {
        check_domain_home(&source_tree, &domain_home).await?;
    }

    let dir = BuildDir::new(engine)?;
    let old_base = if request.copy_domain {
        None
    } else {
        find_old_base(engine, &source, request).await?
    };
    let (mut image, path, detail, reused) = match old_base {
        Some(old) => {
            let upper: Vec<OutBlob> = build::base_layers(&source).split_off(old.layers);
            let reused = upper.len();
            let diff_ids = source.config.diff_ids();
            let history = source.config.history();
            let config = domain_config(
                engine,
                &target,
                &source.config,
                &diff_ids[old.layers..],
                history.get(old.history..).unwrap_or(&[]),
            );
            let mut layers = target.layers.clone();
            layers.extend(upper);
            (
                build::image_value(engine, layers, config, &target.name, &target.digest),
                "fast",
                old.how,
                reused,
            )
        }
        None => {
            let dirs: Vec<String> = if domain_home.is_empty() {
                // Model-only source: the WDT installation and models are what moves.
                ["WDT_HOME", "WDT_MODEL_HOME"]
                    .iter()
                    .filter_map(|v| source.config.env_var(v))
                    .filter(|d| !d.is_empty())
                    .collect()
            } else {
                vec![domain_home.clone()]
            };
            let home = target.config.env_var("ORACLE_HOME").unwrap_or_default();
            let owner_entry = target_tree
                .lookup(&TreeQuery::default().stat(&home))
                .await?;
            let owner = owner_entry
                .get(&home)
                .map(|e| Owner {
                    uid: e.uid,
                    gid: e.gid,
                })
                .unwrap_or_default();
            let (spec, files) = copy_domain(&source_tree, &dirs, owner).await?;
            let layer = dir.write_layer(engine, spec).await?;
            let created = engine.created();
            let mut config = domain_config(engine, &target, &source.config, &[], &[]);
            config.append_layer(
                &layer.diff_id,
                &created,
                &format!("patchfarm rebase: copy {}", dirs.join(", ")),
                "patchfarm",
            );
            let mut layers = target.layers.clone();
            layers.push(build::local_blob(&layer));
            (
                build::image_value(engine, layers, config, &target.name, &target.digest),
                "copy",
                format!("{files} files from {}", dirs.join(", ")),
                0,
            )
        }
    };

    tracing::debug!(stage = "image assembled", path);
    // Verify, don't assume: the rebased image must hold the source's SerializedSystemIni.dat.
    if let Some(home) = Some(domain_home).filter(|d| !d.is_empty()) {
        let ini = format!(
            "{}/security/SerializedSystemIni.dat",
            home.trim_end_matches('/')
        );
        let original = source_tree.read_files(&[&ini]).await?;
        // check_domain_home found it: a source without it was refused before anything was built.
        if let Some(original) = original.values().next().and_then(|e| e.content.clone()) {
            let rebased = MergedTree::over(image.layers.clone(), engine.cache.layers_dir())
                .read_files(&[&ini])
                .await?;
            if rebased.values().next().and_then(|e| e.content.as_ref()) != Some(&original) {
                return Err(refuse(
                    format!("rebase: {ini}"),
                    "differs between the source and the rebased image; nothing was pushed",
                ));
            }
        }
    }
    tracing::debug!(stage = "verified");
    if let Some(commands) = request
        .build_commands
        .as_ref()
        .filter(|c| !c.final_commands.is_empty())
    {
        let (layers, config) =
            super::steps::final_layer(engine, &dir, image, commands, request.step_network).await?;
        image = build::image_value(engine, layers, config, &target.name, &target.digest);
    }
    let report = build::publish(engine, &image, &request.tag).await?;
    tracing::debug!(stage = "pushed");
    drop(dir);
    Ok(RebaseOutcome {
        report,
        path,
        detail,
        reused_layers: reused,
    })
}
