//! What a signed job attaches beside the image it pushed: an SPDX SBOM (`sha256-<hex>.sbom`) and
//! a signed in-toto statement with a SLSA v1 provenance predicate (`sha256-<hex>.att`, a DSSE
//! envelope as cosign attaches attestations): who built it, the typed job as its parameters (a
//! farm job never carries a secret), and every input by digest — cache items, base image.

use crate::Job;
use patchfarm_engine::cache::CacheKey;
use patchfarm_engine::digest::Digest;
use patchfarm_engine::image::{ImageRef, Platform, RegistryRef};
use patchfarm_engine::recipe::sbom::{self, Material};
use patchfarm_engine::recipe::{build, rfc3339, Engine, RecipeError};
use patchfarm_engine::sign::{self, attach};
use patchfarm_engine::transport::push::BlobLocations;
use patchfarm_engine::transport::PushReport;
use serde_json::json;
use std::collections::BTreeMap;

pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// The cache items `job` read, by key and sha256.
fn materials(engine: &Engine, job: &Job) -> Vec<Material> {
    job.inputs()
        .iter()
        .filter_map(|key| {
            let parsed: CacheKey = key.parse().ok()?;
            let entry = engine.cache.entry(&parsed).ok()??;
            Some(Material {
                key: key.clone(),
                sha256: entry.digest.hex().to_string(),
            })
        })
        .collect()
}

/// Signs `report`'s image and attaches its SBOM and signed provenance, when the engine signs
/// and the image went to a registry, then lists the three as its referrers; records where in
/// `report`. The three go up at once (each is a few round trips) and the referrers index is
/// read meanwhile, so a signed rebase waits on about one attachment's round trips.
pub async fn attach(
    engine: &Engine,
    job: &Job,
    builder: &str,
    started: u64,
    report: &mut PushReport,
) -> Result<(), RecipeError> {
    let Some(signer) = &engine.signer else {
        return Ok(());
    };
    let target = match job.pushes() {
        Some(ImageRef::Registry(target)) => target,
        Some(other) => {
            tracing::warn!(target = %other, "not signed: signatures are attached in registries only");
            return Ok(());
        }
        None => return Ok(()),
    };
    let digest: Digest = report.digest.parse().map_err(|e| {
        RecipeError::input(format!("attesting {target}"), format!("pushed digest: {e}"))
    })?;
    let subject = report.manifest.clone().ok_or_else(|| {
        RecipeError::input(
            format!("attesting {target}"),
            "the push did not say what it pushed",
        )
    })?;
    let pushed = RegistryRef {
        tag: None,
        digest: Some(digest.clone()),
        ..target.clone()
    };
    let locations = BlobLocations::new(engine.cache.locations_dir());
    let signature = async {
        attach::sign(&engine.registries, &locations, &pushed, &subject, signer)
            .await
            .map_err(RecipeError::from)
    };
    let documents = async {
        let (sbom, provenance) = documents(engine, signer, job, builder, started, &pushed).await?;
        futures_util::future::try_join(
            attach::attach_one(&engine.registries, &locations, &pushed, &subject, sbom),
            attach::attach_one(
                &engine.registries,
                &locations,
                &pushed,
                &subject,
                provenance,
            ),
        )
        .await
        .map_err(RecipeError::from)
    };
    let listed = async {
        sign::referrers::listed(&engine.registries, &pushed, &digest)
            .await
            .map_err(RecipeError::from)
    };
    let (signature, (sbom, provenance), listed) =
        futures_util::future::try_join3(signature, documents, listed).await?;
    report.signature = Some(signature.reference);
    report.sbom = Some(sbom.reference);
    report.provenance = Some(provenance.reference);
    report.attached = vec![signature.descriptor, sbom.descriptor, provenance.descriptor];
    report.referrers = Some(
        sign::referrers::record(
            &engine.registries,
            &pushed,
            &digest,
            listed,
            &report.attached,
        )
        .await?,
    );
    Ok(())
}

/// The SBOM and the DSSE-signed provenance statement of the image at `pushed`.
async fn documents(
    engine: &Engine,
    signer: &sign::Signer,
    job: &Job,
    builder: &str,
    started: u64,
    pushed: &RegistryRef,
) -> Result<(attach::Attachment, attach::Attachment), RecipeError> {
    let digest = pushed.digest.clone().expect("pushed by digest");
    let repository = format!("{}/{}", pushed.registry, pushed.repository);
    let image = build::fetch_base(
        engine,
        &ImageRef::Registry(pushed.clone()),
        &Platform::default(),
    )
    .await?;
    let materials = materials(engine, job);
    let finished = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(started);
    let document = sbom::document(
        engine,
        &image,
        &repository,
        &digest,
        &materials,
        &rfc3339(finished),
    )
    .await?;
    let mut dependencies: Vec<serde_json::Value> = materials
        .iter()
        .map(|m| json!({"name": m.key, "digest": {"sha256": m.sha256}}))
        .collect();
    let annotations = &image.manifest.annotations;
    if let (Some(name), Some(base)) = (
        annotations.get(build::ANNOTATION_BASE_NAME),
        annotations
            .get(build::ANNOTATION_BASE_DIGEST)
            .and_then(|d| d.strip_prefix("sha256:")),
    ) {
        dependencies.push(json!({"name": "base image", "uri": format!("docker://{name}"), "digest": {"sha256": base}}));
    }
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": repository, "digest": {"sha256": digest.hex()}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://patchfarm.dev/build/job/v1",
                "externalParameters": {"verb": job.verb(), "job": job.to_spec()},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": format!("https://patchfarm.dev/builder/{builder}"), "version": {"patchfarm": env!("CARGO_PKG_VERSION")}},
                "metadata": {"startedOn": rfc3339(started), "finishedOn": rfc3339(finished)},
            },
        },
    });
    let envelope = sign::dsse_envelope(
        signer,
        IN_TOTO,
        &serde_json::to_vec(&statement).expect("JSON serializes"),
    )
    .map_err(attach::AttachError::from)?;
    Ok((
        attach::Attachment {
            suffix: "sbom",
            media_type: "text/spdx+json",
            body: serde_json::to_vec(&document).expect("JSON serializes"),
            annotations: BTreeMap::new(),
        },
        attach::Attachment {
            suffix: "att",
            media_type: "application/vnd.dsse.envelope.v1+json",
            body: envelope,
            annotations: BTreeMap::from([
                (sign::SIGNATURE_ANNOTATION.to_string(), String::new()),
                ("predicateType".to_string(), SLSA_PROVENANCE.to_string()),
            ]),
        },
    ))
}
