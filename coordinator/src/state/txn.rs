//! One log entry's writes, staged in memory and applied to sled as one batch with the applied
//! index; each command's writes can be undone alone, so a refused command leaves no trace while
//! the others of its entry stand.

use super::{Change, StateError};
use patchfarm_proto::state::{command_result::Outcome, CommandResult};
use patchfarm_proto::v1::Job;
use std::collections::BTreeMap;

/// A pending write: the value, or `None` for a removal.
type Write = Option<Vec<u8>>;

/// Writes of one log entry (all its commands), applied to sled as one batch together with the
/// applied index. Each command's writes can be undone alone, so a refused command changes nothing
/// while the others of its entry stand.
pub(crate) struct Txn<'a> {
    pub(super) tree: &'a sled::Tree,
    pub(super) pending: BTreeMap<Vec<u8>, Write>,
    /// The current command's writes: key and what `pending` held before (`None`: nothing).
    pub(super) undo: Vec<(Vec<u8>, Option<Write>)>,
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
    pub(super) fn begin(&mut self) -> usize {
        self.undo.clear();
        self.changes.len()
    }

    pub(super) fn rollback(&mut self, changes_mark: usize) {
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
pub(super) fn lean(result: &CommandResult) -> CommandResult {
    match &result.outcome {
        Some(Outcome::Job(job)) => CommandResult {
            outcome: Some(Outcome::JobId(job.id.clone())),
        },
        _ => result.clone(),
    }
}

pub(super) fn u64_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

pub(super) fn decode<M: prost::Message + Default>(
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

/// The first result of a request id, with a remembered job id turned back into the job.
pub(crate) fn remembered(txn: &Txn<'_>, key: &str) -> Result<Option<CommandResult>, StateError> {
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
