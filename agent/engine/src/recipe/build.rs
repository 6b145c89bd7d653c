//! Shared steps of every building recipe: fetch the base, read its account files, write new
//! layers off the async threads, assemble config + manifest, push.

use super::owner::{self, ResolvedOwner};
use super::{Engine, RecipeError};
use crate::image::manifest::Descriptor;
use crate::image::{media, ImageConfig, ImageRef, Manifest, Platform};
use crate::layer::{LayerBlob, LayerSpec, WriteOptions};
use crate::transport::push::{self, BlobLocations, BlobOrigin, OutBlob};
use crate::transport::{PushReport, PushedImage, ResolvedImage};
use crate::tree::MergedTree;
use std::collections::BTreeMap;

pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Fetches the base image for `platform`.
pub async fn fetch_base(
    engine: &Engine,
    reference: &ImageRef,
    platform: &Platform,
) -> Result<ResolvedImage, RecipeError> {
    Ok(ResolvedImage::fetch(reference, platform, &engine.registries).await?)
}

/// The merged file view of `image`, downloading layers into the cache as needed.
pub fn tree_of(engine: &Engine, image: &ResolvedImage) -> MergedTree {
    let mut tree = MergedTree::new(
        image.manifest.layers.clone(),
        image.source.clone(),
        engine.cache.layers_dir(),
    );
    // patchfarm's JDK layer holds the JDK home, the account files and the directories above
    // them, nothing else (see create's layer specs): questions about the Oracle Home skip it, so
    // `update` of an image this agent never pulled downloads no JDK.
    let history = image.config.history();
    let with_layers = history
        .iter()
        .filter(|h| h.get("empty_layer").and_then(|e| e.as_bool()) != Some(true));
    if with_layers.clone().count() == image.manifest.layers.len() {
        for (index, entry) in with_layers.enumerate() {
            let created_by = entry
                .get("created_by")
                .and_then(|c| c.as_str())
                .unwrap_or("");
            if let Some(home) = created_by
                .strip_prefix(JDK_LAYER_HISTORY)
                .and_then(|rest| rest.rsplit_once(" at "))
                .map(|(_, home)| home)
                .filter(|home| home.starts_with('/') && !home.contains(char::is_whitespace))
            {
                tree = tree.confine(index, &[home, "/etc/passwd", "/etc/group"]);
            }
        }
    }
    tree
}

/// How create's JDK layer starts its history entry (`patchfarm create: JDK 17 at /u01/jdk`).
pub const JDK_LAYER_HISTORY: &str = "patchfarm create: JDK ";

/// Resolves `--chown` against the base's `/etc/passwd` and `/etc/group`.
pub async fn resolve_owner(
    engine: &Engine,
    base: &ResolvedImage,
    chown: &str,
) -> Result<ResolvedOwner, RecipeError> {
    let (user, group) = owner::parse_chown(chown)?;
    if user.parse::<u64>().is_ok() && group.parse::<u64>().is_ok() {
        return Ok(owner::resolve(&user, &group, None, None));
    }
    let files = tree_of(engine, base)
        .read_files(&["/etc/passwd", "/etc/group"])
        .await?;
    let text = |p: &str| {
        files
            .get(p)
            .and_then(|e| e.content.as_ref())
            .map(|c| String::from_utf8_lossy(c).into_owned())
    };
    let (passwd, groups) = (text("etc/passwd"), text("etc/group"));
    Ok(owner::resolve(
        &user,
        &group,
        passwd.as_deref(),
        groups.as_deref(),
    ))
}

/// Adds the account files to `spec` when `owner` needed new entries.
pub fn add_account_files(spec: &mut LayerSpec, owner: &ResolvedOwner) -> Result<(), RecipeError> {
    if let Some(passwd) = &owner.passwd {
        spec.add_bytes(
            "/etc/passwd",
            passwd.clone(),
            0o644,
            crate::layer::Owner::ROOT,
        )?;
    }
    if let Some(group) = &owner.group_file {
        spec.add_bytes(
            "/etc/group",
            group.clone(),
            0o644,
            crate::layer::Owner::ROOT,
        )?;
    }
    Ok(())
}

/// A build's private directory for new layers under the cache's `build/`, removed on drop:
/// concurrent builds never touch each other's files and nothing piles up.
pub struct BuildDir {
    dir: tempfile::TempDir,
    /// Its layers as directories, for the build steps that run on them.
    trees: super::trees::LayerTrees,
}

