//! The agent's session with the farm: register, heartbeat (with cache contents, so the scheduler
//! can route by affinity), lease as many jobs as there are free slots, run each with the engine,
//! report progress and complete under the lease's fencing token. A heartbeat answer that names a
//! running job stops it (cancelled, or its lease lapsed); SIGTERM drains.

use crate::fetcher::Fetcher;
use patchfarm_client::FarmClient;
use patchfarm_engine::recipe::Engine;
use patchfarm_engine::transport::{Registries, RegistryOptions};
use patchfarm_proto::v1::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a lease call waits at the coordinator for work.
const LEASE_WAIT_MS: u32 = 5_000;

#[derive(Clone, Debug)]
pub struct Options {
    pub name: String,
    pub coordinators: Vec<String>,
    pub cache_dir: PathBuf,
    /// `None` = plaintext (`--insecure`).
    /// The agent's certificate, key and the farm's CA; `None` = plaintext (`--insecure`).
    pub tls: Option<patchfarm_client::tls::TlsFiles>,
    pub slots: u32,
    pub labels: HashMap<String, String>,
    pub cache_max_bytes: Option<u64>,
    pub registry: RegistryOptions,
    /// How long SIGTERM waits for running jobs before handing their leases back.
    pub drain_timeout: Duration,
    /// Offer to run build steps (`--no-build-steps` turns it off); the probe decides.
    pub build_steps: bool,
    /// Let build steps have the network when a job asks (`--no-step-network` turns it off).
    pub step_network: bool,
    /// Serve `/healthz`, `/readyz` and `/metrics` over HTTP here.
    pub http_listen: Option<std::net::SocketAddr>,
    /// The farm's signing key (`--sign-key`): every pushed image is signed.
    pub signer: Option<std::sync::Arc<patchfarm_engine::sign::Signer>>,
}

struct Running {
    token: u64,
    abort: tokio::task::AbortHandle,
    /// The fetcher's clock when the job started: content used since stays in the cache.
    started_at: u64,
}

struct Agent {
    options: Options,
    client: FarmClient,
    fetcher: Arc<Fetcher>,
    running: Mutex<HashMap<String, Running>>,
    slot_freed: Notify,
    must_register: std::sync::atomic::AtomicBool,
    /// What the start-up probe found: told to the farm at every registration.
    steps: BuildSteps,
    /// What the HTTP probes report.
    vitals: Arc<crate::probes::Vitals>,
}

pub async fn run(options: Options, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = FarmClient::with_tls(&options.coordinators, options.tls.clone())?;
    std::fs::create_dir_all(&options.cache_dir)?;
    tracing::info!(
        agent = %options.name,
        coordinators = %options.coordinators.join(","),
        slots = options.slots,
        "agent starting"
    );
    let steps = probe_steps(&options).await;
    let vitals = Arc::new(crate::probes::Vitals::new(
        &options.name,
        options.slots,
        steps.available,
    ));
    if let Some(address) = options.http_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| anyhow::anyhow!("binding --http-listen {address}: {e}"))?;
        tokio::spawn(crate::probes::serve(
            listener,
            vitals.clone(),
            shutdown.clone(),
        ));
    }
    let agent = Arc::new(Agent {
        vitals,
        steps,
        fetcher: Fetcher::new(options.cache_dir.clone(), options.registry.clone()),
        options,
        client,
        running: Mutex::default(),
        slot_freed: Notify::new(),
        must_register: true.into(),
    });
    let stop_leasing = shutdown.clone();
    let heartbeats = tokio::spawn(agent.clone().heartbeat_loop(stop_leasing.clone()));
    agent.clone().lease_loop(stop_leasing).await;
    agent.drain().await;
    heartbeats.abort();
    Ok(())
}

/// Whether this agent can run build steps: turned off, or what one real probe step says.
async fn probe_steps(options: &Options) -> BuildSteps {
    let verdict = if options.build_steps {
        let work = patchfarm_engine::cache::Cache::new(&options.cache_dir).build_dir();
        patchfarm_executor::probe(&work).await
    } else {
        Err("turned off with --no-build-steps".to_string())
    };
    match verdict {
        Ok(()) => {
            tracing::info!("build steps can run here: the probe step passed");
            BuildSteps {
                available: true,
                unavailable_reason: String::new(),
                network_refused: !options.step_network,
            }
        }
        Err(reason) => {
            tracing::warn!(%reason, "build steps cannot run here: jobs that need them go to other agents");
            BuildSteps {
                available: false,
                unavailable_reason: reason,
                network_refused: !options.step_network,
            }
        }
    }
}

impl Agent {
    fn running_ids(&self) -> Vec<String> {
        self.running
            .lock()
            .expect("running")
            .keys()
            .cloned()
            .collect()
    }

    async fn register(&self) -> anyhow::Result<()> {
        let request = RegisterRequest {
            request_id: patchfarm_client::new_request_id(),
            slots: self.options.slots,
            labels: self.options.labels.clone(),
            platforms: Vec::new(), // the native engine assembles any platform
            steps: Some(self.steps.clone()),
        };
        let agent = self
            .client
            .call_agent(|mut c| {
                let request = request.clone();
                async move { c.register(request).await }
            })
            .await?;
        tracing::info!(agent = %agent.name, slots = agent.slots, "registered with the farm");
        self.must_register
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.vitals.registered(true);
        Ok(())
    }

