//! Job transitions: submit → QUEUED → LEASED (fencing token) → SUCCEEDED | FAILED, re-queued on
//! a failed attempt while attempts remain, CANCELLED from any live state. `queue/` keys keep the
//! queued jobs in submission order so leasing never scans finished jobs.

use super::{Change, StateError, Txn};
use patchfarm_proto::state::LeaseJobs;
use patchfarm_proto::v1::{
    CompleteRequest, Job, JobState, Lease, LeaseResponse, ProgressRequest, SubmitJobRequest,
};

/// Attempts a job gets when its spec does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const KNOWN_KINDS: &[&str] = &["create", "update", "rebase", "createAuxImage"];

type Applied<T> = Result<Result<T, String>, StateError>;

fn job_key(id: &str) -> String {
    format!("job/{id}")
}

fn queue_key(id: &str) -> String {
    format!("queue/{id}")
}

fn load(txn: &Txn<'_>, id: &str) -> Result<Option<Job>, StateError> {
    txn.get("job", &job_key(id))
}

fn store(txn: &mut Txn<'_>, index: u64, now: i64, mut job: Job) -> Job {
    job.revision = index;
    job.updated_unix_ms = now;
    txn.put(&job_key(&job.id), &job);
    txn.changes.push(Change::Job(job.clone()));
    job
}

pub fn submit(txn: &mut Txn<'_>, index: u64, now: i64, req: &SubmitJobRequest) -> Applied<Job> {
    let Some(spec) = req.spec.clone() else {
        return Ok(Err("job has no spec".into()));
    };
    if !KNOWN_KINDS.contains(&spec.kind.as_str()) {
        return Ok(Err(format!(
            "unknown job kind {:?} (expected one of {})",
            spec.kind,
            KNOWN_KINDS.join(", ")
        )));
    }
    // Ids sort in submission order: listing and the queue need no timestamps.
    let id = format!("job-{:08}", txn.next("job")?);
    let job = Job {
        id: id.clone(),
        spec: Some(spec),
        state: JobState::Queued as i32,
        request_id: req.request_id.clone(),
        submitted_unix_ms: now,
        ..Default::default()
    };
    txn.put(&queue_key(&id), &patchfarm_proto::v1::Empty {});
    Ok(Ok(store(txn, index, now, job)))
}

pub fn cancel(txn: &mut Txn<'_>, index: u64, now: i64, id: &str) -> Applied<Job> {
    let Some(mut job) = load(txn, id)? else {
        return Ok(Err(format!("no job {id:?}")));
    };
    match job.state() {
        JobState::Queued | JobState::Leased => {
            txn.remove(&queue_key(id));
            job.set_state(JobState::Cancelled);
            Ok(Ok(store(txn, index, now, job)))
        }
        done => Ok(Err(format!(
            "job {id} is already {}",
            done.as_str_name().to_lowercase()
        ))),
    }
}

pub fn lease(txn: &mut Txn<'_>, index: u64, now: i64, req: &LeaseJobs) -> Applied<LeaseResponse> {
    let mut leased = Vec::new();
    for key in txn.scan_keys("queue/", req.max_jobs.max(1) as usize)? {
        let id = key.trim_start_matches("queue/").to_string();
        let Some(mut job) = load(txn, &id)? else {
            continue;
        };
        txn.remove(&key);
        job.attempts += 1;
        job.set_state(JobState::Leased);
        job.lease = Some(Lease {
            agent: req.agent.clone(),
            fencing_token: txn.next("fence")?,
            expires_unix_ms: now + req.lease_ms,
        });
        leased.push(store(txn, index, now, job));
    }
    Ok(Ok(LeaseResponse { jobs: leased }))
}

/// The job, if `token` is its current lease's fencing token; otherwise why not.
fn fenced(txn: &Txn<'_>, id: &str, token: u64) -> Applied<Job> {
    let Some(job) = load(txn, id)? else {
        return Ok(Err(format!("no job {id:?}")));
    };
    let current = job.lease.as_ref().map(|l| l.fencing_token);
    if job.state() != JobState::Leased || current != Some(token) {
        return Ok(Err(format!(
            "stale fencing token {token} for job {id} (job is {}, current token {})",
            job.state().as_str_name().to_lowercase(),
            current.map_or("none".to_string(), |t| t.to_string())
        )));
    }
    Ok(Ok(job))
}

pub fn progress(txn: &mut Txn<'_>, index: u64, now: i64, req: &ProgressRequest) -> Applied<Job> {
    let mut job = match fenced(txn, &req.job_id, req.fencing_token)? {
        Ok(job) => job,
        Err(refusal) => return Ok(Err(refusal)),
    };
    job.progress = req.message.clone();
    Ok(Ok(store(txn, index, now, job)))
}

pub fn complete(txn: &mut Txn<'_>, index: u64, now: i64, req: &CompleteRequest) -> Applied<Job> {
    let mut job = match fenced(txn, &req.job_id, req.fencing_token)? {
        Ok(job) => job,
        Err(refusal) => return Ok(Err(refusal)),
    };
    job.lease = None;
    if req.success {
        job.set_state(JobState::Succeeded);
        job.digests = req.digests.clone();
        job.error.clear();
    } else {
        job.error = req.error.clone();
        let max = job
            .spec
            .as_ref()
            .map(|s| s.max_attempts)
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if job.attempts < max {
            job.set_state(JobState::Queued);
            txn.put(&queue_key(&job.id), &patchfarm_proto::v1::Empty {});
        } else {
            job.set_state(JobState::Failed);
        }
    }
    Ok(Ok(store(txn, index, now, job)))
}
