//! Jobs counted as the state machine applies them, so every node agrees: how many are in each
//! state (per verb and per campaign), and how many ended, were retried, waited and ran since this
//! node started.

use crate::state::{Change, Observer, StateError, StateMachine};
use patchfarm_proto::v1::{Job, JobState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbState {
    pub verb: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CampaignState {
    pub campaign: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Verb {
    pub verb: String,
}

/// The verbs a farm runs, as `patchfarm_jobs::verb_name` names them.
const VERBS: [&str; 7] = [
    "create",
    "update",
    "rebase",
    "createAuxImage",
    "copy",
    "refreshAuxImage",
    "noop",
];

/// What the tally remembers of an open job to see its next change as a transition.
struct Known {
    state: JobState,
    attempts: u32,
    leased_at_ms: i64,
}

fn state_name(state: JobState) -> String {
    state.as_str_name().to_lowercase()
}

fn verb_of(job: &Job) -> String {
    job.spec
        .as_ref()
        .map(patchfarm_jobs::verb_name)
        .unwrap_or("none")
        .to_string()
}

fn campaign_of(job: &Job) -> Option<String> {
    job.spec
        .as_ref()
        .map(|s| s.campaign.clone())
        .filter(|c| !c.is_empty())
}

/// Job metrics, kept in step with the applied state.
pub struct JobTally {
    known: Mutex<HashMap<String, Known>>,
    jobs: Family<VerbState, Gauge>,
    campaign_jobs: Family<CampaignState, Gauge>,
    queued: Gauge,
    finished: Family<VerbState, Counter>,
    retries: Family<Verb, Counter>,
    waited: Family<Verb, Histogram>,
    ran: Family<VerbState, Histogram>,
}

fn seconds_histogram() -> Histogram {
    // 50 ms to ~7 h: a no-op lease to a quarter's slowest install.
    Histogram::new(exponential_buckets(0.05, 2.5, 14))
}

impl JobTally {
    pub fn new(registry: &mut Registry) -> Self {
        let tally = JobTally {
            known: Mutex::default(),
            jobs: Family::default(),
            campaign_jobs: Family::default(),
            queued: Gauge::default(),
            finished: Family::default(),
            retries: Family::default(),
            waited: Family::new_with_constructor(seconds_histogram),
            ran: Family::new_with_constructor(seconds_histogram),
        };
        // Zero series from the start, so a rate over them is 0 rather than absent.
        for verb in VERBS {
            drop(tally.retries.get_or_create(&Verb { verb: verb.into() }));
        }
        registry.register(
            "jobs",
            "Jobs in the farm by verb and state",
            tally.jobs.clone(),
        );
        registry.register(
            "campaign_jobs",
            "A campaign's jobs by state (its progress)",
            tally.campaign_jobs.clone(),
        );
        registry.register(
            "queue_depth",
            "Jobs queued, waiting for an agent",
            tally.queued.clone(),
        );
        registry.register(
            "jobs_finished",
            "Jobs that ended (succeeded, failed or cancelled) since this node started",
            tally.finished.clone(),
        );
        registry.register(
            "job_retries",
            "Failed attempts and expired leases that put a job back in the queue",
            tally.retries.clone(),
        );
        registry.register_with_unit(
            "job_queue_wait",
            "From submission (or the last retry) to the lease",
            Unit::Seconds,
            tally.waited.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "From the lease to the job's end, per verb and how it ended",
            Unit::Seconds,
            tally.ran.clone(),
        );
        tally
    }

    fn count(&self, job: &Job, state: JobState, by: i64) {
        let verb = verb_of(job);
        self.jobs
            .get_or_create(&VerbState {
                verb,
                state: state_name(state),
            })
            .inc_by(by);
        if let Some(campaign) = campaign_of(job) {
            self.campaign_jobs
                .get_or_create(&CampaignState {
                    campaign,
                    state: state_name(state),
                })
                .inc_by(by);
        }
        if state == JobState::Queued {
            self.queued.inc_by(by);
        }
    }

    fn follow(&self, job: &Job) {
        let mut known = self.known.lock().expect("job tally lock");
        let new = job.state();
        let before = known
            .get(&job.id)
            .map(|k| (k.state, k.attempts, k.leased_at_ms));
        if before.is_some_and(|(state, attempts, _)| state == new && attempts == job.attempts) {
            return;
        }
        if let Some((old, _, _)) = before {
            self.count(job, old, -1);
        }
        self.count(job, new, 1);
        let verb = verb_of(job);
        let mut leased_at_ms = before.map_or(0, |b| b.2);
        match (before.map(|b| b.0), new) {
            (Some(JobState::Leased), JobState::Queued) => {
                self.retries.get_or_create(&Verb { verb }).inc();
            }
            (old, JobState::Leased) if old != Some(JobState::Leased) => {
                leased_at_ms = job.updated_unix_ms;
                let waited = (job.updated_unix_ms - job.submitted_unix_ms).max(0);
                self.waited
                    .get_or_create(&Verb { verb })
                    .observe(waited as f64 / 1000.0);
            }
            (old, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
                if old.is_some_and(|o| !is_end(o)) =>
            {
                let labels = VerbState {
                    verb,
                    state: state_name(new),
                };
                self.finished.get_or_create(&labels).inc();
                if old == Some(JobState::Leased) && leased_at_ms > 0 {
                    let ran = (job.updated_unix_ms - leased_at_ms).max(0);
                    self.ran.get_or_create(&labels).observe(ran as f64 / 1000.0);
                }
            }
            _ => {}
        }
        // An ended job changes no more: forgetting it keeps the tally's memory to open jobs.
        if is_end(new) {
            known.remove(&job.id);
        } else {
            known.insert(
                job.id.clone(),
                Known {
                    state: new,
                    attempts: job.attempts,
                    leased_at_ms,
                },
            );
        }
    }
}

fn is_end(state: JobState) -> bool {
    matches!(
        state,
        JobState::Succeeded | JobState::Failed | JobState::Cancelled
    )
}

impl Observer for JobTally {
    /// Recounts the gauges from the state as it is; the counters and histograms go on.
    fn rebuild(&self, state: &StateMachine) -> Result<(), StateError> {
        let jobs = state.jobs("", 0, |_| true)?;
        let mut known = self.known.lock().expect("job tally lock");
        known.clear();
        self.jobs.clear();
        self.campaign_jobs.clear();
        self.queued.set(0);
        for job in jobs {
            self.count(&job, job.state(), 1);
            if is_end(job.state()) {
                continue;
            }
            let leased_at_ms = if job.state() == JobState::Leased {
                job.updated_unix_ms
            } else {
                0
            };
            known.insert(
                job.id.clone(),
                Known {
                    state: job.state(),
                    attempts: job.attempts,
                    leased_at_ms,
                },
            );
        }
        Ok(())
    }

    fn observe(&self, change: &Change, state: &StateMachine) {
        match change {
            Change::Job(job) => self.follow(job),
            Change::Reset => {
                if let Err(e) = self.rebuild(state) {
                    tracing::error!(error = %e, "job metrics cannot re-read the state");
                }
            }
            _ => {}
        }
    }
}
