//! The scheduler: a memory view of the queue, the leases and the agents, kept in step with the
//! state machine (every applied change passes through `observe`), and the choice of which queued
//! jobs an agent gets. Only the choice is made here; it is recorded through raft as a
//! `LeaseJobs` with explicit job ids, so every node agrees on what was leased.
//!
//! Choice, in order: slots, platform and label constraints, fairness (the group — campaign, or
//! submitter — served least so far goes first), then cache affinity: among a group's oldest
//! eligible jobs, the one whose inputs this agent already holds. A job whose inputs another free
//! agent holds waits for that agent a short while (`affinity_wait_ms`), never longer, so idle
//! agents are not starved (BuildBuddy's executor routing, simplified).

pub mod liveness;
mod needs;

use crate::state::{Change, Observer, StateError, StateMachine};
use patchfarm_proto::v1::{Agent, CatalogEntry, Job, JobState};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Oldest eligible jobs of a group considered for one agent (the affinity window).
const WINDOW: usize = 32;
/// Queued entries of a group looked at (eligible or not) before giving up on it for this call.
const SCAN_BUDGET: usize = 512;

#[derive(Clone, Debug)]
pub struct Options {
    /// Heartbeat TTL floor; grows with the fleet (at most `max_heartbeats_per_s` for all agents).
    pub heartbeat_min_ttl_ms: i64,
    pub max_heartbeats_per_s: i64,
    /// A lease lasts this long past the agent's last heartbeat that listed the job.
    pub lease_ms: i64,
    /// How long a job may wait for an agent that holds its inputs while others are free.
    pub affinity_wait_ms: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            heartbeat_min_ttl_ms: 10_000,
            max_heartbeats_per_s: 50,
            lease_ms: 30_000,
            affinity_wait_ms: 2_000,
        }
    }
}

#[derive(Debug)]
struct Pending {
    group: Arc<str>,
    platform: String,
    constraints: Vec<(String, String)>,
    inputs: Vec<String>,
    /// The job runs a build step whatever its inputs (`--opatchMode opatch`).
    needs_steps: bool,
    /// Its build steps ask for the network (`--buildNetwork`).
    needs_network: bool,
    ready_at: i64,
    /// Jobs that must succeed first (a campaign's DAG).
    waits_for: Vec<String>,
    /// A copy or a rebase onto a pushed base (`patchfarm_jobs::registry_only`).
    registry_only: bool,
}

#[derive(Debug)]
pub(crate) struct LeaseView {
    pub agent: String,
    pub group: Arc<str>,
    pub token: u64,
    pub expires_ms: i64,
    pub registry_only: bool,
}

/// What the leader learns from heartbeats (memory only; lost on a leader change by design).
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub last_seen_ms: i64,
    pub cached: HashSet<String>,
    /// `cached` came from a whole list, so deltas may apply to it.
    pub cached_complete: bool,
    pub cache_bytes: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

#[derive(Debug)]
pub(crate) struct AgentView {
    pub agent: Agent,
    pub live: Option<Live>,
}

#[derive(Default)]
pub(crate) struct View {
    queued: BTreeMap<String, Pending>,
    groups: BTreeMap<Arc<str>, BTreeSet<String>>,
    served: HashMap<Arc<str>, u64>,
    /// Jobs of a group that may run at once (a campaign's maxParallelJobs).
    caps: HashMap<Arc<str>, usize>,
    reserved: HashMap<String, String>,
    pub(crate) leased: HashMap<String, LeaseView>,
    pub(crate) agents: BTreeMap<String, AgentView>,
    catalog: HashMap<String, CatalogEntry>,
    /// How jobs ended, for the dependencies of queued jobs.
    finished: HashMap<String, JobState>,
    /// Leases granted by this node, and how many went to an agent holding all the job's inputs.
    pub(crate) affinity: (u64, u64),
}

impl View {
    fn unqueue(&mut self, id: &str) {
        if let Some(pending) = self.queued.remove(id) {
            if let Some(set) = self.groups.get_mut(&pending.group) {
                set.remove(id);
                if set.is_empty() {
                    self.groups.remove(&pending.group);
                }
            }
        }
    }

