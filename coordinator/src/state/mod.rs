//! The replicated state machine: jobs, agents, catalog and peers in one sled tree, changed only by
//! applying committed `Command`s in log order. Applying is deterministic — time comes from the
//! proposer, ids from counters in the tree — and each command's result is stored under its
//! request id, so a proposal retried after a leader change returns the first answer instead of
//! acting twice.

mod jobs;

pub use jobs::ended;

use patchfarm_proto::state::{command::Op, command_result::Outcome, Command, CommandResult};
use patchfarm_proto::v1::{Agent, CatalogEntry, Job};
use std::collections::BTreeMap;

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

/// Reads and applies the farm's state. Cloning shares the same tree.
#[derive(Clone)]
pub struct StateMachine {
    tree: sled::Tree,
}

/// A pending write: the value, or `None` for a removal.
type Write = Option<Vec<u8>>;

/// Writes of one log entry (all its commands), applied to sled as one batch together with the
/// applied index. Each command's writes can be undone alone, so a refused command changes nothing
/// while the others of its entry stand.
pub(crate) struct Txn<'a> {
    tree: &'a sled::Tree,
    pending: BTreeMap<Vec<u8>, Write>,
    /// The current command's writes: key and what `pending` held before (`None`: nothing).
    undo: Vec<(Vec<u8>, Option<Write>)>,
    pub(crate) changes: Vec<Change>,
}

impl Txn<'_> {
    pub(crate) fn get<M: prost::Message + Default>(
        &self,
        what: &'static str,
        key: &str,
    ) -> Result<Option<M>, StateError> {
        let bytes = match self.pending.get(key.as_bytes()) {
            Some(v) => v.clone(),
            None => self.tree.get(key)?.map(|v| v.to_vec()),
        };
        bytes.map(|b| decode(what, key, &b)).transpose()
    }

    fn write(&mut self, key: Vec<u8>, value: Write) {
        let before = self.pending.insert(key.clone(), value);
        self.undo.push((key, before));
    }

    pub(crate) fn put<M: prost::Message>(&mut self, key: &str, value: &M) {
        self.write(key.as_bytes().to_vec(), Some(value.encode_to_vec()));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.write(key.as_bytes().to_vec(), None);
    }

    /// Next value of a named counter (job ids, fencing tokens).
    pub(crate) fn next(&mut self, counter: &str) -> Result<u64, StateError> {
        let key = format!("seq/{counter}");
        let current = match self.pending.get(key.as_bytes()) {
            Some(Some(v)) => u64_of(v),
            Some(None) => 0,
            None => self.tree.get(&key)?.map(|v| u64_of(&v)).unwrap_or(0),
        };
        let next = current + 1;
        self.write(key.into_bytes(), Some(next.to_be_bytes().to_vec()));
        Ok(next)
    }

    /// The first `limit` keys under `prefix`, this entry's own writes included.
    pub(crate) fn scan_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StateError> {
        let mut keys = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, _) = item?;
            if matches!(self.pending.get(k.as_ref()), Some(None)) {
                continue;
            }
            keys.push(k.to_vec());
            if keys.len() >= limit {
                break;
            }
        }
        let added = self
            .pending
            .range(prefix.as_bytes().to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone());
        keys.extend(added);
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        Ok(keys
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// Starts a command: its writes are the ones `rollback` would undo.
    fn begin(&mut self) -> usize {
        self.undo.clear();
        self.changes.len()
    }

    fn rollback(&mut self, changes_mark: usize) {
        while let Some((key, before)) = self.undo.pop() {
            match before {
                Some(value) => self.pending.insert(key, value),
                None => self.pending.remove(&key),
            };
        }
        self.changes.truncate(changes_mark);
    }
}

/// What is remembered under a request id: a job by its id (the job record already holds it).
fn lean(result: &CommandResult) -> CommandResult {
    match &result.outcome {
        Some(Outcome::Job(job)) => CommandResult {
            outcome: Some(Outcome::JobId(job.id.clone())),
        },
        _ => result.clone(),
    }
}

fn u64_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

