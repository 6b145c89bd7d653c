//! Agent liveness as Nomad does it: heartbeats are kept in the leader's memory with a TTL that
//! grows with the fleet, and only the verdicts (agent down, lease lapsed) go through raft. A new
//! leader knows no heartbeat yet, so every agent and lease gets a grace period first.

use super::{Live, Scheduler};
use crate::raft::{now_ms, NodeHandle};
use patchfarm_proto::state::{command::Op, ExpireLeases, FencedJob};
use patchfarm_proto::v1::{AgentStatus, HeartbeatRequest, HeartbeatResponse};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the leader looks for lapsed agents and leases.
const REAP_EVERY: Duration = Duration::from_millis(250);

impl Scheduler {
    /// The heartbeat TTL for the current fleet size.
    pub fn ttl_ms(&self) -> i64 {
        let agents = self.lock().agents.len() as i64;
        let spread = agents * 1000 / self.options.max_heartbeats_per_s.max(1);
        self.options.heartbeat_min_ttl_ms.max(spread)
    }

    /// Records a heartbeat (leader only): liveness, cache contents, and the leases of the jobs
    /// the agent still runs are extended. Answers which of those jobs the agent must drop.
    pub fn heartbeat(&self, name: &str, req: HeartbeatRequest, now: i64) -> HeartbeatResponse {
        let ttl_ms = self.ttl_ms();
        let lease_ms = self.options.lease_ms;
        let mut view = self.lock();
        let mut cancel_jobs = Vec::new();
        for id in &req.running_jobs {
            match view.leased.get_mut(id) {
                Some(lease) if lease.agent == name => lease.expires_ms = now + lease_ms,
                _ => cancel_jobs.push(id.clone()),
            }
        }
        let mut send_cache = false;
        let register = match view.agents.get_mut(name) {
            Some(agent) => {
                let mut live = agent.live.take().unwrap_or_default();
                if !req.cached_delta {
                    live.cached = req.cached_digests.into_iter().collect();
                    live.cached_complete = true;
                } else if live.cached_complete {
                    // Work per beat follows what changed, not how much the agent holds.
                    for gone in &req.cached_removed {
                        live.cached.remove(gone);
                    }
                    live.cached.extend(req.cached_added);
                } else {
                    send_cache = true;
                }
                agent.live = Some(Live {
                    last_seen_ms: now,
                    cache_bytes: req.cache_bytes,
                    cache_hits: req.cache_hits,
                    cache_misses: req.cache_misses,
                    ..live
                });
                !agent.agent.up
            }
            None => true,
        };
        drop(view);
        // No wake-up: a heartbeat makes no job runnable (a registration does, through the
        // agent's record), and waiting leases look again within 200 ms anyway.
        HeartbeatResponse {
            cancel_jobs,
            ttl_ms,
            register,
            send_cache,
        }
    }

    /// A new leader: no heartbeat is known, so everyone starts a fresh TTL (plus a grace of the
    /// same length) and every lease a fresh lease period.
    fn take_over(&self, now: i64) {
        let grace = self.ttl_ms();
        let lease_ms = self.options.lease_ms;
        let mut view = self.lock();
        for agent in view.agents.values_mut() {
            agent.live = Some(Live {
                last_seen_ms: now + grace,
                ..agent.live.take().unwrap_or_default()
            });
        }
        for lease in view.leased.values_mut() {
            lease.expires_ms = lease.expires_ms.max(now + grace + lease_ms);
        }
    }

    /// Agents past their TTL, and leases past their expiry or held by those agents.
    pub(crate) fn lapsed(&self, now: i64) -> (Vec<String>, Vec<FencedJob>) {
        let ttl = self.ttl_ms();
        let view = self.lock();
        let down: Vec<String> = view
            .agents
            .iter()
            .filter(|(_, a)| {
                a.agent.up && a.live.as_ref().is_some_and(|l| l.last_seen_ms + ttl < now)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let expired = view
            .leased
            .iter()
            .filter(|(_, l)| l.expires_ms < now || down.contains(&l.agent))
            .map(|(id, l)| FencedJob {
                job_id: id.clone(),
                fencing_token: l.token,
            })
            .collect();
        (down, expired)
    }

    /// What `agents list` shows: the replicated record plus this leader's heartbeat view.
    pub fn agent_statuses(&self, now: i64) -> Vec<AgentStatus> {
        let view = self.lock();
        view.agents
            .iter()
            .map(|(name, a)| AgentStatus {
                agent: Some(a.agent.clone()),
                up: a.agent.up,
                running: view.leased.values().filter(|l| &l.agent == name).count() as u32,
                cache_bytes: a.live.as_ref().map_or(0, |l| l.cache_bytes),
                cache_hits: a.live.as_ref().map_or(0, |l| l.cache_hits),
                cache_misses: a.live.as_ref().map_or(0, |l| l.cache_misses),
                cached_items: a.live.as_ref().map_or(0, |l| l.cached.len() as u32),
                last_heartbeat_ms_ago: a
                    .live
                    .as_ref()
                    .map_or(-1, |l| (now - l.last_seen_ms).max(0)),
            })
            .collect()
    }
}

/// The leader's reaper: declares silent agents down and re-queues lapsed leases, through raft.
pub async fn run_reaper(scheduler: Arc<Scheduler>, node: NodeHandle, stop: CancellationToken) {
    let mut status = node.status.clone();
    let mut leading = false;
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
            changed = status.changed() => if changed.is_err() { return },
        }
        let is_leader = status.borrow().role == "leader";
        if is_leader && !leading {
            scheduler.take_over(now_ms());
            tracing::info!(
                node = node.id(),
                "leading: agents and leases get a grace period"
            );
        }
        leading = is_leader;
        if !leading {
            continue;
        }
        let (down, expired) = scheduler.lapsed(now_ms());
        for name in down {
            tracing::warn!(agent = %name, "agent missed its heartbeat TTL: marking it down");
            let id = patchfarm_client::new_request_id();
            if let Err(e) = node.propose(&id, Op::AgentDown(name.clone())).await {
                tracing::warn!(agent = %name, error = %e, "could not record the agent as down");
            }
        }
        let blocked = scheduler.lock().blocked();
        for (job, reason) in blocked {
            let op = Op::CancelJob(patchfarm_proto::v1::CancelJobRequest {
                request_id: String::new(),
                id: job.clone(),
                reason,
            });
            if let Err(e) = node.propose(&patchfarm_client::new_request_id(), op).await {
                tracing::warn!(job = %job, error = %e, "could not cancel a job whose dependency failed");
            }
        }
        if !expired.is_empty() {
            tracing::warn!(
                jobs = expired.len(),
                "leases lapsed: re-queueing their jobs"
            );
            let op = Op::ExpireLeases(ExpireLeases {
                jobs: expired,
                reason: "no heartbeat from the agent for this job".into(),
            });
            if let Err(e) = node.propose(&patchfarm_client::new_request_id(), op).await {
                tracing::warn!(error = %e, "could not re-queue lapsed leases");
            }
        }
    }
}
