//! Build agents as the replicated state knows them: registered (slots, labels) and up or down.
//! Heartbeats live in the leader's memory; only the leader's verdict "down" is replicated.

use super::{Applied, Change, Refusal, StateError, StateMachine, Txn};
use patchfarm_proto::v1::Agent;

fn key(name: &str) -> String {
    format!("agent/{name}")
}

/// An agent (re-)registering: up from `now`.
pub(crate) fn register(txn: &mut Txn<'_>, now: i64, agent: &Agent) -> Agent {
    let mut agent = agent.clone();
    agent.registered_unix_ms = now;
    agent.up = true;
    txn.put(&key(&agent.name), &agent);
    txn.changes.push(Change::Agent(agent.clone()));
    agent
}

/// The leader declared `name` down (no heartbeat within its TTL).
pub(crate) fn down(txn: &mut Txn<'_>, name: &str) -> Applied<Agent> {
    let Some(mut agent) = txn.get::<Agent>("agent", &key(name))? else {
        return Ok(Err(Refusal::NotFound(format!("no agent {name:?}"))));
    };
    agent.up = false;
    txn.put(&key(name), &agent);
    txn.changes.push(Change::Agent(agent.clone()));
    Ok(Ok(agent))
}

impl StateMachine {
    pub fn agents(&self) -> Result<Vec<Agent>, StateError> {
        self.list("agent", "agent/")
    }
}
