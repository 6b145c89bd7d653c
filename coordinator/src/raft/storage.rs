//! Raft's durable half on sled: log entries, HardState, ConfState and the compaction point, next
//! to the state machine's tree in the same database so one flush per Ready covers both.
//!
//! sled 0.34's flush is `sync_file_range`, not fsync: a flushed Ready survives `kill -9` of the
//! process (tested); `super::durable` completes each flush with `fdatasync` (and syncs sled's
//! blob files) so it survives a power cut too.

use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::state::StateMachine;

const HARD_STATE: &[u8] = b"hard_state";
const CONF_STATE: &[u8] = b"conf_state";
/// Index and term of the last entry removed from the log (the compaction point).
const COMPACTED: &[u8] = b"compacted";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("raft storage (sled): {0}")]
    Sled(#[from] sled::Error),
    #[error("raft storage holds an undecodable {what}: {source}")]
    Decode {
        what: &'static str,
        source: protobuf::ProtobufError,
    },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// The log and raft metadata; implements `raft::Storage` for the node's `RawNode`.
pub struct SledStorage {
    log: sled::Tree,
    meta: sled::Tree,
    state: StateMachine,
    hard_state: HardState,
    conf_state: ConfState,
    compacted: (u64, u64),
    last_index: u64,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn decode<M: protobuf::Message>(what: &'static str, bytes: &[u8]) -> Result<M, StoreError> {
    M::parse_from_bytes(bytes).map_err(|source| StoreError::Decode { what, source })
}

fn encode<M: protobuf::Message>(message: &M) -> Vec<u8> {
    message
        .write_to_bytes()
        .expect("raft messages always encode")
}

fn store_err(e: StoreError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

/// A new cluster's first members start from the same snapshot at index 1 (term 1) holding the
/// membership, as raft-rs's examples bootstrap: the log then begins at 2, so a node added later
/// (`--join`, empty log) is sent a snapshot and learns every voter from it. Replaying entries
/// would have taught it only the changes since, and a joiner believing itself alone elects itself.
fn bootstrap(meta: &sled::Tree, state: &StateMachine, voters: &[u64]) -> Result<(), StoreError> {
    let conf_state = ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    };
    let hard_state = HardState {
        term: 1,
        commit: 1,
        ..Default::default()
    };
    let mut compacted = 1u64.to_be_bytes().to_vec();
    compacted.extend_from_slice(&1u64.to_be_bytes());
    meta.insert(COMPACTED, compacted)?;
    meta.insert(HARD_STATE, encode(&hard_state))?;
    state.skip(1)?;
    // Written last: its presence is what marks the store as bootstrapped.
    meta.insert(CONF_STATE, encode(&conf_state))?;
    Ok(())
}

impl SledStorage {
    /// Opens the raft trees of `db`. A fresh store with `initial_voters` starts a new cluster
    /// with those members; a fresh store without them waits to be added by a leader.
    pub fn open(
        db: &sled::Db,
        state: StateMachine,
        initial_voters: &[u64],
    ) -> Result<Self, StoreError> {
        let log = db.open_tree("raft_log")?;
        let meta = db.open_tree("raft_meta")?;
        if meta.get(CONF_STATE)?.is_none() && !initial_voters.is_empty() {
            bootstrap(&meta, &state, initial_voters)?;
        }
        let hard_state = match meta.get(HARD_STATE)? {
            Some(bytes) => decode("HardState", &bytes)?,
            None => HardState::default(),
        };
        let conf_state = match meta.get(CONF_STATE)? {
            Some(bytes) => decode("ConfState", &bytes)?,
            None => ConfState::default(),
        };
        let compacted = match meta.get(COMPACTED)? {
            Some(bytes) if bytes.len() == 16 => (
                u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
                u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes")),
            ),
            _ => (0, 0),
        };
        let last_index = match log.last()? {
            Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])),
            None => compacted.0,
        };
        Ok(SledStorage {
            log,
            meta,
            state,
            hard_state,
            conf_state,
            compacted,
            last_index,
        })
    }

    pub fn state(&self) -> &StateMachine {
        &self.state
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Appends entries from a Ready, replacing any conflicting suffix.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for stale in first.index..=self.last_index {
            batch.remove(&key(stale));
        }
        for entry in entries {
            batch.insert(&key(entry.index), encode(entry));
        }
        self.log.apply_batch(batch)?;
        self.last_index = entries.last().map(|e| e.index).unwrap_or(self.last_index);
        Ok(())
    }

    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StoreError> {
        self.hard_state = hs.clone();
        self.meta.insert(HARD_STATE, encode(hs))?;
        Ok(())
    }

    pub fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        let mut hs = self.hard_state.clone();
        hs.commit = commit;
        self.set_hard_state(&hs)
    }

    pub fn set_conf_state(&mut self, cs: &ConfState) -> Result<(), StoreError> {
        self.conf_state = cs.clone();
        self.meta.insert(CONF_STATE, encode(cs))?;
        Ok(())
    }

    /// Installs a snapshot from the leader: the state machine is replaced and the log restarts
    /// after the snapshot's index.
    pub fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let meta = snapshot.get_metadata();
        self.state.restore(&snapshot.data, meta.index)?;
        self.log.clear()?;
        self.set_compacted(meta.index, meta.term)?;
        self.last_index = meta.index;
        self.set_conf_state(meta.get_conf_state())?;
        let mut hs = self.hard_state.clone();
        hs.term = hs.term.max(meta.term);
        hs.commit = hs.commit.max(meta.index);
        self.set_hard_state(&hs)?;
        Ok(())
    }

    /// Drops log entries up to `index` (already applied and captured by the state machine).
    pub fn compact(&mut self, index: u64) -> Result<(), StoreError> {
        if index <= self.compacted.0 || index > self.last_index {
            return Ok(());
        }
        let term = self.term(index).map_err(|_| StoreError::Decode {
            what: "log entry term",
            source: protobuf::ProtobufError::MessageNotInitialized {
                message: "entry missing below the applied index",
            },
        })?;
        let mut batch = sled::Batch::default();
        for i in self.compacted.0 + 1..=index {
            batch.remove(&key(i));
        }
        self.log.apply_batch(batch)?;
        self.set_compacted(index, term)
    }

    fn set_compacted(&mut self, index: u64, term: u64) -> Result<(), StoreError> {
        let mut bytes = index.to_be_bytes().to_vec();
        bytes.extend_from_slice(&term.to_be_bytes());
        self.meta.insert(COMPACTED, bytes)?;
        self.compacted = (index, term);
        Ok(())
    }

    pub fn compacted_index(&self) -> u64 {
        self.compacted.0
    }

    fn entry(&self, index: u64) -> Result<Entry, StoreError> {
        match self.log.get(key(index))? {
            Some(bytes) => decode("log entry", &bytes),
            None => Err(StoreError::Decode {
                what: "log entry",
                source: protobuf::ProtobufError::MessageNotInitialized {
                    message: "entry missing inside the log's range",
                },
            }),
        }
    }
}

impl Storage for SledStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.compacted.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let max_size = max_size.into().unwrap_or(u64::MAX);
        let mut entries = Vec::with_capacity((high - low) as usize);
        let mut size = 0u64;
        for item in self.log.range(key(low)..key(high)) {
            let (_, bytes) = item.map_err(|e| store_err(e.into()))?;
            size += bytes.len() as u64;
            if !entries.is_empty() && size > max_size {
                break;
            }
            entries.push(decode("log entry", &bytes).map_err(store_err)?);
        }
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.compacted.0 {
            return Ok(self.compacted.1);
        }
        if index < self.compacted.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last_index {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        self.entry(index).map(|e| e.term).map_err(store_err)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.compacted.0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index)
    }

    /// A snapshot of the state machine as it is now: everything applied, at the applied index.
    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let (data, applied) = self.state.snapshot().map_err(|e| store_err(e.into()))?;
        let mut meta = SnapshotMetadata {
            index: applied,
            term: self.term(applied)?,
            ..Default::default()
        };
        meta.set_conf_state(self.conf_state.clone());
        let mut snapshot = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        snapshot.set_metadata(meta);
        Ok(snapshot)
    }
}
