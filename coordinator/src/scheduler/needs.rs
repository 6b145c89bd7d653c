//! What a queued job needs of an agent — its platform, its labels, and build steps when one of
//! its inputs runs as one (an Oracle installer, a patch only OPatch applies) or it asks OPatch
//! itself — and, for `jobs show`, why no agent gives it that: a job that cannot run says so
//! instead of sitting silently in the queue.

use super::{Pending, View};
use patchfarm_proto::v1::{Agent, JobState};

impl View {
    /// Why `pending` needs an agent that runs build steps (`None`: it does not).
    pub(super) fn step_need(&self, pending: &Pending) -> Option<String> {
        if pending.needs_steps {
            return Some(
                "it runs build steps itself: build commands, OS packages or OPatch".into(),
            );
        }
        pending
            .inputs
            .iter()
            .find(|key| self.catalog.get(*key).is_some_and(|e| e.runs_steps))
            .map(|key| format!("building with {key} runs a build step"))
    }

    /// What `agent` lacks to run `pending` (`None`: nothing), leaving time and dependencies aside.
    pub(super) fn lacks(&self, pending: &Pending, agent: &Agent) -> Option<String> {
        if !(pending.platform.is_empty()
            || agent.platforms.is_empty()
            || agent.platforms.contains(&pending.platform))
        {
            return Some(format!("does not build for {}", pending.platform));
        }
        if let Some((k, v)) = pending
            .constraints
            .iter()
            .find(|(k, v)| agent.labels.get(k) != Some(v))
        {
            return Some(format!("lacks label {k}={v}"));
        }
        if self.step_need(pending).is_some() {
            let steps = agent.steps.clone().unwrap_or_default();
            if !steps.available {
                let why = if steps.unavailable_reason.is_empty() {
                    "it did not say it can (a release before build steps)".to_string()
                } else {
                    steps.unavailable_reason
                };
                return Some(format!("cannot run build steps: {why}"));
            }
            if pending.needs_network && steps.network_refused {
                return Some(
                    "gives build steps no network (--no-step-network) and the job asks --buildNetwork"
                        .into(),
                );
            }
        }
        None
    }

    /// Why the queued job `id` is not running, as `jobs show` says it; `None` when an up agent
    /// could take it now (it waits for a free slot or its turn).
    pub(crate) fn waiting(&self, id: &str, now: i64) -> Option<String> {
        let pending = self.queued.get(id)?;
        let unfinished: Vec<&str> = pending
            .waits_for
            .iter()
            .filter(|dep| self.finished.get(*dep) != Some(&JobState::Succeeded))
            .map(String::as_str)
            .collect();
        if !unfinished.is_empty() {
            return Some(format!(
                "waits for {} to succeed first",
                unfinished.join(", ")
            ));
        }
        if pending.ready_at > now {
            return Some(format!(
                "backs off after a failed attempt for {} s more",
                (pending.ready_at - now + 999) / 1000
            ));
        }
        let up: Vec<&Agent> = self
            .agents
            .values()
            .map(|view| &view.agent)
            .filter(|agent| agent.up)
            .collect();
        if up.is_empty() {
            return Some("no agent is up".into());
        }
        let mut reasons = Vec::new();
        for agent in up {
            match self.lacks(pending, agent) {
                None => return None,
                Some(lack) => reasons.push(format!("{} {lack}", agent.name)),
            }
        }
        let need = match self.step_need(pending) {
            Some(why) => format!(" ({why})"),
            None => String::new(),
        };
        Some(format!(
            "no up agent can take it{need}: {}",
            reasons.join("; ")
        ))
    }
}
