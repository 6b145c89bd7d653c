//! The node-to-node service (`patchfarm.v1.Raft`): raft message batches in, local status out.
//! Only coordinator certificates may send raft traffic: decoding is reserved for peers.

use crate::raft::NodeHandle;
use patchfarm_proto::v1::raft_server::Raft;
use patchfarm_proto::v1::{Empty, NodeStatus, RaftBatch};
use protobuf::Message as _;
use tonic::{Request, Response, Status};

pub struct PeerService {
    pub node: NodeHandle,
    pub address: String,
}

#[tonic::async_trait]
impl Raft for PeerService {
    async fn send(&self, request: Request<RaftBatch>) -> Result<Response<Empty>, Status> {
        let batch = request.into_inner();
        let messages = batch
            .messages
            .iter()
            .map(|bytes| raft::prelude::Message::parse_from_bytes(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Status::invalid_argument(format!(
                    "undecodable raft message from node {}: {e}",
                    batch.from
                ))
            })?;
        self.node.step(messages).await?;
        Ok(Response::new(Empty {}))
    }

    async fn local_status(&self, _request: Request<Empty>) -> Result<Response<NodeStatus>, Status> {
        let local = self.node.local_status();
        Ok(Response::new(NodeStatus {
            id: local.id,
            address: self.address.clone(),
            role: local.role.to_string(),
            term: local.term,
            commit: local.commit,
            applied: local.applied,
            healthy: local.leader != 0,
            leader: local.leader,
        }))
    }
}
