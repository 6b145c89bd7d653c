//! Job transitions: submit → QUEUED → LEASED (fencing token) → SUCCEEDED | FAILED, re-queued on
//! a failed attempt while attempts remain, CANCELLED from any live state. `queue/` keys keep the
//! queued jobs in submission order so leasing never scans finished jobs.

use super::txn::{lean, remembered};
use super::{Applied, Change, Refusal, StateError, Txn};
use patchfarm_proto::state::{command_result::Outcome, CommandResult, ExpireLeases, LeaseJobs};
use patchfarm_proto::v1::{
    AcceptedCompletion, CompleteRequest, Job, JobState, Lease, LeaseResponse, ProgressRequest,
    SubmitJobRequest, SubmitJobsResponse,
};

/// Attempts a job gets when its spec does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// A job's log keeps its last this many bytes.
const LOG_LIMIT: usize = 64 * 1024;
/// Backoff before a re-queued job may run again: doubles per attempt from this, up to the cap.
const BACKOFF_BASE_MS: i64 = 500;
const BACKOFF_CAP_MS: i64 = 30_000;

fn job_key(id: &str) -> String {
    format!("job/{id}")
}

fn queue_key(id: &str) -> String {
    format!("queue/{id}")
}

fn load(txn: &Txn<'_>, id: &str) -> Result<Option<Job>, StateError> {
    txn.get("job", &job_key(id))
}

fn store(txn: &mut Txn<'_>, index: u64, now: i64, mut job: Job) -> Result<Job, StateError> {
    job.revision = index;
    job.updated_unix_ms = now;
    txn.put(&job_key(&job.id), &job);
    // `leased/` indexes the running jobs, so a new leader finds the leases without a full scan.
    let leased = format!("leased/{}", job.id);
    if job.state() == JobState::Leased {
        txn.put(&leased, &patchfarm_proto::v1::Empty {});
    } else if txn
        .get::<patchfarm_proto::v1::Empty>("lease index", &leased)?
        .is_some()
    {
        txn.remove(&leased);
    }
    txn.changes.push(Change::Job(Box::new(job.clone())));
    Ok(job)
}

pub fn submit(txn: &mut Txn<'_>, index: u64, now: i64, req: &SubmitJobRequest) -> Applied<Job> {
    let Some(spec) = req.spec.clone() else {
        return Ok(Err(Refusal::InvalidArgument("job has no spec".into())));
    };
    // The API validated the verb; an entry without one came from a release that sent argv.
    if spec.verb.is_none() {
        return Ok(Err(Refusal::InvalidArgument(
            "job has no typed verb (a command line from an older release?)".into(),
        )));
    }
    // Dependencies name request ids (a campaign's own, chosen before any job id exists).
    let mut waits_for = Vec::new();
    for after in &spec.after {
        match txn.get::<CommandResult>("result", &format!("req/{after}"))? {
            Some(CommandResult {
                outcome: Some(Outcome::JobId(id)),
            }) => waits_for.push(id),
            _ => {
                return Ok(Err(Refusal::NotFound(format!(
                    "after {after:?}: no job was submitted under that request id"
                ))))
            }
        }
    }
    // Ids sort in submission order: listing and the queue need no timestamps.
    let id = format!("job-{:08}", txn.next("job")?);
    let job = Job {
        id: id.clone(),
        spec: Some(spec),
        state: JobState::Queued as i32,
        request_id: req.request_id.clone(),
        submitted_unix_ms: now,
        waits_for,
        ..Default::default()
    };
    txn.put(&queue_key(&id), &patchfarm_proto::v1::Empty {});
    Ok(Ok(store(txn, index, now, job)?))
}

/// Many submissions in one command (a batch, or a campaign's jobs): each keeps its own request
/// id, so one seen before answers its first job; any refusal refuses the whole batch.
pub fn submit_batch(
    txn: &mut Txn<'_>,
    index: u64,
    now: i64,
    requests: &[SubmitJobRequest],
) -> Applied<SubmitJobsResponse> {
    let mut submitted = Vec::with_capacity(requests.len());
    for req in requests {
        let key = format!("req/{}", req.request_id);
        let job = match remembered(txn, &key)?.and_then(|r| r.outcome) {
            Some(Outcome::Job(job)) => job,
            _ => match submit(txn, index, now, req)? {
                Ok(job) => {
                    txn.put(
                        &key,
                        &lean(&CommandResult {
                            outcome: Some(Outcome::Job(job.clone())),
                        }),
                    );
                    job
                }
                Err(refusal) => return Ok(Err(refusal)),
            },
        };
        submitted.push(job);
    }
    Ok(Ok(SubmitJobsResponse { jobs: submitted }))
}

pub fn cancel(txn: &mut Txn<'_>, index: u64, now: i64, id: &str, reason: &str) -> Applied<Job> {
    let Some(mut job) = load(txn, id)? else {
        return Ok(Err(Refusal::NotFound(format!("no job {id:?}"))));
    };
    match job.state() {
        JobState::Queued | JobState::Leased => {
            txn.remove(&queue_key(id));
            job.set_state(JobState::Cancelled);
            if !reason.is_empty() {
                job.error = reason.to_string();
            }
            Ok(Ok(store(txn, index, now, job)?))
        }
        done => Ok(Err(Refusal::FailedPrecondition(format!(
            "job {id} is already {}",
            done.as_str_name().to_lowercase()
        )))),
    }
}

