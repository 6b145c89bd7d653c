//! Which cache keys a job reads: the one home of WIT's key rule (`jdk_V`, `TYPE_V`,
//! every installer of the `--type` set as `INSTALLER_V`, `BUG_V[_ARCH]` with a bare bug number taking the product's version, `wdt_V` unless `none`).
//! The scheduler routes by these keys (cache affinity); agents count how many they held.

use crate::{Job, RebaseTarget};
use patchfarm_engine::installer::InstallerSet;
use patchfarm_engine::recipe::create::{CreateRequest, WdtRequest};
use patchfarm_engine::recipe::patching::PatchRequest;

/// `--patches` ids as cache keys; bare bug numbers take `version`, or are skipped when the
/// version is only known from the image (`update`).
fn patch_keys<'a>(
    patches: &'a PatchRequest,
    version: Option<&str>,
) -> impl Iterator<Item = String> + 'a {
    let version = version.map(str::to_string);
    patches.ids.iter().filter_map(move |id| {
        match (id.bytes().all(|b| b.is_ascii_digit()), &version) {
            (true, Some(version)) => Some(format!("{id}_{version}")),
            (true, None) => None,
            (false, _) => Some(id.clone()),
        }
    })
}

fn wdt_key(version: &str) -> Option<String> {
    (!version.eq_ignore_ascii_case("none")).then(|| format!("wdt_{version}"))
}

/// WDT is installed beside placed model files only.
fn placed_wdt_key(wdt: &WdtRequest) -> Option<String> {
    let placed = !wdt.models.is_empty() || !wdt.archives.is_empty() || !wdt.variables.is_empty();
    placed.then(|| wdt_key(&wdt.version)).flatten()
}

fn install_keys(request: &CreateRequest) -> Vec<String> {
    let mut keys = vec![format!("jdk_{}", request.jdk_version)];
    match InstallerSet::parse(&request.kind) {
        Ok(set) => keys.extend(set.keys(&request.version)),
        // Refused at submit; nothing to route by.
        Err(_) => keys.push(format!("{}_{}", request.kind, request.version)),
    }
    keys.extend(patch_keys(&request.patches, Some(&request.version)));
    keys.extend(placed_wdt_key(&request.wdt));
    keys
}

impl Job {
    /// The cache keys this job reads, in the order it reads them.
    pub fn inputs(&self) -> Vec<String> {
        match self {
            Job::Create(request) => install_keys(request),
            Job::Update(request) => patch_keys(&request.patches, None)
                .chain(placed_wdt_key(&request.wdt))
                .collect(),
            Job::Rebase(rebase) => match &rebase.target {
                RebaseTarget::Build(create) => install_keys(create),
                RebaseTarget::Image(_) => Vec::new(),
            },
            Job::CreateAuxImage(request) => wdt_key(&request.wdt_version).into_iter().collect(),
            Job::RefreshAuxImage(request) => wdt_key(&request.wdt_version).into_iter().collect(),
            Job::Copy(_) | Job::Noop => Vec::new(),
        }
    }

    /// Whether the job's build steps ask for the network (`--buildNetwork`).
    pub fn step_network(&self) -> bool {
        match self {
            Job::Create(request) => request.step_network,
            Job::Update(request) => request.step_network,
            Job::Rebase(rebase) => {
                rebase.request.step_network
                    || matches!(&rebase.target, RebaseTarget::Build(target) if target.step_network)
            }
            Job::CreateAuxImage(request) => request.step_network,
            Job::Copy(_) | Job::RefreshAuxImage(_) | Job::Noop => false,
        }
    }

    /// Whether the job runs a build step whatever its inputs hold: patches it asks OPatch to
    /// apply (`--opatchMode opatch`), or build commands. Inputs that run steps (Oracle's
    /// installers, patches only OPatch applies) are for the farm's catalog to say.
    pub fn needs_steps(&self) -> bool {
        let by_opatch = |patches: &PatchRequest| {
            let asked = patches.mode == patchfarm_engine::opatch::OpatchMode::Opatch
                || (patches.opatch_bug.is_some() && !patches.skip_opatch_update);
            asked && !patches.is_empty()
        };
        let create = |r: &CreateRequest| {
            by_opatch(&r.patches)
                || r.build_commands.is_some()
                || r.wdt.domain_build().is_some()
                || !matches!(
                    r.package_manager,
                    patchfarm_engine::recipe::packages::PackageManager::None
                        | patchfarm_engine::recipe::packages::PackageManager::OsDefault
                )
        };
        match self {
            Job::Create(request) => create(request),
            Job::Update(request) => {
                by_opatch(&request.patches)
                    || request.build_commands.is_some()
                    || request.wdt.domain_build().is_some()
            }
            Job::Rebase(rebase) => {
                rebase.request.build_commands.is_some()
                    || match &rebase.target {
                        RebaseTarget::Build(target) => create(target),
                        RebaseTarget::Image(_) => false,
                    }
            }
            Job::CreateAuxImage(request) => request.build_commands.is_some(),
            Job::Copy(_) | Job::RefreshAuxImage(_) | Job::Noop => false,
        }
    }

    /// Whether the job only moves what registries hold — a copy, a rebase onto a pushed base
    /// without build commands — so it spends its time waiting on registry round trips, not on
    /// the agent's disk and cores: an agent runs many of them beside its slots
    /// (`--registry-slots`), and the farm leases them in batches.
    pub fn registry_only(&self) -> bool {
        match self {
            Job::Copy(_) => true,
            Job::Rebase(rebase) => {
                rebase.request.build_commands.is_none()
                    && matches!(rebase.target, RebaseTarget::Image(_))
            }
            _ => false,
        }
    }
}

/// [`Job::registry_only`] of a spec as the farm holds it (false when it does not read).
pub fn registry_only(spec: &patchfarm_proto::v1::JobSpec) -> bool {
    Job::from_spec(spec).is_ok_and(|job| job.registry_only())
}
