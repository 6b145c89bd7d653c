//! The replicated state machine: jobs, agents, catalog and peers in one sled tree, changed only by
//! applying committed `Command`s in log order. Applying is deterministic — time comes from the
//! proposer, ids from counters in the tree — and each command's result is stored under its
//! request id, so a proposal retried after a leader change returns the first answer instead of
//! acting twice.

mod jobs;

use patchfarm_proto::state::{command::Op, command_result::Outcome, Command, CommandResult};
use patchfarm_proto::v1::{Agent, CatalogEntry, Job};

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
    Job(Job),
}

/// Reads and applies the farm's state. Cloning shares the same tree.
#[derive(Clone)]
pub struct StateMachine {
    tree: sled::Tree,
}

/// Writes of one command, applied atomically together with the applied index.
pub(crate) struct Txn<'a> {
    tree: &'a sled::Tree,
    batch: sled::Batch,
    pending: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>,
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

    pub(crate) fn put<M: prost::Message>(&mut self, key: &str, value: &M) {
        let bytes = value.encode_to_vec();
        self.batch.insert(key.as_bytes(), bytes.clone());
        self.pending.insert(key.as_bytes().to_vec(), Some(bytes));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.batch.remove(key.as_bytes());
        self.pending.insert(key.as_bytes().to_vec(), None);
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
        self.batch.insert(key.as_bytes(), &next.to_be_bytes());
        self.pending
            .insert(key.into_bytes(), Some(next.to_be_bytes().to_vec()));
        Ok(next)
    }

    /// Keys under `prefix` as the tree holds them before this command (enough for queue scans:
    /// a command never reads back a queue entry it added itself).
    pub(crate) fn scan_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StateError> {
        let mut keys = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, _) = item?;
            if matches!(self.pending.get(k.as_ref()), Some(None)) {
                continue;
            }
            keys.push(String::from_utf8_lossy(&k).into_owned());
            if keys.len() >= limit {
                break;
            }
        }
        Ok(keys)
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

    /// Applies the command of log entry `index`; returns its result and what changed.
    pub fn apply(
        &self,
        index: u64,
        command: &Command,
    ) -> Result<(CommandResult, Vec<Change>), StateError> {
        let request_key = format!("req/{}", command.request_id);
        let mut txn = Txn {
            tree: &self.tree,
            batch: sled::Batch::default(),
            pending: Default::default(),
            changes: Vec::new(),
        };
        if !command.request_id.is_empty() {
            if let Some(first) = self.remembered(&txn, &request_key)? {
                self.skip(index)?;
                return Ok((first, Vec::new()));
            }
        }
        let outcome = match &command.op {
            None => Outcome::Error("empty command".into()),
            Some(op) => match self.apply_op(&mut txn, index, command.now_unix_ms, op)? {
                Ok(outcome) => outcome,
                Err(refusal) => {
                    // A refused command changes nothing, even if it wrote before refusing.
                    txn.batch = sled::Batch::default();
                    txn.pending.clear();
                    txn.changes.clear();
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
        txn.batch.insert(APPLIED, &index.to_be_bytes());
        let Txn { batch, changes, .. } = txn;
        self.tree.apply_batch(batch)?;
        Ok((result, changes))
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
            Op::CancelJob(req) => jobs::cancel(txn, index, now, &req.id)?.map(Outcome::Job),
            Op::LeaseJobs(req) => jobs::lease(txn, index, now, req)?.map(Outcome::Leased),
            Op::CompleteJob(req) => jobs::complete(txn, index, now, req)?.map(Outcome::Job),
            Op::Progress(req) => jobs::progress(txn, index, now, req)?.map(Outcome::Job),
            Op::CatalogPut(entry) => {
                txn.put(&format!("catalog/{}", entry.key), entry);
                Ok(Outcome::Entry(entry.clone()))
            }
            Op::CatalogDelete(key) => {
                let path = format!("catalog/{key}");
                if txn.get::<CatalogEntry>("catalog entry", &path)?.is_none() {
                    Err(format!("no catalog entry {key:?}"))
                } else {
                    txn.remove(&path);
                    Ok(Outcome::Done(true))
                }
            }
            Op::RegisterAgent(agent) => {
                let mut agent = agent.clone();
                agent.registered_unix_ms = now;
                agent.up = true;
                txn.put(&format!("agent/{}", agent.name), &agent);
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

    pub fn catalog(&self) -> Result<Vec<CatalogEntry>, StateError> {
        self.list("catalog entry", "catalog/")
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