impl BuildDir {
    pub fn new(engine: &Engine) -> Result<Self, RecipeError> {
        let root = engine.cache.build_dir();
        let fail = |e: std::io::Error| crate::layer::LayerError::Write {
            dir: root.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(&root).map_err(fail)?;
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&root)
            .map_err(fail)?;
        let trees = super::trees::LayerTrees::new(dir.path());
        Ok(BuildDir { dir, trees })
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The build's layers as directories: the lower directories of its steps.
    pub fn trees(&self) -> &super::trees::LayerTrees {
        &self.trees
    }

    /// Writes `spec` as a layer here (blocking work off the runtime).
    pub async fn write_layer(
        &self,
        engine: &Engine,
        spec: LayerSpec,
    ) -> Result<LayerBlob, RecipeError> {
        let dir = self.path().join("layers");
        let options = WriteOptions {
            mtime: engine.source_date_epoch,
            compression: engine.compression,
        };
        let (blob, spec) =
            crate::spawn_blocking(move || spec.write(&dir, options).map(|blob| (blob, spec)))
                .await
                .expect("layer writer task")?;
        self.trees.wrote(&blob, spec);
        Ok(blob)
    }

    /// As [`BuildDir::write_layer`], but taken from the built-layer cache when the same layer
    /// was built before: `trees` name the host directories the spec's files come from by the
    /// identity of their content (`LayerSpec::fingerprint`). `what` names it in the log.
    pub async fn write_layer_cached(
        &self,
        engine: &Engine,
        spec: LayerSpec,
        trees: &[(&std::path::Path, &str)],
        what: &str,
    ) -> Result<LayerBlob, RecipeError> {
        let options = WriteOptions {
            mtime: engine.source_date_epoch,
            compression: engine.compression,
        };
        let Some(fingerprint) = spec.fingerprint(options, trees) else {
            return self.write_layer(engine, spec).await;
        };
        let cache = engine.cache.clone();
        let print = fingerprint.clone();
        let found = crate::spawn_blocking(move || cache.built_layer(&print))
            .await
            .expect("built-layer lookup task");
        if let Some(blob) = found {
            tracing::info!(layer = what, digest = %blob.digest, "layer reused from the built-layer cache, not written again");
            self.trees.wrote(&blob, spec);
            return Ok(blob);
        }
        let blob = self.write_layer(engine, spec).await?;
        let (cache, kept) = (engine.cache.clone(), blob.clone());
        let keep = crate::spawn_blocking(move || cache.keep_built_layer(&fingerprint, &kept))
            .await
            .expect("built-layer keep task");
        if let Err(e) = keep {
            // The layer is built and used all the same; only a later build will not reuse it.
            tracing::warn!(layer = what, error = %e, "cannot keep the layer in the built-layer cache");
        }
        Ok(blob)
    }
}

/// A built image and the directory holding its new layers (keep it until the push is done).
pub struct Built {
    pub image: PushedImage,
    pub dir: BuildDir,
}

/// The image value: base layers + new layers, `config` with their diffIDs and history, and the
/// base annotations that let `rebase` find the base again.
pub fn assemble(
    engine: &Engine,
    base: &ResolvedImage,
    mut config: ImageConfig,
    new_layers: &[(LayerBlob, String)],
) -> PushedImage {
    let created = engine.created();
    for (layer, created_by) in new_layers {
        config.append_layer(&layer.diff_id, &created, created_by, "patchfarm");
    }
    let mut layers = base_layers(base);
    layers.extend(new_layers.iter().map(|(l, _)| local_blob(l)));
    image_value(
        engine,
        layers,
        config,
        &base.reference.to_string(),
        &base.manifest_digest.to_string(),
    )
}

/// A layer this build wrote, as a blob to push (or to unpack under a build step).
pub fn local_blob(layer: &LayerBlob) -> OutBlob {
    OutBlob {
        descriptor: Descriptor::new(layer.media_type, layer.digest.clone(), layer.size),
        origin: BlobOrigin::Local(layer.path.clone()),
    }
}

/// `image`'s layers as blobs to push, media types in their OCI spelling.
pub fn base_layers(image: &ResolvedImage) -> Vec<OutBlob> {
    image
        .manifest
        .layers
        .iter()
        .map(|d| OutBlob {
            descriptor: Descriptor {
                media_type: media::oci_layer_type(&d.media_type).to_string(),
                ..d.clone()
            },
            origin: BlobOrigin::Remote(image.source.clone()),
        })
        .collect()
}

/// Provenance labels: how many layers and history entries this image has and its top diffID.
/// An image built on top of it by another tool inherits them, which tells `rebase` where this
/// image ends inside the derived one without fetching anything.
pub const LABEL_LAYERS: &str = "org.patchfarm.base.layers";
pub const LABEL_HISTORY: &str = "org.patchfarm.base.history";
pub const LABEL_TOP: &str = "org.patchfarm.base.top";

/// The provenance labels of an image whose base lies strictly below it (a domain image built
/// on a patchfarm image): they name that base, not the image itself.
pub fn provenance_below(config: &ImageConfig) -> Option<Vec<(&'static str, String)>> {
    let labels = config.labels();
    let layers: usize = labels.get(LABEL_LAYERS)?.parse().ok()?;
    let top = labels.get(LABEL_TOP)?;
    let diff_ids = config.diff_ids();
    (layers > 0 && layers < diff_ids.len() && diff_ids.get(layers - 1) == Some(top)).then(|| {
        [LABEL_LAYERS, LABEL_HISTORY, LABEL_TOP]
            .into_iter()
            .filter_map(|key| Some((key, labels.get(key)?.clone())))
            .collect()
    })
}

/// The final image value: provenance labels stamped, config and manifest serialized canonically,
/// base annotations naming `base_name`@`base_digest`.
pub fn image_value(
    engine: &Engine,
    layers: Vec<OutBlob>,
    mut config: ImageConfig,
    base_name: &str,
    base_digest: &str,
) -> PushedImage {
    let diff_ids = config.diff_ids();
    config.set_label(LABEL_LAYERS, &diff_ids.len().to_string());
    config.set_label(LABEL_HISTORY, &config.history().len().to_string());
    config.set_label(LABEL_TOP, diff_ids.last().map(String::as_str).unwrap_or(""));
    image_value_keeping_provenance(engine, layers, config, base_name, base_digest)
}

/// As [`image_value`], the provenance labels left as `config` has them: an image this build
/// made is the base of the layers above it (a domain on its WebLogic image), and `rebase`
/// moves those layers alone.
pub fn image_value_keeping_provenance(
    engine: &Engine,
    layers: Vec<OutBlob>,
    config: ImageConfig,
    base_name: &str,
    base_digest: &str,
) -> PushedImage {
    let created = engine.created();
    let config_bytes = config.to_bytes();
    let annotations = BTreeMap::from([
        (ANNOTATION_BASE_NAME.to_string(), base_name.to_string()),
        (ANNOTATION_BASE_DIGEST.to_string(), base_digest.to_string()),
        (ANNOTATION_CREATED.to_string(), created),
    ]);
    let manifest = Manifest {
        media_type: media::OCI_MANIFEST.into(),
        config: Descriptor::new(
            media::OCI_CONFIG,
            crate::digest::Digest::of_bytes(&config_bytes),
            config_bytes.len() as u64,
        ),
        layers: layers.iter().map(|b| b.descriptor.clone()).collect(),
        annotations,
    };
    PushedImage {
        manifest_bytes: manifest.to_oci_bytes(),
        manifest_media_type: media::OCI_MANIFEST.into(),
        config_bytes,
        layers,
    }
}

/// Pushes (or writes to a layout) and tags; nothing is tagged unless every blob made it. Not
/// signed here: a job signs, with its SBOM and provenance, once its verb is done
/// (`patchfarm_jobs::attest`); other callers call [`signed`].
pub async fn publish(
    engine: &Engine,
    image: &PushedImage,
    target: &ImageRef,
) -> Result<PushReport, RecipeError> {
    let locations = BlobLocations::new(engine.cache.locations_dir());
    Ok(push::push(image, target, &engine.registries, &locations).await?)
}

/// Refuses to build on `image` unless the engine requires no signature or it carries one by a
/// required key.
pub async fn check_signed_base(
    engine: &Engine,
    flag: &str,
    image: &ImageRef,
) -> Result<(), RecipeError> {
    if engine.base_keys.is_empty() {
        return Ok(());
    }
    let ImageRef::Registry(at) = image else {
        return Err(RecipeError::input(
            format!("{flag} {image}"),
            "a signed base is required, and signatures are read from registries only",
        ));
    };
    let mut reasons = Vec::new();
    for key in &engine.base_keys {
        match crate::sign::attach::verify(&engine.registries, at, key).await {
            Ok(_) => return Ok(()),
            Err(crate::sign::attach::AttachError::Unverified { reason, .. }) => {
                reasons.push(reason)
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(RecipeError::input(
        format!("{flag} {image}"),
        format!(
            "is not signed by a required key ({}); nothing was built",
            reasons.join("; ")
        ),
    ))
}

/// `report` with the pushed manifest signed, when the engine signs and `target` is a registry
/// (the only place sigstore signatures are read from).
pub async fn signed(
    engine: &Engine,
    target: &ImageRef,
    mut report: PushReport,
) -> Result<PushReport, RecipeError> {
    let locations = BlobLocations::new(engine.cache.locations_dir());
    let locations = &locations;
    let Some(signer) = &engine.signer else {
        return Ok(report);
    };
    match target {
        ImageRef::Registry(image) => {
            let subject = report.manifest.clone().ok_or_else(|| {
                RecipeError::input(
                    format!("signing {target}"),
                    "the push did not say what it pushed",
                )
            })?;
            let signature =
                crate::sign::attach::sign(&engine.registries, locations, image, &subject, signer)
                    .await?;
            report.signature = Some(signature.reference);
            report.attached.push(signature.descriptor);
        }
        _ => tracing::warn!(%target, "not signed: signatures are attached in registries only"),
    }
    Ok(report)
}

/// Pushes per-platform images and an OCI index over them under `target`'s tag.
pub async fn publish_index(
    engine: &Engine,
    images: &[(PushedImage, crate::image::Platform)],
    target: &ImageRef,
) -> Result<PushReport, RecipeError> {
    let locations = BlobLocations::new(engine.cache.locations_dir());
    Ok(push::push_index(images, target, &engine.registries, &locations).await?)
}
