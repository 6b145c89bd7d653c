//! Running one leased job on this agent: its spec read again, its inputs fetched into the local
//! cache, the engine run with this agent's settings (signing key, required base keys), progress
//! reported, and the end completed under the lease's fencing token.

use super::Agent;
use patchfarm_engine::recipe::Engine;
use patchfarm_engine::transport::Registries;
use patchfarm_proto::v1::*;
use tokio_util::sync::CancellationToken;

impl Agent {
    /// Runs one job: its outcome, or (error, permanent, log lines so far).
    pub(super) async fn execute(
        &self,
        job: &Job,
        token: u64,
    ) -> Result<(JobOutcome, String), (String, bool, String)> {
        let spec = job.spec.clone().unwrap_or_default();
        // The coordinator validated the spec at submission; reading it again here guards
        // against a coordinator of another release.
        let mut typed = match patchfarm_jobs::Job::from_spec(&spec) {
            Ok(typed) => typed,
            Err(e) => return Err((format!("the job's spec: {e}"), true, String::new())),
        };
        let compression = match patchfarm_jobs::compression(&spec) {
            Ok(compression) => compression,
            Err(e) => return Err((format!("the job's spec: {e}"), true, String::new())),
        };
        let base_keys = match patchfarm_jobs::base_keys(&spec) {
            Ok(keys) => keys,
            Err(e) => return Err((format!("the job's spec: {e}"), true, String::new())),
        };
        tracing::info!(job = %job.id, verb = typed.verb(), attempt = job.attempts, "job started");
        if matches!(typed, patchfarm_jobs::Job::Noop) {
            return Ok((JobOutcome::default(), String::new()));
        }
        self.progress(
            &job.id,
            token,
            "preparing inputs",
            &format!("attempt {} on {}\n", job.attempts, self.options.name),
        )
        .await;
        let catalog = match self
            .client
            .call(|mut c| async move { c.catalog_list(CatalogListRequest {}).await })
            .await
        {
            Ok(list) => list.entries,
            Err(e) => {
                return Err((
                    format!("reading the farm's catalog: {e}"),
                    false,
                    String::new(),
                ))
            }
        };
        let fetcher = self.fetcher.clone();
        let inputs = typed.inputs();
        let wanted = inputs.len();
        let synced = patchfarm_engine::spawn_blocking(move || {
            fetcher.sync(&catalog)?;
            // Which inputs are here already (the affinity hit the scheduler aimed for).
            let held = inputs
                .iter()
                .filter(|key| {
                    catalog
                        .iter()
                        .find(|e| &e.key == *key)
                        .is_some_and(|e| fetcher.holds(&e.digest))
                })
                .count();
            Ok::<_, String>(held)
        })
        .await
        .expect("sync task");
        let held = match synced {
            Ok(held) => held,
            Err(e) => return Err((format!("local cache: {e}"), false, String::new())),
        };
        let inputs_line = format!(
            "inputs: {held} of {wanted} already in {}'s cache\n",
            self.options.name
        );
        self.progress(
            &job.id,
            token,
            &format!("running {}", typed.verb()),
            &inputs_line,
        )
        .await;
        // The job's files, by content from the farm's artifact store: never a path on this
        // machine, whatever a coordinator of another release let through.
        let _job_files = match self
            .fetcher
            .job_files(&mut typed, &spec.artifact_store)
            .await
        {
            Ok(dir) => dir,
            Err(e) => return Err((format!("the job's files: {e}"), true, inputs_line)),
        };
        // A build commands file's sections are read here, from the file just fetched.
        let typed = match patchfarm_engine::spawn_blocking(move || {
            typed.read_build_commands().map(|()| typed)
        })
        .await
        .expect("build commands task")
        {
            Ok(typed) => typed,
            Err(e) => return Err((e.to_string(), false, inputs_line)),
        };
        let engine = match Engine::source_date_epoch_from_env() {
            Ok(source_date_epoch) => Engine {
                cache: self.fetcher.cache(),
                registries: Registries::new(self.options.registry.clone()),
                source_date_epoch,
                compression,
                steps_refused: (!self.steps.available)
                    .then(|| self.steps.unavailable_reason.clone()),
                step_network_refused: self
                    .steps
                    .network_refused
                    .then(|| "turned off with --no-step-network".to_string()),
                signer: self.options.signer.clone(),
                builder: self.options.name.clone(),
                base_keys,
            },
            Err(e) => return Err((e.to_string(), true, inputs_line)),
        };
        // The job's future is not provably Send (higher-ranked closures inside the engine's
        // push), so it runs on a blocking thread driven by this runtime; dropping this future
        // (cancel, lapsed lease, drain) stops it through the token.
        let stop = CancellationToken::new();
        let _stop_on_drop = stop.clone().drop_guard();
        let runtime = tokio::runtime::Handle::current();
        let built = patchfarm_engine::spawn_blocking(move || {
            runtime.block_on(async move {
                tokio::select! {
                    built = patchfarm_jobs::run(&engine, &typed, &|_| {}) => Some(built),
                    _ = stop.cancelled() => None,
                }
            })
        })
        .await;
        match built {
            Ok(Some(Ok(outcome))) => Ok((outcome.to_wire(), inputs_line)),
            Ok(Some(Err(e))) => {
                let permanent = !e.is_transient();
                Err((
                    patchfarm_client::runtime::error_line(&anyhow::Error::new(e)),
                    permanent,
                    inputs_line,
                ))
            }
            Ok(None) => Err(("stopped".into(), false, inputs_line)),
            Err(e) => Err((format!("the build task failed: {e}"), false, inputs_line)),
        }
    }

