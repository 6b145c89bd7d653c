//! Coordinator clusters for end-to-end tests: real `patchfarm-coordinator` processes on loopback
//! with a fresh certificate set, optionally wired through `LinkProxy`s so a test can cut a node
//! off (a partition) without touching the processes. `kill` is SIGKILL.

use crate::tools::free_ports;
use patchfarm_client::FarmClient;
use patchfarm_proto::v1::{ClusterStatusRequest, ClusterStatusResponse};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `patchfarm-coordinator`, next to the `patchfarm` binary.
pub fn coordinator_bin() -> PathBuf {
    crate::patchfarm_bin().with_file_name("patchfarm-coordinator")
}

/// A TCP forwarder between two nodes that a test can cut (refuse and reset) and heal.
pub struct LinkProxy {
    pub address: String,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl LinkProxy {
    pub fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut2, live2) = (cut.clone(), live.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if cut2.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                {
                    let mut live = live2.lock().unwrap();
                    live.push(inbound.try_clone().unwrap());
                    live.push(outbound.try_clone().unwrap());
                }
                pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pipe(outbound, inbound);
            }
        });
        LinkProxy { address, cut, live }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The read-only dashboard token of test clusters.
const DASHBOARD_TOKEN: &str = "test-dashboard-token-0123456789";

pub struct Node {
    pub id: u64,
    pub address: String,
    pub metrics: String,
    /// The dashboard's address (`--http-listen`, HTTPS).
    pub http: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

/// A running cluster; every process is killed on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub certs: PathBuf,
    pub nodes: BTreeMap<u64, Node>,
    /// (from, to) → proxy, when started with links.
    pub links: BTreeMap<(u64, u64), LinkProxy>,
    /// Flags every node gets.
    common_args: Vec<String>,
}

impl Cluster {
    /// `n` nodes dialing each other directly.
    pub fn start(n: u64) -> Self {
        Self::build(n, false, &[])
    }

    /// `n` nodes, each also given `args`.
    pub fn start_with_args(n: u64, args: &[&str]) -> Self {
        Self::build(n, false, args)
    }

    /// `n` nodes given `args`, with certificates for `agents` agents (agent-1 … agent-N).
    pub fn start_with_agents(n: u64, agents: usize, args: &[&str]) -> Self {
        Self::build_with(n, false, args, agents)
    }

