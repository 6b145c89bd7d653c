//! Running a job with the engine: what `patchfarm VERB` does on a laptop and what an agent does
//! with a leased job, in one place. Each step reports what it is doing through `progress`; the
//! answer is a typed [`Outcome`] that the CLI prints and the agent records with the job.

use crate::{Job, RebaseTarget};
use patchfarm_engine::image::ImageRef;
use patchfarm_engine::recipe::aux_refresh::{self, AuxRefreshOutcome};
use patchfarm_engine::recipe::rebase::{self, RebaseOutcome, Target};
use patchfarm_engine::recipe::update::{self, UpdateOutcome};
use patchfarm_engine::recipe::{aux, build, copy, create, Engine, RecipeError};
use patchfarm_engine::transport::{PushReport, TransportError};
use patchfarm_proto::v1 as wire;

/// A failed job: what it was doing, and the engine's error beneath.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct JobError {
    pub context: String,
    #[source]
    pub source: RecipeError,
}

impl JobError {
    /// Worth another attempt: only transient registry trouble; bad input fails for good.
    pub fn is_transient(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&self.source);
        while let Some(error) = cause {
            let transient = match error.downcast_ref::<RecipeError>() {
                Some(RecipeError::Transport(t)) => t.is_transient(),
                _ => error
                    .downcast_ref::<TransportError>()
                    .is_some_and(TransportError::is_transient),
            };
            if transient {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

fn failed(context: impl Into<String>) -> impl FnOnce(RecipeError) -> JobError {
    let context = context.into();
    move |source| JobError { context, source }
}

/// What a job did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `create`: the image, and the patches applied in its Oracle Home (in order).
    Created {
        report: PushReport,
        patches: Vec<String>,
    },
    Updated(UpdateOutcome),
    /// `rebase`: how the domain moved, and the patches its new base holds.
    Rebased {
        outcome: RebaseOutcome,
        target_patches: Vec<String>,
    },
    /// `createAuxImage` and `copy`.
    Pushed(PushReport),
    /// `refreshAuxImage`: the image, the files kept and the WDT release moved from.
    Refreshed(AuxRefreshOutcome),
    Nothing,
}

impl Outcome {
    /// The push, if the job pushed an image.
    pub fn report(&self) -> Option<&PushReport> {
        match self {
            Outcome::Created { report, .. } | Outcome::Pushed(report) => Some(report),
            Outcome::Updated(u) => Some(&u.report),
            Outcome::Rebased { outcome, .. } => Some(&outcome.report),
            Outcome::Refreshed(refreshed) => Some(&refreshed.report),
            Outcome::Nothing => None,
        }
    }

    fn report_mut(&mut self) -> Option<&mut PushReport> {
        match self {
            Outcome::Created { report, .. } | Outcome::Pushed(report) => Some(report),
            Outcome::Updated(u) => Some(&mut u.report),
            Outcome::Rebased { outcome, .. } => Some(&mut outcome.report),
            Outcome::Refreshed(refreshed) => Some(&mut refreshed.report),
            Outcome::Nothing => None,
        }
    }

    /// The outcome as recorded with the job.
    pub fn to_wire(&self) -> wire::JobOutcome {
        let pushed = self
            .report()
            .map(|r| wire::PushedImage {
                reference: r.reference.clone(),
                digest: r.digest.clone(),
                blobs_present: r.blobs_present,
                blobs_mounted: r.blobs_mounted,
                blobs_uploaded: r.blobs_uploaded,
                bytes_uploaded: r.bytes_uploaded,
                signature: r.signature.clone().unwrap_or_default(),
                sbom: r.sbom.clone().unwrap_or_default(),
                provenance: r.provenance.clone().unwrap_or_default(),
                referrers: r.referrers.clone().unwrap_or_default(),
            })
            .into_iter()
            .collect();
        let mut out = wire::JobOutcome {
            pushed,
            ..Default::default()
        };
        match self {
            Outcome::Created { patches, .. } => {
                out.patches_applied = patches.clone();
                out.image_patches = patches.clone();
            }
            Outcome::Updated(u) => {
                out.patches_applied = u.applied.clone();
                out.image_patches = u.image_patches.clone();
                // The engine names skipped patches by cache key; the outcome, like the image's
                // labels, by OPatch patch id (the bug number).
                out.patches_present = u
                    .skipped
                    .iter()
                    .map(|key| key.split('_').next().unwrap_or(key).to_string())
                    .collect();
            }
            Outcome::Rebased {
                outcome,
                target_patches,
            } => {
                out.rebase_path = outcome.path.to_string();
                out.rebase_detail = outcome.detail.clone();
                out.reused_layers = outcome.reused_layers as u32;
                out.image_patches = target_patches.clone();
            }
            Outcome::Pushed(_) | Outcome::Refreshed(_) | Outcome::Nothing => {}
        }
        out
    }
}

/// Runs `job` with `engine`; `progress` hears each step as it starts.
pub async fn run(
    engine: &Engine,
    job: &Job,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Outcome, JobError> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut outcome = run_verb(engine, job, progress).await?;
    if engine.signer.is_some() {
        if let Some(report) = outcome.report_mut() {
            progress(format!(
                "attaching the SBOM and provenance of {}",
                report.reference
            ));
            crate::attest::attach(engine, job, &engine.builder, started, report)
                .await
                .map_err(failed(format!("attesting {}", report.reference)))?;
        }
    }
    Ok(outcome)
}

/// The verb itself: plan, build, push.
async fn run_verb(
    engine: &Engine,
    job: &Job,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Outcome, JobError> {
    if let (true, Some(why)) = (job.step_network(), &engine.step_network_refused) {
        let refused = RecipeError::input(
            "--buildNetwork",
            format!("this agent gives build steps no network: {why}"),
        );
        return Err(failed(job.verb())(refused));
    }
    match job {
        Job::Create(request) => {
            progress("checking installers and patches".into());
            let plans = create::plan(engine, request)
                .await
                .map_err(failed("create"))?;
            progress(format!("building and pushing {}", request.tag));
            let report = create::push(engine, request, &plans)
                .await
                .map_err(failed(format!(
                    "create: building and pushing {}",
                    request.tag
                )))?;
            let patches = plans[0].patches.ids();
            Ok(Outcome::Created { report, patches })
        }
        Job::Update(request) => {
            progress(format!("updating {}", request.from_image));
            let outcome = update::run(engine, request)
                .await
                .map_err(failed(format!("update of {}", request.from_image)))?;
            Ok(Outcome::Updated(outcome))
        }
        Job::Rebase(rebase_job) => {
            let request = &rebase_job.request;
            progress("preparing the target".into());
            // A target built here lives in `plans` (its layers on disk) until the push is done.
            let mut plans = Vec::new();
            let target = match &rebase_job.target {
                RebaseTarget::Image(reference) => Target::pushed(
                    &async {
                        build::check_signed_base(engine, "--targetImage", reference).await?;
                        build::fetch_base(engine, reference, &request.platform).await
                    }
                    .await
                    .map_err(failed(format!("rebase: fetching the target {reference}")))?,
                ),
                RebaseTarget::Build(create_request) => {
                    plans = create::plan(engine, create_request)
                        .await
                        .map_err(failed("rebase: building the target"))?;
                    let built = plans[0]
                        .build(engine, create_request)
                        .await
                        .map_err(failed("rebase: building the target"))?;
                    Target::built(built_name(&create_request.from_image), &built)
                        .map_err(failed("rebase: building the target"))?
                }
            };
            let target_patches = target
                .config
                .labels()
                .get("org.patchfarm.patches")
                .map(|ids| {
                    ids.split(',')
                        .filter(|id| !id.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            progress(format!("rebasing {}", request.source));
            let outcome = rebase::run(engine, request, target)
                .await
                .map_err(failed(format!("rebase of {}", request.source)))?;
            drop(plans);
            Ok(Outcome::Rebased {
                outcome,
                target_patches,
            })
        }
        Job::CreateAuxImage(request) => {
            progress("planning".into());
            let tag = request.tag.clone();
            let plan = aux::plan(engine, request.clone())
                .await
                .map_err(failed("createAuxImage"))?;
            progress(format!("building and pushing {tag}"));
            let report = plan.push(engine).await.map_err(failed(format!(
                "createAuxImage: building and pushing {tag}"
            )))?;
            Ok(Outcome::Pushed(report))
        }
        Job::Copy(c) => {
            progress(format!("copying {} to {}", c.from, c.to));
            let report = copy::copy(engine, &c.from, &c.to, &c.platform)
                .await
                .map_err(failed(format!("copying {} to {}", c.from, c.to)))?;
            Ok(Outcome::Pushed(report))
        }
        Job::RefreshAuxImage(request) => {
            progress(format!(
                "moving {} to WDT {}",
                request.source, request.wdt_version
            ));
            let refreshed = aux_refresh::run(engine, request)
                .await
                .map_err(failed(format!(
                    "refreshAuxImage of {} to WDT {}",
                    request.source, request.wdt_version
                )))?;
            Ok(Outcome::Refreshed(refreshed))
        }
        Job::Noop => Ok(Outcome::Nothing),
    }
}

fn built_name(from_image: &ImageRef) -> String {
    format!("patchfarm create --fromImage {from_image} (built for this rebase)")
}