    async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut every = Duration::from_millis(1000);
        loop {
            // Registering is the lease loop's job; until then there is nothing to report.
            if self
                .must_register
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = stop.cancelled() => return,
                }
            }
            let fetcher = self.fetcher.clone();
            let (cached_digests, cache_bytes) =
                tokio::task::spawn_blocking(move || fetcher.inventory())
                    .await
                    .unwrap_or_default();
            let request = HeartbeatRequest {
                running_jobs: self.running_ids(),
                cached_digests,
                cache_bytes,
            };
            let answer = self
                .client
                .call_agent(|mut c| {
                    let request = request.clone();
                    async move { c.heartbeat(request).await }
                })
                .await;
            match answer {
                Ok(answer) => {
                    every = Duration::from_millis((answer.ttl_ms / 3).max(100) as u64);
                    self.vitals.heartbeat_answered(request.running_jobs.len());
                    if answer.register {
                        self.must_register
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        self.vitals.registered(false);
                    }
                    for id in answer.cancel_jobs {
                        if let Some(job) = self.running.lock().expect("running").remove(&id) {
                            tracing::warn!(job = %id, "the farm took this job back (cancelled or lease lapsed): stopping it");
                            job.abort.abort();
                            self.slot_freed.notify_one();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => {
                    // Keep heartbeating while draining: running leases must not lapse.
                    if self.running.lock().expect("running").is_empty() { return; }
                }
            }
        }
    }

    async fn lease_loop(self: Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            if self
                .must_register
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                // A farm that cannot be reached must not hold a SIGTERM for the call's deadline.
                let registered = tokio::select! {
                    registered = self.register() => registered,
                    _ = stop.cancelled() => return,
                };
                if let Err(e) = registered {
                    tracing::warn!(error = %format!("{e:#}"), "cannot register; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.cancelled() => return,
                    }
                    continue;
                }
            }
            let free = (self.options.slots as usize).saturating_sub(self.running_ids().len());
            if free == 0 {
                tokio::select! {
                    _ = self.slot_freed.notified() => {}
                    _ = stop.cancelled() => return,
                }
                continue;
            }
            let request = LeaseRequest {
                request_id: patchfarm_client::new_request_id(),
                max_jobs: free as u32,
                wait_ms: LEASE_WAIT_MS,
            };
            let leased = tokio::select! {
                leased = self.client.call_agent(|mut c| {
                    let request = request.clone();
                    async move { c.lease(request).await }
                }) => leased,
                _ = stop.cancelled() => return,
            };
            match leased {
                Ok(leased) => {
                    for job in leased.jobs {
                        self.start(job);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease failed");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    fn start(self: &Arc<Self>, job: Job) {
        let token = job.lease.as_ref().map_or(0, |l| l.fencing_token);
        let id = job.id.clone();
        let started_at = self.fetcher.now();
        let agent = self.clone();
        let mut running = self.running.lock().expect("running");
        let task = tokio::spawn(async move {
            let outcome = agent.execute(&job, token).await;
            agent.finish(&job, token, outcome).await;
        });
        running.insert(
            id,
            Running {
                token,
                abort: task.abort_handle(),
                started_at,
            },
        );
    }

    /// Runs one job: its outcome, or (error, permanent, log lines so far).
    async fn execute(
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
        let synced = tokio::task::spawn_blocking(move || {
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
        let typed =
            match tokio::task::spawn_blocking(move || typed.read_build_commands().map(|()| typed))
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
        let built = tokio::task::spawn_blocking(move || {
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

    async fn progress(&self, id: &str, token: u64, message: &str, log: &str) {
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

    async fn finish(
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
            let _ = tokio::task::spawn_blocking(move || fetcher.evict(max, keep_from)).await;
        }
    }

    async fn complete(&self, done: Completion<'_>) {
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

    /// SIGTERM: no new leases; running jobs get `drain_timeout` to finish, then their leases are
    /// handed back (a failed attempt that re-queues the job).
    async fn drain(self: &Arc<Self>) {
        let deadline = tokio::time::Instant::now() + self.options.drain_timeout;
        loop {
            if self.running_ids().is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, self.slot_freed.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        let left: Vec<(String, Running)> = self.running.lock().expect("running").drain().collect();
        for (id, job) in left {
            job.abort.abort();
            tracing::warn!(job = %id, "draining: handing the lease back");
            self.complete(Completion {
                id: &id,
                token: job.token,
                success: false,
                digests: Vec::new(),
                outcome: None,
                error: format!(
                    "agent {} shut down before the job finished",
                    self.options.name
                ),
                permanent: false,
                log: "handed back: the agent shut down\n".into(),
            })
            .await;
        }
    }
}

/// What an agent reports when a job ends.
struct Completion<'a> {
    id: &'a str,
    token: u64,
    success: bool,
    digests: Vec<String>,
    outcome: Option<JobOutcome>,
    error: String,
    permanent: bool,
    log: String,
}
