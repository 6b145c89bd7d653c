//! A real CNCF distribution registry (Debian's `docker-registry`) per test, stopped on drop.

use crate::tools::free_port;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// Directory holding `ca.crt` for TLS registries (skopeo's --cert-dir).
    pub tls: Option<PathBuf>,
    pub credentials: Option<(String, String)>,
}

impl Registry {
    /// A plain-HTTP registry without auth.
    pub fn start() -> Registry {
        Self::spawn(None, None)
    }

    /// An HTTPS registry with htpasswd basic auth, its certificate signed by a fresh CA.
    pub fn start_with_auth_tls(user: &str, password: &str) -> Registry {
        Self::spawn(Some((user.into(), password.into())), Some(()))
    }

    fn spawn(credentials: Option<(String, String)>, tls: Option<()>) -> Registry {
        crate::require_tool("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        let mut ca_dir = None;
        if tls.is_some() {
            let certs = dir.path().join("certs");
            std::fs::create_dir_all(&certs).unwrap();
            write_tls(&certs);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certs.join("server.crt").display(),
                certs.join("server.key").display()
            ));
            ca_dir = Some(certs.join("ca"));
        }
        if let Some((user, password)) = &credentials {
            crate::require_tool("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd runs");
            assert!(out.status.success(), "htpasswd failed");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: patchfarm-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            child,
            addr,
            dir,
            tls: ca_dir,
            credentials,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry on {} did not start; log:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Blob upload sessions the registry has seen (POSTs to …/blobs/uploads/ without a mount).
    pub fn upload_sessions(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("\"POST /v2/") && l.contains("/blobs/uploads/") && !l.contains("mount=")
            })
            .count()
    }

    /// skopeo's flags to reach this registry.
    pub fn skopeo_flags(&self, direction: &str) -> Vec<String> {
        let mut flags = Vec::new();
        match &self.tls {
            Some(dir) => flags.push(format!("--{direction}cert-dir={}", dir.display())),
            None => flags.push(format!("--{direction}tls-verify=false")),
        }
        if let Some((u, p)) = &self.credentials {
            flags.push(format!("--{direction}creds={u}:{p}"));
        }
        flags
    }

    /// Tags of `repo`, empty when the repository does not exist.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("list-tags");
        cmd.args(self.skopeo_flags(""))
            .arg(format!("docker://{}/{repo}", self.host()));
        let out = cmd.output().expect("skopeo runs");
        if !out.status.success() {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the registry keeps blob `digest` (`sha256:…`) on disk: reading a pushed layer there
    /// costs nothing, where pulling the image would copy every layer.
    pub fn blob_path(&self, digest: &str) -> std::path::PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1/localhost, written as skopeo's cert-dir expects.
fn write_tls(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "patchfarm test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();
    // skopeo's cert-dir takes every *.key for a client key, so the server's pair lives apart.
    std::fs::create_dir_all(dir.join("ca")).unwrap();
    std::fs::write(dir.join("ca").join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
}