/// Leases the jobs the scheduler chose (those still queued), or without a choice the oldest
/// `max_jobs` queued ones.
pub fn lease(txn: &mut Txn<'_>, index: u64, now: i64, req: &LeaseJobs) -> Applied<LeaseResponse> {
    let mut leased = Vec::new();
    let ids = if req.job_ids.is_empty() {
        txn.scan_keys("queue/", req.max_jobs.max(1) as usize)?
            .into_iter()
            .map(|key| key.trim_start_matches("queue/").to_string())
            .collect()
    } else {
        req.job_ids.clone()
    };
    for id in ids {
        let Some(mut job) = load(txn, &id)? else {
            continue;
        };
        if job.state() != JobState::Queued {
            continue; // leased, finished or cancelled since the scheduler looked
        }
        txn.remove(&queue_key(&id));
        job.attempts += 1;
        job.set_state(JobState::Leased);
        job.lease = Some(Lease {
            agent: req.agent.clone(),
            fencing_token: txn.next("fence")?,
            expires_unix_ms: now + req.lease_ms,
        });
        leased.push(store(txn, index, now, job)?);
    }
    Ok(Ok(LeaseResponse { jobs: leased }))
}

/// The job, if `token` is its current lease's fencing token; otherwise why not.
fn fenced(txn: &Txn<'_>, id: &str, token: u64) -> Applied<Job> {
    let Some(job) = load(txn, id)? else {
        return Ok(Err(Refusal::NotFound(format!("no job {id:?}"))));
    };
    let current = job.lease.as_ref().map(|l| l.fencing_token);
    if job.state() != JobState::Leased || current != Some(token) {
        return Ok(Err(Refusal::FailedPrecondition(format!(
            "stale fencing token {token} for job {id} (job is {}, current token {})",
            job.state().as_str_name().to_lowercase(),
            current.map_or("none".to_string(), |t| t.to_string())
        ))));
    }
    Ok(Ok(job))
}

pub fn progress(txn: &mut Txn<'_>, index: u64, now: i64, req: &ProgressRequest) -> Applied<Job> {
    let mut job = match fenced(txn, &req.job_id, req.fencing_token)? {
        Ok(job) => job,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if !req.message.is_empty() {
        job.progress = req.message.clone();
    }
    append_log(&mut job, &req.log);
    Ok(Ok(store(txn, index, now, job)?))
}

pub fn complete(txn: &mut Txn<'_>, index: u64, now: i64, req: &CompleteRequest) -> Applied<Job> {
    let checked = if crate::fencing::disabled_for_tests() {
        load(txn, &req.job_id)?.ok_or_else(|| Refusal::NotFound(format!("no job {:?}", req.job_id)))
    } else {
        fenced(txn, &req.job_id, req.fencing_token)?
    };
    let mut job = match checked {
        Ok(job) => job,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let lease = job.lease.take().unwrap_or_default();
    job.completions.push(AcceptedCompletion {
        agent: lease.agent,
        fencing_token: req.fencing_token,
        lease_token: lease.fencing_token,
        success: req.success,
        raft_index: index,
    });
    append_log(&mut job, &req.log);
    if req.success {
        job.set_state(JobState::Succeeded);
        job.digests = req.digests.clone();
        job.outcome = req.outcome.clone();
        job.error.clear();
        job.not_before_unix_ms = 0;
    } else {
        job.error = req.error.clone();
        retry_or_fail(txn, now, &mut job, req.permanent);
    }
    Ok(Ok(store(txn, index, now, job)?))
}

/// Leases the leader saw lapse: each job still held under that token goes back to the queue
/// (after a backoff) or fails once its attempts are spent.
pub fn expire(txn: &mut Txn<'_>, index: u64, now: i64, req: &ExpireLeases) -> Applied<Vec<Job>> {
    let mut expired = Vec::new();
    for fenced_job in &req.jobs {
        let Ok(mut job) = fenced(txn, &fenced_job.job_id, fenced_job.fencing_token)? else {
            continue; // completed or re-leased meanwhile
        };
        let agent = job.lease.take().map(|l| l.agent).unwrap_or_default();
        job.error = format!("lease on agent {agent} lapsed: {}", req.reason);
        let line = format!("{}\n", job.error);
        append_log(&mut job, &line);
        retry_or_fail(txn, now, &mut job, false);
        expired.push(store(txn, index, now, job)?);
    }
    Ok(Ok(expired))
}

/// After a failed attempt: back to the queue with exponential backoff, or FAILED with the last
/// error when attempts are spent or the failure is permanent.
fn retry_or_fail(txn: &mut Txn<'_>, now: i64, job: &mut Job, permanent: bool) {
    let max = job
        .spec
        .as_ref()
        .map(|s| s.max_attempts)
        .filter(|m| *m > 0)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !permanent && job.attempts < max {
        let shift = job.attempts.saturating_sub(1).min(16);
        job.not_before_unix_ms = now + (BACKOFF_BASE_MS << shift).min(BACKOFF_CAP_MS);
        job.set_state(JobState::Queued);
        txn.put(&queue_key(&job.id), &patchfarm_proto::v1::Empty {});
    } else {
        job.set_state(JobState::Failed);
    }
}

fn append_log(job: &mut Job, lines: &str) {
    if lines.is_empty() {
        return;
    }
    job.log.push_str(lines);
    if job.log.len() > LOG_LIMIT {
        let mut cut = job.log.len() - LOG_LIMIT;
        while !job.log.is_char_boundary(cut) {
            cut += 1;
        }
        job.log.drain(..cut);
    }
}
