//! The raft node: one tokio task owns the `RawNode` and its storage. Everything else talks to it
//! through `NodeHandle` (channels, never the node itself). `Node::on_ready` is the whole
//! consensus loop in the order raft-rs requires, one comment per step.

use super::handle::NodeHandle;
use super::messages::{LocalStatus, Msg, NodeError, Reply};
use super::metrics::Metrics;
use super::storage::SledStorage;
use super::transport::Transport;
use crate::state::{Change, Observer, StateMachine};
use patchfarm_proto::state::{Command, CommandBatch, SetPeer};
use prost::Message as _;
use protobuf::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, Entry, EntryType};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// One raft tick. Elections time out after 10–20 ticks, heartbeats go every 2.
pub const TICK: Duration = Duration::from_millis(50);
/// Apply this many entries beyond the compaction point before compacting the log again.
pub const COMPACT_AFTER: u64 = 20_000;

pub(crate) struct Node {
    id: u64,
    raw: RawNode<SledStorage>,
    db: sled::Db,
    inbox: mpsc::Receiver<Msg>,
    transport: Transport,
    waiting: HashMap<String, Vec<Reply>>,
    /// Proposals gathered this round; they become one log entry.
    unproposed: Vec<(Command, Reply)>,
    reads_unsent: Vec<oneshot::Sender<()>>,
    reads_asked: HashMap<Vec<u8>, Vec<oneshot::Sender<()>>>,
    reads_until_applied: Vec<(u64, oneshot::Sender<()>)>,
    next_read: u64,
    applied: u64,
    compact_after: u64,
    removed: bool,
    status: watch::Sender<LocalStatus>,
    changes: broadcast::Sender<Change>,
    /// Follows every applied change synchronously (no lag, unlike the broadcast).
    observer: Arc<dyn Observer>,
    metrics: Arc<Metrics>,
    durable: Option<Arc<std::sync::Mutex<super::durable::DurableFlush>>>,
}

/// What the composition root hands a node: its metrics, peers, inbox and change observer.
pub(crate) struct Wiring {
    pub metrics: Arc<Metrics>,
    pub transport: Transport,
    pub inbox: (mpsc::Sender<Msg>, mpsc::Receiver<Msg>),
    /// The scheduler's view, kept in step with every applied change.
    pub observer: Arc<dyn Observer>,
    /// Syncs what sled flushed (`None`: a temporary database in tests).
    pub durable: Option<super::durable::DurableFlush>,
}

/// Opens (or bootstraps) node `id` on `db` and returns its task and handle.
pub(crate) fn open(
    id: u64,
    db: sled::Db,
    initial_voters: &[u64],
    compact_after: u64,
    wiring: Wiring,
) -> Result<(Node, NodeHandle), NodeError> {
    let Wiring {
        metrics,
        transport,
        inbox,
        observer,
        durable,
    } = wiring;
    let state = StateMachine::open(&db)?;
    observer.rebuild(&state)?;
    let storage = SledStorage::open(&db, state.clone(), initial_voters)?;
    let applied = state.applied()?;
    let config = Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        applied,
        max_size_per_msg: 4 << 20,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    let logger = slog::Logger::root(super::slog_bridge::SlogToTracing, slog::o!("node" => id));
    let raw = RawNode::new(&config, storage, &logger)?;
    for (peer, address) in state.peers()? {
        transport.set_peer(peer, &address);
    }
    let (status_tx, status_rx) = watch::channel(LocalStatus::default());
    let (changes, _) = broadcast::channel(1024);
    let handle = NodeHandle {
        id,
        inbox: inbox.0,
        state,
        status: status_rx,
        changes: changes.clone(),
        metrics: metrics.clone(),
        transport: transport.clone(),
    };
    let node = Node {
        id,
        raw,
        db,
        inbox: inbox.1,
        transport,
        waiting: HashMap::new(),
        unproposed: Vec::new(),
        reads_unsent: Vec::new(),
        reads_asked: HashMap::new(),
        reads_until_applied: Vec::new(),
        next_read: 0,
        applied,
        compact_after: compact_after.max(1),
        removed: false,
        status: status_tx,
        changes,
        observer,
        metrics,
        durable: durable.map(|d| Arc::new(std::sync::Mutex::new(d))),
    };
    Ok((node, handle))
}

