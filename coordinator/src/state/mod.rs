//! The replicated state machine: jobs, agents, catalog and peers in one sled tree, changed only by
//! applying committed `Command`s in log order. Applying is deterministic — time comes from the
//! proposer, ids from counters in the tree — and each command's result is stored under its
//! request id, so a proposal retried after a leader change returns the first answer instead of
//! acting twice.

mod agents;
mod campaigns;
mod catalog;
mod jobs;
mod peers;
mod refusal;
mod txn;

pub use refusal::Refusal;
pub(crate) use txn::Txn;

use patchfarm_proto::state::{command::Op, command_result::Outcome, Command, CommandResult};
use patchfarm_proto::v1::{Agent, CatalogEntry, Job, SubmitJobsResponse};
use std::collections::BTreeMap;
use txn::{decode, lean, remembered, u64_of};

/// A command's effect: its value, or the state machine's refusal (nothing changed); `Err` is a
/// storage failure, which stops the node.
pub(crate) type Applied<T> = Result<Result<T, Refusal>, StateError>;

const APPLIED: &[u8] = b"meta/applied";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state machine storage (sled): {0}")]
    Sled(#[from] sled::Error),
    #[error("state machine holds an undecodable {what} under {key}: {source}")]
    Decode {
        what: &'static str,
        key: String,
        source: prost::DecodeError,
    },
    #[error("state snapshot is malformed: {0}")]
    Snapshot(&'static str),
}

/// One change applied to the state, for watchers (`WatchJob`).
#[derive(Clone, Debug)]
pub enum Change {
    Job(Box<Job>),
    Catalog(CatalogEntry),
    CatalogDeleted(String),
    Agent(Agent),
    /// Everything may have changed (a snapshot was installed): re-read the state.
    Reset,
}

/// Follows the state as it is applied, in step with it (the scheduler's memory view): the raft
/// node calls it for every applied change without knowing who listens.
pub trait Observer: Send + Sync {
    /// Rebuilds the view from the state as it is (at start-up).
    fn rebuild(&self, state: &StateMachine) -> Result<(), StateError>;
    /// One applied change (`Change::Reset` after a snapshot replaced everything).
    fn observe(&self, change: &Change, state: &StateMachine);
}

/// Several observers, each told every change in order (the scheduler, the job metrics).
pub struct Observers(pub Vec<std::sync::Arc<dyn Observer>>);

impl Observer for Observers {
    fn rebuild(&self, state: &StateMachine) -> Result<(), StateError> {
        self.0.iter().try_for_each(|o| o.rebuild(state))
    }

    fn observe(&self, change: &Change, state: &StateMachine) {
        for observer in &self.0 {
            observer.observe(change, state);
        }
    }
}

/// Reads and applies the farm's state. Cloning shares the same tree.
#[derive(Clone)]
pub struct StateMachine {
    tree: sled::Tree,
}

impl StateMachine {
    pub fn open(db: &sled::Db) -> Result<Self, StateError> {
        Ok(StateMachine {
            tree: db.open_tree("state")?,
        })
    }

    /// Index of the last applied log entry.
    pub fn applied(&self) -> Result<u64, StateError> {
        Ok(self.tree.get(APPLIED)?.map(|v| u64_of(&v)).unwrap_or(0))
    }

    /// Records that entry `index` carried nothing for the state machine (leader no-ops, conf
    /// changes without a command).
    pub fn skip(&self, index: u64) -> Result<(), StateError> {
        self.tree.insert(APPLIED, &index.to_be_bytes())?;
        Ok(())
    }

    /// Applies the commands of log entry `index` in order, as one sled batch; returns each
    /// command's result and what changed.
    pub fn apply(
        &self,
        index: u64,
        commands: &[Command],
    ) -> Result<Vec<(CommandResult, Vec<Change>)>, StateError> {
        let mut txn = Txn {
            tree: &self.tree,
            pending: BTreeMap::new(),
            undo: Vec::new(),
            changes: Vec::new(),
        };
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            let mark = txn.begin();
            let request_key = format!("req/{}", command.request_id);
            if !command.request_id.is_empty() {
                if let Some(first) = remembered(&txn, &request_key)? {
                    results.push((first, Vec::new()));
                    continue;
                }
            }
            let applied = match &command.op {
                None => Err(Refusal::InvalidArgument("empty command".into())),
                Some(op) => self.apply_op(&mut txn, index, command.now_unix_ms, op)?,
            };
            let outcome = applied.unwrap_or_else(|refusal| {
                // A refused command changes nothing, even if it wrote before refusing.
                txn.rollback(mark);
                refusal.outcome()
            });
            let result = CommandResult {
                outcome: Some(outcome),
            };
            if !command.request_id.is_empty() {
                txn.put(&request_key, &lean(&result));
            }
            results.push((result, txn.changes.split_off(mark)));
        }
        let mut batch = sled::Batch::default();
        for (key, value) in txn.pending {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        batch.insert(APPLIED, &index.to_be_bytes());
        self.tree.apply_batch(batch)?;
        Ok(results)
    }

    fn apply_op(&self, txn: &mut Txn<'_>, index: u64, now: i64, op: &Op) -> Applied<Outcome> {
        Ok(match op {
            Op::SubmitJob(req) => jobs::submit(txn, index, now, req)?.map(Outcome::Job),
            Op::SubmitJobs(batch) => {
                jobs::submit_batch(txn, index, now, &batch.jobs)?.map(Outcome::Submitted)
            }
            Op::CancelJob(req) => {
                jobs::cancel(txn, index, now, &req.id, &req.reason)?.map(Outcome::Job)
            }
            Op::SubmitCampaign(req) => {
                campaigns::submit(txn, index, now, req)?.map(Outcome::Campaign)
            }
            Op::LeaseJobs(req) => jobs::lease(txn, index, now, req)?.map(Outcome::Leased),
            Op::CompleteJob(req) => jobs::complete(txn, index, now, req)?.map(Outcome::Job),
            Op::Progress(req) => jobs::progress(txn, index, now, req)?.map(Outcome::Job),
            Op::ExpireLeases(req) => jobs::expire(txn, index, now, req)?
                .map(|jobs| Outcome::Submitted(SubmitJobsResponse { jobs })),
            Op::RegisterAgent(agent) => Ok(Outcome::Agent(agents::register(txn, now, agent))),
            Op::AgentDown(name) => agents::down(txn, name)?.map(Outcome::Agent),
            Op::CatalogPut(entry) => Ok(Outcome::Entry(catalog::put(txn, entry))),
            Op::CatalogDelete(key) => catalog::delete(txn, key)?.map(Outcome::Done),
            Op::SetPeer(peer) => Ok(Outcome::Done(peers::set(txn, peer))),
        })
    }

    pub fn job(&self, id: &str) -> Result<Option<Job>, StateError> {
        self.get("job", &format!("job/{id}"))
    }

    /// Jobs in id order (= submission order), after `after`, at most `limit` (0 = all).
    pub fn jobs(
        &self,
        after: &str,
        limit: usize,
        filter: impl Fn(&Job) -> bool,
    ) -> Result<Vec<Job>, StateError> {
        let start = format!("job/{after}\u{0}");
        let mut out = Vec::new();
        for item in self.tree.range(start.as_bytes()..b"job0".as_slice()) {
            let (k, v) = item?;
            let job: Job = decode("job", &String::from_utf8_lossy(&k), &v)?;
            if filter(&job) {
                out.push(job);
                if limit > 0 && out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Jobs waiting in the queue, in submission order.
    pub fn queued_jobs(&self) -> Result<Vec<Job>, StateError> {
        self.indexed_jobs("queue/")
    }

    /// Jobs under a lease.
    pub fn leased_jobs(&self) -> Result<Vec<Job>, StateError> {
        self.indexed_jobs("leased/")
    }

    fn indexed_jobs(&self, prefix: &str) -> Result<Vec<Job>, StateError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, _) = item?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(job) = self.job(&id)? {
                out.push(job);
            }
        }
        Ok(out)
    }

    pub(crate) fn get<M: prost::Message + Default>(
        &self,
        what: &'static str,
        key: &str,
    ) -> Result<Option<M>, StateError> {
        self.tree
            .get(key)?
            .map(|v| decode(what, key, &v))
            .transpose()
    }

    pub(crate) fn list<M: prost::Message + Default>(
        &self,
        what: &'static str,
        prefix: &str,
    ) -> Result<Vec<M>, StateError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item?;
            out.push(decode(what, &String::from_utf8_lossy(&k), &v)?);
        }
        Ok(out)
    }

    /// Everything, for a raft snapshot: (encoded key/value pairs, applied index).
    pub fn snapshot(&self) -> Result<(Vec<u8>, u64), StateError> {
        let applied = self.applied()?;
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            for part in [k.as_ref(), v.as_ref()] {
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        Ok((out, applied))
    }

    /// Replaces everything with a snapshot's content.
    pub fn restore(&self, data: &[u8], index: u64) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for item in self.tree.iter() {
            batch.remove(item?.0);
        }
        let mut rest = data;
        let take = |rest: &mut &[u8]| -> Result<Vec<u8>, StateError> {
            if rest.len() < 4 {
                return Err(StateError::Snapshot("truncated length"));
            }
            let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            if rest.len() < 4 + len {
                return Err(StateError::Snapshot("truncated value"));
            }
            let part = rest[4..4 + len].to_vec();
            *rest = &rest[4 + len..];
            Ok(part)
        };
        while !rest.is_empty() {
            let k = take(&mut rest)?;
            let v = take(&mut rest)?;
            batch.insert(k, v);
        }
        batch.insert(APPLIED, &index.to_be_bytes());
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