    /// The process id of node `id`, while it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes[&id].child.as_ref().map(|c| c.id())
    }

    /// `n` nodes whose raft traffic goes through one `LinkProxy` per direction.
    pub fn start_with_links(n: u64) -> Self {
        Self::build(n, true, &[])
    }

    fn build(n: u64, with_links: bool, common_args: &[&str]) -> Self {
        Self::build_with(n, with_links, common_args, 4)
    }

    fn build_with(n: u64, with_links: bool, common_args: &[&str], agents: usize) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let out = crate::run(
            Command::new(crate::patchfarm_bin())
                .args(["certs", "init", "--out"])
                .arg(&certs)
                .args([
                    "--coordinators",
                    &(n + 2).to_string(),
                    "--agents",
                    &agents.to_string(),
                ]),
        );
        assert!(out.contains("ca.crt"), "{out}");
        let mut ports = free_ports(3 * n as usize).into_iter();
        let addresses: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", ports.next().unwrap())))
            .collect();
        let mut metrics: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", ports.next().unwrap())))
            .collect();
        let mut http: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", ports.next().unwrap())))
            .collect();
        let mut links = BTreeMap::new();
        if with_links {
            for &from in addresses.keys() {
                for (&to, target) in &addresses {
                    if from != to {
                        links.insert((from, to), LinkProxy::start(target.clone()));
                    }
                }
            }
        }
        let mut cluster = Cluster {
            certs,
            nodes: BTreeMap::new(),
            links,
            dir,
            common_args: common_args.iter().map(|a| a.to_string()).collect(),
        };
        for (&id, address) in &addresses {
            let mut args = Vec::new();
            for (&peer, peer_address) in &addresses {
                let via = match cluster.links.get(&(id, peer)) {
                    Some(link) => link.address.clone(),
                    None => peer_address.clone(),
                };
                args.push(format!("--peer={peer}={via}"));
            }
            let metrics = metrics.remove(&id).unwrap();
            let http = http.remove(&id).unwrap();
            cluster.add_process(id, address.clone(), [metrics, http], args);
        }
        cluster
    }

    fn add_process(&mut self, id: u64, address: String, ports: [String; 2], args: Vec<String>) {
        let data_dir = self.dir.path().join(format!("node-{id}"));
        let [metrics, http] = ports;
        let mut node = Node {
            id,
            metrics,
            http,
            address,
            data_dir,
            args,
            child: None,
        };
        self.spawn(&mut node);
        self.nodes.insert(id, node);
    }

    /// Starts node `id` outside the membership (`--join`), knowing the current members.
    pub fn start_joining(&mut self, id: u64) -> String {
        let ports = free_ports(3);
        let address = format!("127.0.0.1:{}", ports[0]);
        let metrics = format!("127.0.0.1:{}", ports[1]);
        let http = format!("127.0.0.1:{}", ports[2]);
        let mut args: Vec<String> = self
            .nodes
            .values()
            .map(|n| format!("--peer={}={}", n.id, n.address))
            .collect();
        args.push("--join".into());
        self.add_process(id, address.clone(), [metrics, http], args);
        address
    }

    fn spawn(&self, node: &mut Node) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{}.log", node.id)))
            .unwrap();
        // Certificates named one by one replace the certificate directory.
        let explicit = node.args.iter().any(|a| a.starts_with("--tls-cert"));
        let tls_dir = if explicit {
            Vec::new()
        } else {
            vec!["--tls-dir".into(), self.certs.display().to_string()]
        };
        let child = Command::new(coordinator_bin())
            .arg(format!("--node-id={}", node.id))
            .arg(format!("--listen={}", node.address))
            .arg(format!("--metrics-listen={}", node.metrics))
            .arg(format!("--http-listen={}", node.http))
            .arg("--dashboard-token-file")
            .arg(self.dashboard_token_file())
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(&tls_dir)
            .args(&node.args)
            .args(&self.common_args)
            .env("RUST_LOG", "info,slog=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).unwrap();
        if let Some(mut child) = node.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts a killed node again on the same data directory and address.
    /// Restarts stopped node `id` with `args` added to its own.
    pub fn restart_with(&mut self, id: u64, args: &[String]) {
        self.nodes
            .get_mut(&id)
            .unwrap()
            .args
            .extend_from_slice(args);
        self.restart(id);
    }

    pub fn restart(&mut self, id: u64) {
        let mut node = self.nodes.remove(&id).unwrap();
        assert!(node.child.is_none(), "node {id} is still running");
        self.spawn(&mut node);
        self.nodes.insert(id, node);
    }

    pub fn address(&self, id: u64) -> String {
        self.nodes[&id].address.clone()
    }

    pub fn addresses(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.address.clone()).collect()
    }

    /// A client (client certificate) that may use any of `addresses`.
    pub fn client_for(&self, addresses: &[String]) -> FarmClient {
        FarmClient::new(addresses, Some(&self.certs), "client").unwrap()
    }

    pub fn client(&self) -> FarmClient {
        self.client_for(&self.addresses())
    }

    /// The node's own view of the cluster (asked of that node only), if it answers.
    pub async fn status_from(&self, id: u64) -> Option<ClusterStatusResponse> {
        let client = self
            .client_for(&[self.address(id)])
            .with_deadline(Duration::from_millis(500));
        client
            .call(|mut c| async move { c.cluster_status(ClusterStatusRequest {}).await })
            .await
            .ok()
    }

    /// Waits until a node among `among` reports a leader that is also in `among`.
    pub async fn wait_leader(&self, among: &[u64]) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for &id in among {
                if let Some(status) = self.status_from(id).await {
                    let leader_is_leader = status
                        .nodes
                        .iter()
                        .any(|n| n.id == status.leader && n.role == "leader");
                    if among.contains(&status.leader) && leader_is_leader {
                        return status.leader;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader among {among:?} within 20 s; logs in {}",
                self.dir.path().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.status_from(id).await {
                if status
                    .nodes
                    .iter()
                    .any(|n| n.id == id && n.applied >= index)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not apply {index} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `patchfarm` CLI pointed at this farm with the client certificate.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(crate::patchfarm_bin())
            .arg("--farm")
            .arg(self.addresses().join(","))
            .arg("--tls-dir")
            .arg(&self.certs)
            .args(args)
            .output()
            .unwrap()
    }

    /// The node's Prometheus text, fetched over plain HTTP.
    pub fn metrics(&self, id: u64) -> String {
        self.http_get(id, "/metrics")
    }

    /// The whole HTTP answer (status line, headers, body) of the node's HTTP port to `path`.
    pub fn http_get(&self, id: u64, path: &str) -> String {
        crate::tools::http_get(&self.nodes[&id].metrics, path)
    }

    /// The dashboard token every node is given (`--dashboard-token-file`), written once.
    pub fn dashboard_token(&self) -> String {
        DASHBOARD_TOKEN.to_string()
    }

    fn dashboard_token_file(&self) -> PathBuf {
        let file = self.dir.path().join("dashboard.token");
        if !file.exists() {
            std::fs::write(&file, format!("{DASHBOARD_TOKEN}\n")).unwrap();
        }
        file
    }

    /// `https://ADDRESS` of node `id`'s dashboard.
    pub fn dashboard_url(&self, id: u64) -> String {
        format!("https://{}", self.nodes[&id].http)
    }

    pub fn certs_dir(&self) -> &Path {
        &self.certs
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            // Keep the logs of a failed test.
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            eprintln!("cluster logs kept in {}", kept.keep().display());
        }
    }
}
