//! The peer table: which coordinator is at which address, changed with raft's conf changes.

use super::{StateError, StateMachine, Txn};
use patchfarm_proto::state::SetPeer;

pub(crate) fn set(txn: &mut Txn<'_>, peer: &SetPeer) -> bool {
    let key = format!("peer/{:020}", peer.id);
    if peer.remove {
        txn.remove(&key);
    } else {
        txn.put(&key, peer);
    }
    true
}

impl StateMachine {
    /// Peers added at run time: id → address.
    pub fn peers(&self) -> Result<Vec<(u64, String)>, StateError> {
        let peers: Vec<SetPeer> = self.list("peer", "peer/")?;
        Ok(peers.into_iter().map(|p| (p.id, p.address)).collect())
    }
}