    pub(super) async fn progress(&self, id: &str, token: u64, message: &str, log: &str) {
        let request = ProgressRequest {
            job_id: id.to_string(),
            fencing_token: token,
            message: message.to_string(),
            log: log.to_string(),
        };
        if let Err(e) = self
            .client
            .call_agent(|mut c| {
                let request = request.clone();
                async move { c.progress(request).await }
            })
            .await
        {
            tracing::warn!(job = %id, error = %e, "progress not recorded");
        }
    }

    pub(super) async fn finish(
        &self,
        job: &Job,
        token: u64,
        outcome: Result<(JobOutcome, String), (String, bool, String)>,
    ) {
        let (success, outcome, error, permanent, log) = match outcome {
            Ok((outcome, _)) => {
                let log = outcome
                    .pushed
                    .iter()
                    .map(|p| format!("pushed {}@{}\n", p.reference, p.digest))
                    .collect();
                (true, Some(outcome), String::new(), false, log)
            }
            Err((error, permanent, _)) => (
                false,
                None,
                error.clone(),
                permanent,
                format!("error: {error}\n"),
            ),
        };
        let digests: Vec<String> = outcome
            .iter()
            .flat_map(|o| &o.pushed)
            .map(|p| format!("{}@{}", p.reference, p.digest))
            .collect();
        if success {
            tracing::info!(job = %job.id, pushed = ?digests, "job succeeded");
        } else {
            tracing::warn!(job = %job.id, error = %error, permanent, "job failed");
        }
        self.complete(Completion {
            id: &job.id,
            token,
            success,
            digests,
            outcome,
            error,
            permanent,
            log,
        })
        .await;
        let keep_from = {
            let mut running = self.running.lock().expect("running");
            running.remove(&job.id);
            running
                .values()
                .map(|r| r.started_at)
                .min()
                .unwrap_or(u64::MAX)
        };
        self.slot_freed.notify_one();
        if let Some(max) = self.options.cache_max_bytes {
            let fetcher = self.fetcher.clone();
            let _ = patchfarm_engine::spawn_blocking(move || fetcher.evict(max, keep_from)).await;
        }
    }

    pub(super) async fn complete(&self, done: Completion<'_>) {
        let request = CompleteRequest {
            request_id: patchfarm_client::new_request_id(),
            job_id: done.id.to_string(),
            fencing_token: done.token,
            success: done.success,
            error: done.error,
            digests: done.digests,
            permanent: done.permanent,
            log: done.log,
            outcome: done.outcome,
        };
        if let Err(e) = self
            .client
            .call_agent(|mut c| {
                let request = request.clone();
                async move { c.complete(request).await }
            })
            .await
        {
            tracing::warn!(job = %done.id, error = %e, "completion refused or lost");
        }
    }
}

/// What an agent reports when a job ends.
pub(super) struct Completion<'a> {
    pub id: &'a str,
    pub token: u64,
    pub success: bool,
    pub digests: Vec<String>,
    pub outcome: Option<JobOutcome>,
    pub error: String,
    pub permanent: bool,
    pub log: String,
}