    fn job(&mut self, job: &Job) {
        self.unqueue(&job.id);
        self.leased.remove(&job.id);
        let spec = job.spec.clone().unwrap_or_default();
        let group: Arc<str> = if spec.campaign.is_empty() {
            format!("submitter/{}", spec.submitter).into()
        } else {
            format!("campaign/{}", spec.campaign).into()
        };
        if spec.campaign_parallel > 0 {
            self.caps
                .insert(group.clone(), spec.campaign_parallel as usize);
        }
        if matches!(
            job.state(),
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        ) {
            self.finished.insert(job.id.clone(), job.state());
        }
        // Read once: what the scheduler needs of the typed job while it is queued or leased.
        let typed = matches!(job.state(), JobState::Queued | JobState::Leased)
            .then(|| patchfarm_jobs::Job::from_spec(&spec).ok())
            .flatten();
        let registry_only = typed.as_ref().is_some_and(|job| job.registry_only());
        match job.state() {
            JobState::Queued => {
                let needs_steps = typed.as_ref().is_some_and(|job| job.needs_steps());
                let needs_network = typed.as_ref().is_some_and(|job| job.step_network());
                self.groups
                    .entry(group.clone())
                    .or_default()
                    .insert(job.id.clone());
                self.queued.insert(
                    job.id.clone(),
                    Pending {
                        group,
                        platform: spec.platform,
                        constraints: spec.constraints.into_iter().collect(),
                        needs_steps,
                        needs_network,
                        inputs: spec.inputs,
                        ready_at: job.not_before_unix_ms,
                        waits_for: job.waits_for.clone(),
                        registry_only,
                    },
                );
            }
            JobState::Leased => {
                if let Some(lease) = &job.lease {
                    self.leased.insert(
                        job.id.clone(),
                        LeaseView {
                            agent: lease.agent.clone(),
                            group,
                            token: lease.fencing_token,
                            expires_ms: lease.expires_unix_ms,
                            registry_only,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Room left on `agent` for a job of this kind: registry-only jobs run beside the slots
    /// when the agent has registry slots, every other job (and those, without) in its slots.
    fn room(&self, agent: &Agent, registry_only: bool) -> usize {
        let beside = |only: bool| only && agent.registry_slots > 0;
        let leased = self
            .leased
            .values()
            .filter(|l| l.agent == agent.name && beside(l.registry_only) == beside(registry_only))
            .count();
        let reserved = self
            .reserved
            .iter()
            .filter(|(id, a)| {
                **a == agent.name
                    && self
                        .queued
                        .get(*id)
                        .is_some_and(|p| beside(p.registry_only) == beside(registry_only))
            })
            .count();
        let capacity = if beside(registry_only) {
            agent.registry_slots
        } else {
            agent.slots
        } as usize;
        capacity.saturating_sub(leased + reserved)
    }

    /// Share of `inputs` whose content `cached` holds (1.0 for a job without inputs).
    fn affinity(&self, inputs: &[String], cached: &HashSet<String>) -> f64 {
        if inputs.is_empty() {
            return 1.0;
        }
        let held = inputs
            .iter()
            .filter(|key| {
                self.catalog
                    .get(*key)
                    .is_some_and(|e| cached.contains(&e.digest))
            })
            .count();
        held as f64 / inputs.len() as f64
    }

    fn eligible(&self, pending: &Pending, agent: &Agent, now: i64) -> bool {
        pending.ready_at <= now && self.lacks(pending, agent).is_none()
    }

    /// Every job this one waits for has succeeded.
    fn deps_done(&self, pending: &Pending) -> bool {
        pending
            .waits_for
            .iter()
            .all(|d| self.finished.get(d) == Some(&JobState::Succeeded))
    }

    /// Queued jobs that can never run: a job they wait for failed or was cancelled.
    pub(crate) fn blocked(&self) -> Vec<(String, String)> {
        self.queued
            .iter()
            .filter_map(|(id, pending)| {
                pending
                    .waits_for
                    .iter()
                    .find_map(|dep| match self.finished.get(dep) {
                        Some(JobState::Failed) | Some(JobState::Cancelled) => Some((
                            id.clone(),
                            format!("{dep}, which this job waits for, did not succeed"),
                        )),
                        _ => None,
                    })
            })
            .collect()
    }

    /// Some other up agent with a free slot holds every input of the job.
    fn better_agent_free(&self, name: &str, pending: &Pending, now: i64) -> bool {
        self.agents.iter().any(|(other, view)| {
            other != name
                && view.agent.up
                && view.live.as_ref().is_some_and(|live| {
                    self.affinity(&pending.inputs, &live.cached) >= 1.0
                        && self.eligible(pending, &view.agent, now)
                })
                && self.room(&view.agent, pending.registry_only) > 0
        })
    }

    /// Up to `max` job ids for agent `name`'s slots and `max_registry` registry-only ones
    /// beside them, reserved until the lease applies or fails.
    fn pick(
        &mut self,
        name: &str,
        max: usize,
        max_registry: usize,
        now: i64,
        affinity_wait_ms: i64,
    ) -> Vec<String> {
        let Some(view) = self.agents.get(name) else {
            return Vec::new();
        };
        if !view.agent.up {
            return Vec::new();
        }
        let agent = view.agent.clone();
        let cached = view
            .live
            .as_ref()
            .map(|l| l.cached.clone())
            .unwrap_or_default();
        // What may still be picked for the slots and beside them.
        let mut slots = max.min(self.room(&agent, false));
        let mut beside = if agent.registry_slots > 0 {
            max_registry.min(self.room(&agent, true))
        } else {
            0
        };
        let takes_slot = |pending: &Pending| !(pending.registry_only && agent.registry_slots > 0);
        // Each group's window of eligible jobs, oldest first.
        let mut windows: Vec<(Arc<str>, Vec<String>)> = Vec::new();
        for (group, ids) in &self.groups {
            let mut window = Vec::new();
            let room = self.caps.get(group).map(|cap| {
                let running = self.leased.values().filter(|l| &l.group == group).count()
                    + self
                        .reserved
                        .keys()
                        .filter(|id| self.queued.get(*id).is_some_and(|p| &p.group == group))
                        .count();
                cap.saturating_sub(running)
            });
            if room == Some(0) {
                continue;
            }
            for id in ids.iter().take(SCAN_BUDGET) {
                if self.reserved.contains_key(id) {
                    continue;
                }
                let pending = &self.queued[id];
                if self.eligible(pending, &agent, now) && self.deps_done(pending) {
                    window.push(id.clone());
                    if window.len() >= WINDOW.min(room.unwrap_or(WINDOW)) {
                        break;
                    }
                }
            }
            if !window.is_empty() {
                windows.push((group.clone(), window));
            }
        }
        let mut picked = Vec::new();
        while slots + beside > 0 {
            // Fairness: the group served least so far, then by name for determinism.
            let Some(slot) = windows
                .iter()
                .enumerate()
                .filter(|(_, (_, w))| !w.is_empty())
                .min_by_key(|(_, (g, _))| (self.served.get(g).copied().unwrap_or(0), g.clone()))
                .map(|(i, _)| i)
            else {
                break;
            };
            let (group, window) = &mut windows[slot];
            let mut best: Option<(usize, f64)> = None;
            for (i, id) in window.iter().enumerate() {
                let pending = &self.queued[id];
                if (if takes_slot(pending) { slots } else { beside }) == 0 {
                    continue;
                }
                let score = self.affinity(&pending.inputs, &cached);
                let waited = now - pending.ready_at.max(0);
                if score < 1.0
                    && waited < affinity_wait_ms
                    && self.better_agent_free(name, pending, now)
                {
                    continue; // leave it to the agent that holds its inputs, for a while
                }
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((i, score));
                }
                if score >= 1.0 {
                    break;
                }
            }
            let Some((i, score)) = best else {
                window.clear();
                continue;
            };
            let id = window.remove(i);
            if takes_slot(&self.queued[&id]) {
                slots -= 1;
            } else {
                beside -= 1;
            }
            *self.served.entry(group.clone()).or_default() += 1;
            self.affinity.0 += 1;
            if score >= 1.0 {
                self.affinity.1 += 1;
            }
            self.reserved.insert(id.clone(), name.to_string());
            picked.push(id);
        }
        picked
    }
}

/// The scheduler's shared handle.
pub struct Scheduler {
    pub(crate) view: Mutex<View>,
    /// Signalled when work may have appeared (new queued job, freed slot, agent up).
    pub(crate) work: Notify,
    pub options: Options,
}

impl Scheduler {
    pub fn new(options: Options) -> Arc<Self> {
        Arc::new(Scheduler {
            view: Mutex::new(View::default()),
            work: Notify::new(),
            options,
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().expect("scheduler view lock")
    }

    /// Chooses and reserves up to `max` jobs for `agent`.
    pub fn pick(&self, agent: &str, max: usize, max_registry: usize, now: i64) -> Vec<String> {
        self.lock()
            .pick(agent, max, max_registry, now, self.options.affinity_wait_ms)
    }

    /// Drops reservations once their lease applied (or failed).
    pub fn release(&self, ids: &[String]) {
        let mut view = self.lock();
        for id in ids {
            view.reserved.remove(id);
        }
    }

    /// Why the queued job `id` is not running (`None`: an agent may take it now).
    pub fn waiting(&self, id: &str, now: i64) -> Option<String> {
        self.lock().waiting(id, now)
    }

    /// Leases granted here, and how many went to an agent already holding the job's inputs.
    pub fn affinity_counts(&self) -> (u64, u64) {
        self.lock().affinity
    }
}

impl Observer for Scheduler {
    /// Re-reads everything from the state machine (start-up, snapshot installed).
    fn rebuild(&self, state: &StateMachine) -> Result<(), StateError> {
        let queued = state.queued_jobs()?;
        let leased = state.leased_jobs()?;
        let agents = state.agents()?;
        let catalog = state.catalog()?;
        let mut view = self.lock();
        let old_live: HashMap<String, Option<Live>> = std::mem::take(&mut view.agents)
            .into_iter()
            .map(|(name, v)| (name, v.live))
            .collect();
        let mut fresh = View {
            served: std::mem::take(&mut view.served),
            affinity: view.affinity,
            ..Default::default()
        };
        let mut old_live = old_live;
        for agent in agents {
            let live = old_live.remove(&agent.name).flatten();
            fresh
                .agents
                .insert(agent.name.clone(), AgentView { agent, live });
        }
        for entry in catalog {
            fresh.catalog.insert(entry.key.clone(), entry);
        }
        for job in queued.iter().chain(leased.iter()) {
            fresh.job(job);
            for dep in &job.waits_for {
                if let Some(done) = state.job(dep)? {
                    fresh.job(&done);
                }
            }
        }
        *view = fresh;
        drop(view);
        self.work.notify_waiters();
        Ok(())
    }

    /// Follows one applied change.
    fn observe(&self, change: &Change, state: &StateMachine) {
        match change {
            Change::Reset => {
                if let Err(e) = self.rebuild(state) {
                    tracing::error!(error = %e, "scheduler cannot re-read the state");
                }
                return;
            }
            Change::Job(job) => {
                self.lock().job(job);
                // One job queued (or one ended, which may free a dependent or a group's cap) is
                // work for one waiting agent, not all of them: waking every long-poll on every
                // applied change cost the leader its CPU at a thousand agents. A woken agent that
                // cannot take it looks again within 200 ms, as do the others.
                if job.state() != JobState::Leased {
                    self.work.notify_one();
                }
                return;
            }
            Change::Catalog(entry) => {
                self.lock().catalog.insert(entry.key.clone(), entry.clone());
            }
            Change::CatalogDeleted(key) => {
                self.lock().catalog.remove(key);
            }
            Change::Agent(agent) => {
                let mut view = self.lock();
                let entry = view
                    .agents
                    .entry(agent.name.clone())
                    .or_insert_with(|| AgentView {
                        agent: agent.clone(),
                        live: None,
                    });
                // Coming back up is a heartbeat: without this, the reaper could see the record
                // up with the last heartbeat from before it went down, and mark it down again
                // before the registration's own heartbeat lands.
                if agent.up && !entry.agent.up {
                    if let Some(live) = entry.live.as_mut() {
                        live.last_seen_ms = live.last_seen_ms.max(crate::raft::now_ms());
                    }
                }
                entry.agent = agent.clone();
            }
        }
        self.work.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