impl Node {
    /// Runs until `shutdown` or until this node is removed from the cluster.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) -> Result<(), NodeError> {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        self.publish_status();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    self.raw.tick();
                    ticks += 1;
                    if ticks.is_multiple_of(20) {
                        self.forget_abandoned_waiters();
                    }
                }
                msg = self.inbox.recv() => {
                    let Some(msg) = msg else { break };
                    self.handle(msg);
                    // Take everything already queued: one Ready (one flush) for the whole batch.
                    for _ in 0..4096 {
                        match self.inbox.try_recv() {
                            Ok(msg) => self.handle(msg),
                            Err(_) => break,
                        }
                    }
                }
            }
            self.propose_gathered();
            self.ask_read_index();
            if self.raw.has_ready() {
                self.on_ready().await?;
            }
            if self.removed {
                tracing::warn!(
                    node = self.id,
                    "this node was removed from the cluster; stopping raft"
                );
                break;
            }
        }
        Ok(())
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Propose { command, reply } => {
                self.metrics.proposals.fetch_add(1, Ordering::Relaxed);
                self.unproposed.push((command, reply));
            }
            Msg::ChangeMembers {
                change,
                command,
                reply,
            } => {
                let request_id = command.request_id.clone();
                match self
                    .raw
                    .propose_conf_change(command.encode_to_vec(), change)
                {
                    Ok(()) => self.waiting.entry(request_id).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::NotCommitted(e.to_string())));
                    }
                }
            }
            Msg::ReadIndex { reply } => self.reads_unsent.push(reply),
            Msg::Raft(messages) => {
                for m in messages {
                    self.metrics.raft_received.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = self.raw.step(m) {
                        tracing::debug!(node = self.id, error = %e, "raft message ignored");
                    }
                }
            }
            Msg::Unreachable(peer) => self.raw.report_unreachable(peer),
            Msg::TransferLeader(to) => self.raw.transfer_leader(to),
            Msg::SnapshotDone { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status)
            }
        }
    }

    /// Everything proposed this round goes into the log as one entry.
    fn propose_gathered(&mut self) {
        if self.unproposed.is_empty() {
            return;
        }
        let gathered = std::mem::take(&mut self.unproposed);
        let batch = CommandBatch {
            commands: gathered.iter().map(|(c, _)| c.clone()).collect(),
        };
        match self.raw.propose(vec![], batch.encode_to_vec()) {
            Ok(()) => {
                for (command, reply) in gathered {
                    self.waiting
                        .entry(command.request_id)
                        .or_default()
                        .push(reply);
                }
            }
            Err(e) => {
                for (_, reply) in gathered {
                    let _ = reply.send(Err(NodeError::NotCommitted(e.to_string())));
                }
            }
        }
    }

    /// Reads that arrived since the last round share one ReadIndex request (all of them arrived
    /// before it was asked, so the index it returns is current for each).
    fn ask_read_index(&mut self) {
        if self.reads_unsent.is_empty() {
            return;
        }
        self.next_read += 1;
        let ctx = self.next_read.to_be_bytes().to_vec();
        self.raw.read_index(ctx.clone());
        self.reads_asked
            .insert(ctx, std::mem::take(&mut self.reads_unsent));
    }

    /// One Ready, in raft-rs's order.
    async fn on_ready(&mut self) -> Result<(), NodeError> {
        let mut ready = self.raw.ready();

        // 1. Messages a leader may send before persisting (appends to followers, heartbeats).
        self.transport.send(ready.take_messages());

        // 2. A snapshot from the leader replaces the state machine and restarts the log.
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.raw.mut_store().apply_snapshot(&snapshot)?;
            self.applied = snapshot.get_metadata().index;
            self.observer
                .observe(&Change::Reset, self.raw.store().state());
            self.metrics
                .snapshots_installed
                .fetch_add(1, Ordering::Relaxed);
            self.refresh_peers()?;
        }

        // 3. ReadIndex answers: serve once this node has applied up to the returned index.
        for read in ready.take_read_states() {
            if let Some(readers) = self.reads_asked.remove(&read.request_ctx) {
                for reader in readers {
                    self.reads_until_applied.push((read.index, reader));
                }
            }
        }

        // 4. Persist new entries and the HardState, then one flush for the whole Ready.
        self.raw.mut_store().append(ready.entries())?;
        if let Some(hard_state) = ready.hs() {
            self.raw.mut_store().set_hard_state(hard_state)?;
        }
        if ready.must_sync() {
            self.db.flush_async().await?;
            if let Some(durable) = &self.durable {
                let durable = durable.clone();
                tokio::task::spawn_blocking(move || {
                    durable.lock().expect("durable flush lock").sync()
                })
                .await
                .expect("durable flush task")
                .map_err(NodeError::Sync)?;
            }
        }

        // 5. Messages that may only leave once the entries above are durable (votes, acks).
        self.transport.send(ready.take_persisted_messages());

        // 6. Apply what is committed.
        self.apply(ready.take_committed_entries())?;

        // 7. Role or leader changes.
        if let Some(soft) = ready.ss() {
            tracing::info!(
                node = self.id,
                term = self.raw.raft.term,
                role = role_name(soft.raft_state),
                leader = soft.leader_id,
                "raft role"
            );
        }

        // 8. Advance; the LightReady carries the new commit index and what it made committed.
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        self.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();

        self.release_reads();
        self.maybe_compact()?;
        self.publish_status();
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        for entry in entries {
            self.applied = entry.index;
            self.metrics.applied.fetch_add(1, Ordering::Relaxed);
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {
                    self.raw.store().state().skip(entry.index)?
                }
                EntryType::EntryNormal => {
                    let batch = CommandBatch::decode(entry.data.as_ref())
                        .map_err(|e| NodeError::Corrupt(format!("entry {}: {e}", entry.index)))?;
                    self.apply_commands(entry.index, &batch.commands)?;
                }
                EntryType::EntryConfChange => self.apply_conf_change(&entry)?,
                EntryType::EntryConfChangeV2 => {
                    return Err(NodeError::Corrupt(format!(
                        "entry {} is a joint conf change, which patchfarm never proposes",
                        entry.index
                    )))
                }
            }
        }
        Ok(())
    }

    fn apply_commands(&mut self, index: u64, commands: &[Command]) -> Result<(), NodeError> {
        let results = self.raw.store().state().apply(index, commands)?;
        for (command, (result, changes)) in commands.iter().zip(results) {
            for change in changes {
                self.observer.observe(&change, self.raw.store().state());
                let _ = self.changes.send(change);
            }
            if let Some(waiters) = self.waiting.remove(&command.request_id) {
                for waiter in waiters {
                    let _ = waiter.send(Ok(result.clone()));
                }
            }
        }
        Ok(())
    }

    fn apply_conf_change(&mut self, entry: &Entry) -> Result<(), NodeError> {
        let change = ConfChange::parse_from_bytes(&entry.data)
            .map_err(|e| NodeError::Corrupt(format!("conf change {}: {e}", entry.index)))?;
        let conf_state = self.raw.apply_conf_change(&change)?;
        self.raw.mut_store().set_conf_state(&conf_state)?;
        // Whoever waits for this change reads the membership next: publish it first.
        self.publish_status();
        let command = Command::decode(entry.context.as_ref())
            .map_err(|e| NodeError::Corrupt(format!("conf change {} context: {e}", entry.index)))?;
        self.apply_commands(entry.index, std::slice::from_ref(&command))?;
        let peer = change.node_id;
        match change.get_change_type() {
            ConfChangeType::RemoveNode => {
                self.transport.remove_peer(peer);
                if peer == self.id {
                    self.removed = true;
                }
            }
            _ => {
                if let Some(patchfarm_proto::state::command::Op::SetPeer(SetPeer {
                    address, ..
                })) = &command.op
                {
                    self.transport.set_peer(peer, address);
                }
            }
        }
        tracing::info!(node = self.id, voters = ?conf_state.voters, "membership changed");
        Ok(())
    }

    fn refresh_peers(&mut self) -> Result<(), NodeError> {
        for (peer, address) in self.raw.store().state().peers()? {
            self.transport.set_peer(peer, &address);
        }
        Ok(())
    }

    fn release_reads(&mut self) {
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_until_applied)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_until_applied = waiting;
        for (_, reader) in ready {
            let _ = reader.send(());
        }
    }

    fn maybe_compact(&mut self) -> Result<(), NodeError> {
        // Keep a tenth of the window, so briefly lagging followers catch up without a snapshot.
        let keep = self.compact_after / 10;
        let store = self.raw.mut_store();
        if self.applied > store.compacted_index() + self.compact_after {
            store.compact(self.applied - keep)?;
        }
        Ok(())
    }

    /// Callers that gave up (timed out, disconnected) no longer need an answer.
    fn forget_abandoned_waiters(&mut self) {
        self.waiting.retain(|_, waiters| {
            waiters.retain(|w| !w.is_closed());
            !waiters.is_empty()
        });
    }

    fn publish_status(&self) {
        let raft = &self.raw.raft;
        let status = LocalStatus {
            id: self.id,
            role: if self.removed {
                "removed"
            } else {
                role_name(raft.state)
            },
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: self.applied,
            leader: raft.leader_id,
            voters: self.raw.store().conf_state().voters.clone(),
        };
        self.metrics.term.store(status.term, Ordering::Relaxed);
        self.metrics.commit.store(status.commit, Ordering::Relaxed);
        self.metrics
            .applied_index
            .store(status.applied, Ordering::Relaxed);
        self.metrics
            .is_leader
            .store((raft.state == StateRole::Leader) as u64, Ordering::Relaxed);
        self.status.send_replace(status);
    }
}

pub fn role_name(role: StateRole) -> &'static str {
    match role {
        StateRole::Leader => "leader",
        StateRole::Follower => "follower",
        StateRole::Candidate => "candidate",
        StateRole::PreCandidate => "pre-candidate",
    }
}
