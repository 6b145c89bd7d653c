//! Raft traffic between coordinators: one sender task per peer batches whatever the node emitted
//! into a single `Raft.Send` call (messages as bytes in raft's own codec). Failures are reported
//! back to the node (`report_unreachable`, snapshot status); raft itself retries.

use super::messages::Msg;
use super::metrics::Metrics;
use patchfarm_client::connect_lazy;
use patchfarm_proto::v1::{raft_client::RaftClient, RaftBatch};
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::{Channel, ClientTlsConfig};

/// Snapshots ride inside MsgSnapshot; both ends accept messages this large.
pub const MAX_RAFT_MESSAGE: usize = 256 << 20;
const SEND_TIMEOUT: Duration = Duration::from_secs(3);
/// Messages queued for one peer beyond this are dropped (raft resends what matters).
const QUEUE: usize = 16_384;

#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    from: u64,
    tls: Option<ClientTlsConfig>,
    node: mpsc::Sender<Msg>,
    metrics: Arc<Metrics>,
    /// Addresses given on the command line win over those learnt from the log: a test (or an
    /// operator) may reach a peer through a proxy.
    pinned: HashMap<u64, String>,
    peers: Mutex<HashMap<u64, Peer>>,
}

struct Peer {
    address: String,
    queue: mpsc::Sender<Message>,
}

impl Transport {
    pub(crate) fn new(
        from: u64,
        pinned: HashMap<u64, String>,
        tls: Option<ClientTlsConfig>,
        node: mpsc::Sender<Msg>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let transport = Transport {
            inner: Arc::new(Inner {
                from,
                tls,
                node,
                metrics,
                pinned: pinned.clone(),
                peers: Mutex::new(HashMap::new()),
            }),
        };
        for (id, address) in pinned {
            transport.start_peer(id, address);
        }
        transport
    }

    /// Where peer `id` is; the command line's address wins over the log's.
    pub fn address(&self, id: u64) -> Option<String> {
        self.inner.pinned.get(&id).cloned().or_else(|| {
            self.inner
                .peers
                .lock()
                .expect("peer table lock")
                .get(&id)
                .map(|p| p.address.clone())
        })
    }

    /// Starts sending to peer `id` (again, after a removal: a node re-added under its old id).
    pub(crate) fn set_peer(&self, id: u64, address: &str) {
        // The command line's address wins over the log's.
        let address = self.inner.pinned.get(&id).map_or(address, String::as_str);
        if id == self.inner.from || address.is_empty() {
            return;
        }
        let same = self
            .inner
            .peers
            .lock()
            .expect("peer table lock")
            .get(&id)
            .is_some_and(|p| p.address == address);
        if !same {
            self.start_peer(id, address.to_string());
        }
    }

    pub(crate) fn remove_peer(&self, id: u64) {
        self.inner
            .peers
            .lock()
            .expect("peer table lock")
            .remove(&id);
    }

    fn start_peer(&self, id: u64, address: String) {
        if id == self.inner.from {
            return;
        }
        let (queue, receiver) = mpsc::channel(QUEUE);
        match self.channel(&address) {
            Ok(channel) => {
                let client = RaftClient::new(channel)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE)
                    .max_decoding_message_size(MAX_RAFT_MESSAGE);
                tokio::spawn(send_loop(
                    self.inner.from,
                    id,
                    client,
                    receiver,
                    self.inner.node.clone(),
                    self.inner.metrics.clone(),
                ));
            }
            Err(e) => {
                tracing::error!(peer = id, %address, error = %e, "cannot reach peer address");
                return;
            }
        }
        self.inner
            .peers
            .lock()
            .expect("peer table lock")
            .insert(id, Peer { address, queue });
    }

    fn channel(&self, address: &str) -> Result<Channel, tonic::transport::Error> {
        connect_lazy(address, self.inner.tls.clone())
    }

    /// Queues messages for their peers; never waits.
    pub(crate) fn send(&self, messages: Vec<Message>) {
        let metrics = &self.inner.metrics;
        if messages.is_empty() {
            return;
        }
        let peers = self.inner.peers.lock().expect("peer table lock");
        for message in messages {
            let to = message.to;
            match peers.get(&to) {
                Some(peer) => {
                    if peer.queue.try_send(message).is_ok() {
                        metrics.raft_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => tracing::debug!(peer = to, "no address for raft peer; message dropped"),
            }
        }
    }
}

async fn send_loop(
    from: u64,
    to: u64,
    mut client: RaftClient<Channel>,
    mut queue: mpsc::Receiver<Message>,
    node: mpsc::Sender<Msg>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match queue.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let snapshots = batch
            .iter()
            .filter(|m| m.get_msg_type() == MessageType::MsgSnapshot)
            .count();
        let messages = batch
            .iter()
            .map(|m| m.write_to_bytes().expect("raft messages always encode"))
            .collect();
        let request = RaftBatch { from, messages };
        let sent = tokio::time::timeout(SEND_TIMEOUT, client.send(request)).await;
        let ok = matches!(sent, Ok(Ok(_)));
        if !ok {
            metrics.raft_send_failures.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = to, "raft batch not delivered");
            let _ = node.send(Msg::Unreachable(to)).await;
        }
        for _ in 0..snapshots {
            let _ = node.send(Msg::SnapshotDone { to, ok }).await;
        }
    }
}