fn decode<M: prost::Message + Default>(
    what: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<M, StateError> {
    M::decode(bytes).map_err(|source| StateError::Decode {
        what,
        key: key.to_string(),
        source,
    })
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
                if let Some(first) = self.remembered(&txn, &request_key)? {
                    results.push((first, Vec::new()));
                    continue;
                }
            }
            let outcome = match &command.op {
                None => Outcome::Error("empty command".into()),
                Some(op) => match self.apply_op(&mut txn, index, command.now_unix_ms, op)? {
                    Ok(outcome) => outcome,
                    Err(refusal) => {
                        // A refused command changes nothing, even if it wrote before refusing.
                        txn.rollback(mark);
                        Outcome::Error(refusal)
                    }
                },
            };
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

    /// The first result of a request id, with a remembered job id turned back into the job.
    fn remembered(&self, txn: &Txn<'_>, key: &str) -> Result<Option<CommandResult>, StateError> {
        let Some(result) = txn.get::<CommandResult>("result", key)? else {
            return Ok(None);
        };
        if let Some(Outcome::JobId(id)) = &result.outcome {
            let job = txn
                .get::<Job>("job", &format!("job/{id}"))?
                .unwrap_or_default();
            return Ok(Some(CommandResult {
                outcome: Some(Outcome::Job(job)),
            }));
        }
        Ok(Some(result))
    }

    fn apply_op(
        &self,
        txn: &mut Txn<'_>,
        index: u64,
        now: i64,
        op: &Op,
    ) -> Result<Result<Outcome, String>, StateError> {
        Ok(match op {
            Op::SubmitJob(req) => jobs::submit(txn, index, now, req)?.map(Outcome::Job),
            Op::SubmitJobs(batch) => {
                let mut submitted = Vec::with_capacity(batch.jobs.len());
                for req in &batch.jobs {
                    let key = format!("req/{}", req.request_id);
                    let job = match self.remembered(txn, &key)?.and_then(|r| r.outcome) {
                        Some(Outcome::Job(job)) => job,
                        _ => match jobs::submit(txn, index, now, req)? {
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
                Ok(Outcome::Submitted(
                    patchfarm_proto::v1::SubmitJobsResponse { jobs: submitted },
                ))
            }
            Op::CancelJob(req) => {
                jobs::cancel(txn, index, now, &req.id, &req.reason)?.map(Outcome::Job)
            }
            Op::SubmitCampaign(req) => {
                let mut campaign = req.campaign.clone().unwrap_or_default();
                campaign.submitted_unix_ms = now;
                let batch = patchfarm_proto::v1::SubmitJobsRequest {
                    jobs: req.jobs.clone(),
                };
                match self.apply_op(txn, index, now, &Op::SubmitJobs(batch))? {
                    Ok(Outcome::Submitted(submitted)) => {
                        txn.put(&format!("campaign/{}", campaign.name), &campaign);
                        Ok(Outcome::Campaign(
                            patchfarm_proto::v1::SubmitCampaignResponse {
                                campaign: Some(campaign),
                                jobs: submitted.jobs,
                            },
                        ))
                    }
                    Ok(_) => Err("campaign jobs applied with an unexpected outcome".into()),
                    Err(refusal) => Err(refusal),
                }
            }
            Op::LeaseJobs(req) => jobs::lease(txn, index, now, req)?.map(Outcome::Leased),
            Op::CompleteJob(req) => jobs::complete(txn, index, now, req)?.map(Outcome::Job),
            Op::Progress(req) => jobs::progress(txn, index, now, req)?.map(Outcome::Job),
            Op::ExpireLeases(req) => jobs::expire(txn, index, now, req)?
                .map(|jobs| Outcome::Submitted(patchfarm_proto::v1::SubmitJobsResponse { jobs })),
            Op::AgentDown(name) => {
                let key = format!("agent/{name}");
                match txn.get::<Agent>("agent", &key)? {
                    None => Err(format!("no agent {name:?}")),
                    Some(mut agent) => {
                        agent.up = false;
                        txn.put(&key, &agent);
                        txn.changes.push(Change::Agent(agent.clone()));
                        Ok(Outcome::Agent(agent))
                    }
                }
            }
            Op::CatalogPut(entry) => {
                txn.put(&format!("catalog/{}", entry.key), entry);
                txn.changes.push(Change::Catalog(entry.clone()));
                Ok(Outcome::Entry(entry.clone()))
            }
            Op::CatalogDelete(key) => {
                let path = format!("catalog/{key}");
                if txn.get::<CatalogEntry>("catalog entry", &path)?.is_none() {
                    Err(format!("no catalog entry {key:?}"))
                } else {
                    txn.remove(&path);
                    txn.changes.push(Change::CatalogDeleted(key.clone()));
                    Ok(Outcome::Done(true))
                }
            }
            Op::RegisterAgent(agent) => {
                let mut agent = agent.clone();
                agent.registered_unix_ms = now;
                agent.up = true;
                txn.put(&format!("agent/{}", agent.name), &agent);
                txn.changes.push(Change::Agent(agent.clone()));
                Ok(Outcome::Agent(agent))
            }
            Op::SetPeer(peer) => {
                let key = format!("peer/{:020}", peer.id);
                if peer.remove {
                    txn.remove(&key);
                } else {
                    txn.put(&key, peer);
                }
                Ok(Outcome::Done(true))
            }
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

    pub fn catalog(&self) -> Result<Vec<CatalogEntry>, StateError> {
        self.list("catalog entry", "catalog/")
    }

    pub fn campaigns(&self) -> Result<Vec<patchfarm_proto::v1::Campaign>, StateError> {
        self.list("campaign", "campaign/")
    }

    pub fn agents(&self) -> Result<Vec<Agent>, StateError> {
        self.list("agent", "agent/")
    }

    /// Peers added at run time: id → address.
    pub fn peers(&self) -> Result<Vec<(u64, String)>, StateError> {
        let peers: Vec<patchfarm_proto::state::SetPeer> = self.list("peer", "peer/")?;
        Ok(peers.into_iter().map(|p| (p.id, p.address)).collect())
    }

    fn get<M: prost::Message + Default>(
        &self,
        what: &'static str,
        key: &str,
    ) -> Result<Option<M>, StateError> {
        self.tree
            .get(key)?
            .map(|v| decode(what, key, &v))
            .transpose()
    }

    fn list<M: prost::Message + Default>(
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
