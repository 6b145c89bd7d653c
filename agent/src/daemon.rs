//! The agent's session with the farm: register, heartbeat (with cache contents, so the scheduler
//! can route by affinity), lease as many jobs as there are free slots, run each with the engine,
//! report progress and complete under the lease's fencing token. A heartbeat answer that names a
//! running job stops it (cancelled, or its lease lapsed); SIGTERM drains.

use crate::fetcher::Fetcher;
use execute::Completion;
use patchfarm_client::FarmClient;
use patchfarm_engine::transport::RegistryOptions;
use patchfarm_proto::v1::*;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

mod execute;

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
    /// Registry-only jobs run beside the slots, up to this many (`--registry-slots`).
    pub registry_slots: u32,
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
    /// Runs beside the slots (`patchfarm_jobs::registry_only`).
    registry_only: bool,
    abort: tokio::task::AbortHandle,
    /// The fetcher's clock when the job started: content used since stays in the cache.
    started_at: u64,
}

struct Agent {
    options: Options,
    client: FarmClient,
    fetcher: Arc<Fetcher>,
    running: Mutex<HashMap<String, Running>>,
    /// The cached digests the leader last acknowledged (heartbeats then send only changes);
    /// `None`: send the whole list (first beat, a new leader, a failed beat).
    cache_reported: Mutex<Option<HashSet<String>>>,
    slot_freed: Notify,
    must_register: std::sync::atomic::AtomicBool,
    /// What the start-up probe found: told to the farm at every registration.
    steps: BuildSteps,
    /// What the HTTP probes report.
    vitals: Arc<crate::probes::Vitals>,
    metrics: Arc<crate::metrics::AgentMetrics>,
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
    let vitals = Arc::new(crate::probes::Vitals::new(options.slots, steps.available));
    let fetcher = Fetcher::new(options.cache_dir.clone(), options.registry.clone());
    let metrics = Arc::new(crate::metrics::AgentMetrics::new(
        &options.name,
        vitals.clone(),
        fetcher.clone(),
    ));
    if let Some(address) = options.http_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| anyhow::anyhow!("binding --http-listen {address}: {e}"))?;
        tokio::spawn(crate::probes::serve(
            listener,
            vitals.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    let agent = Arc::new(Agent {
        vitals,
        steps,
        fetcher,
        metrics,
        options,
        client,
        running: Mutex::default(),
        cache_reported: Mutex::default(),
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
    /// Free slots, and free registry slots.
    fn free(&self) -> (usize, usize) {
        let running = self.running.lock().expect("running");
        let beside = running.values().filter(|r| r.registry_only).count();
        let in_slots = running.len() - beside;
        (
            (self.options.slots as usize).saturating_sub(in_slots),
            (self.options.registry_slots as usize).saturating_sub(beside),
        )
    }

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
            registry_slots: self.options.registry_slots,
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
        *self.cache_reported.lock().expect("cache reported") = None;
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
            let current: HashSet<String> = cached_digests.into_iter().collect();
            let reported = self.cache_reported.lock().expect("cache reported").take();
            let (cached_digests, cached_added, cached_removed) = match &reported {
                Some(before) => (
                    Vec::new(),
                    current.difference(before).cloned().collect(),
                    before.difference(&current).cloned().collect(),
                ),
                None => (current.iter().cloned().collect(), Vec::new(), Vec::new()),
            };
            let request = HeartbeatRequest {
                running_jobs: self.running_ids(),
                cached_digests,
                cached_delta: reported.is_some(),
                cached_added,
                cached_removed,
                cache_bytes,
                cache_hits: self.fetcher.hits.load(std::sync::atomic::Ordering::Relaxed),
                cache_misses: self
                    .fetcher
                    .fetches
                    .load(std::sync::atomic::Ordering::Relaxed),
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
                    if !(answer.send_cache || answer.register) {
                        *self.cache_reported.lock().expect("cache reported") = Some(current);
                    }
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
            let (free, free_registry) = self.free();
            if free == 0 && free_registry == 0 {
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
                max_registry_jobs: free_registry as u32,
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
                    if !leased.jobs.is_empty() {
                        tracing::info!(
                            jobs = leased.jobs.len(),
                            free_slots = free,
                            free_registry_slots = free_registry,
                            "leased"
                        );
                    }
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
        let verb = job.spec.as_ref().map_or("none", patchfarm_jobs::verb_name);
        let registry_only = job.spec.as_ref().is_some_and(patchfarm_jobs::registry_only);
        let campaign = job.spec.as_ref().map_or("", |s| s.campaign.as_str());
        // Every line logged while the job runs names it, its campaign and this agent.
        let span = tracing::info_span!(
            "job",
            job = %id,
            campaign = %campaign,
            agent = %self.options.name
        );
        let task = tokio::spawn(
            async move {
                let started = std::time::Instant::now();
                let outcome = agent.execute(&job, token).await;
                agent.metrics.job_ended(
                    verb,
                    outcome.is_ok(),
                    started.elapsed(),
                    outcome.as_ref().ok().map(|(o, _)| o),
                );
                agent.finish(&job, token, outcome).await;
            }
            .instrument(span),
        );
        running.insert(
            id,
            Running {
                token,
                registry_only,
                abort: task.abort_handle(),
                started_at,
            },
        );
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
