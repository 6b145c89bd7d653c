//! Registry transport: an oci-client wrapper per registry host with auth from docker's config,
//! plain HTTP for loopback (and `--insecure-registry` hosts), retries and errors that name the registry.

use super::auth::{self, Credentials};
use super::retry::RetryPolicy;
use super::TransportError;
use crate::digest::Digest;
use crate::image::RegistryRef;
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, Reference, RegistryOperation};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// How to reach registries: which speak plain HTTP, which extra CAs to trust, how to retry.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Hosts (`host[:port]`) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// PEM certificates trusted besides the system roots (e.g. a private registry's CA).
    pub extra_ca_pems: Vec<Vec<u8>>,
    pub retry: RetryPolicy,
    /// A call that receives nothing for this long fails (`--registry-timeout`): a stalled
    /// registry is reported, not waited on. Zero means the default.
    pub stall_timeout: std::time::Duration,
    /// Registries that get the docker config's credentials; `None` = every registry (the CLI on
    /// its user's machine), `Some` = only these (an agent: `--registry-credentials HOST`),
    /// anonymous elsewhere, so a job cannot send the agent's password to a host of its choosing.
    pub credential_hosts: Option<Vec<String>>,
    /// Where images of the local container engine are unpacked to be read (`None`: this
    /// process reads and writes registries and layouts only, as an agent does).
    pub engine_exports: Option<std::path::PathBuf>,
}

/// No progress for a minute: a registry that is merely slow still sends something in that time.
pub const DEFAULT_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl RegistryOptions {
    pub fn stall_timeout(&self) -> std::time::Duration {
        if self.stall_timeout.is_zero() {
            DEFAULT_STALL_TIMEOUT
        } else {
            self.stall_timeout
        }
    }

    /// From `--insecure-registry` hosts and `--registry-ca` PEM files (read now; the error
    /// names the file).
    pub fn from_flags(
        insecure_registries: &[String],
        ca_files: &[std::path::PathBuf],
    ) -> std::io::Result<Self> {
        let mut extra_ca_pems = Vec::new();
        for path in ca_files {
            extra_ca_pems.push(std::fs::read(path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("reading --registry-ca {}: {e}", path.display()),
                )
            })?);
        }
        Ok(RegistryOptions {
            insecure_registries: insecure_registries.to_vec(),
            extra_ca_pems,
            ..Default::default()
        })
    }
}

/// One client per registry host, made on first use.
#[derive(Default)]
pub struct Registries {
    options: RegistryOptions,
    clients: Mutex<HashMap<String, Arc<RegistryClient>>>,
}

impl Registries {
    pub fn new(options: RegistryOptions) -> Self {
        Registries {
            options,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Where this process unpacks the local container engine's images, if it uses one.
    pub fn engine_exports(&self) -> Option<&Path> {
        self.options.engine_exports.as_deref()
    }

    pub async fn client(&self, registry: &str) -> Arc<RegistryClient> {
        if let Some(c) = self
            .clients
            .lock()
            .expect("registry map lock")
            .get(registry)
        {
            return c.clone();
        }
        let host = registry.to_string();
        let allowed = self
            .options
            .credential_hosts
            .as_ref()
            .is_none_or(|hosts| hosts.iter().any(|h| h == registry));
        let credentials = if allowed {
            crate::spawn_blocking(move || auth::lookup(&host))
                .await
                .unwrap_or(Credentials::Anonymous)
        } else {
            Credentials::Anonymous
        };
        let may_be_plain = crate::image::reference::is_loopback_host(registry)
            || self
                .options
                .insecure_registries
                .iter()
                .any(|h| h == registry);
        let plain_http = may_be_plain && !super::probe::speaks_tls(registry).await;
        let client = Arc::new(RegistryClient::new(
            registry,
            credentials,
            plain_http,
            &self.options,
        ));
        self.clients
            .lock()
            .expect("registry map lock")
            .entry(registry.to_string())
            .or_insert(client)
            .clone()
    }
}

/// A client for one registry host.
pub struct RegistryClient {
    registry: String,
    credentials: Credentials,
    /// Holds auth (basic credentials or bearer tokens); manifests are always fetched with it.
    client: Client,
    /// Never given auth: used for blob and push calls on registries that issue no challenge,
    /// because oci-client re-probes `GET /v2/` before every request once auth is stored.
    bare: Client,
    /// Set when anonymous access met no auth challenge: `bare` serves blob and push calls.
    open_access: std::sync::atomic::AtomicBool,
    /// Manifests and configs by digest: content-addressed, hence immutable and safe to reuse
    /// (a fleet rebase reads the same bases for every domain).
    by_digest: Mutex<HashMap<Digest, Vec<u8>>>,
    retry: RetryPolicy,
    stall_timeout: std::time::Duration,
    authenticated: tokio::sync::Mutex<std::collections::HashSet<(String, bool)>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.registry)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl RegistryClient {
    /// A client for `registry`; `plain_http` only for loopback or `--insecure-registry` hosts.
    pub fn new(
        registry: &str,
        credentials: Credentials,
        plain_http: bool,
        options: &RegistryOptions,
    ) -> Self {
        // oci-client uses rustls without a provider; whoever links the engine (CLI, agent, tests)
        // gets ring unless they installed one first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if plain_http {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        };
        let config = || ClientConfig {
            protocol: protocol.clone(),
            use_monolithic_push: true,
            extra_root_certificates: options
                .extra_ca_pems
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            // reqwest's read timeout is per read: the no-progress deadline, not a cap on a call.
            read_timeout: Some(options.stall_timeout()),
            user_agent: concat!("patchfarm/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        RegistryClient {
            registry: registry.into(),
            credentials,
            client: Client::new(config()),
            bare: Client::new(config()),
            open_access: Default::default(),
            by_digest: Default::default(),
            retry: options.retry,
            stall_timeout: options.stall_timeout(),
            authenticated: Default::default(),
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Whether this client sends no credentials.
    pub fn is_anonymous(&self) -> bool {
        self.credentials.is_anonymous()
    }

    fn reference(&self, repository: &str, reference: &str) -> Reference {
        if reference.starts_with("sha256:") {
            Reference::with_digest(self.registry.clone(), repository.into(), reference.into())
        } else {
            Reference::with_tag(self.registry.clone(), repository.into(), reference.into())
        }
    }

    /// Authenticates once per repository and operation (a token exchange or stored basic auth).
    async fn ensure_auth(&self, repository: &str, push: bool) -> Result<(), TransportError> {
        let key = (repository.to_string(), push);
        let mut done = self.authenticated.lock().await;
        if done.contains(&key) {
            return Ok(());
        }
        if self.open_access.load(std::sync::atomic::Ordering::Relaxed) {
            // The registry already answered without a challenge: no probe per repository.
            done.insert(key);
            return Ok(());
        }
        let reference = self.reference(repository, "latest");
        let op = if push {
            RegistryOperation::Push
        } else {
            RegistryOperation::Pull
        };
        let what = format!("authenticating for {}/{repository}", self.registry);
        let token = self
            .retry
            .run(&what, TransportError::is_transient, || async {
                self.client
                    .auth(&reference, &self.credentials.to_oci(), op)
                    .await
                    .map_err(|e| self.classify(e, &what))
            })
            .await?;
        if self.credentials.is_anonymous() && token.is_none() {
            self.open_access
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        done.insert(key);
        Ok(())
    }

    /// The client for blob and push calls (see `bare`).
    fn api(&self) -> &Client {
        if self.open_access.load(std::sync::atomic::Ordering::Relaxed) {
            &self.bare
        } else {
            &self.client
        }
    }

    /// Turns oci-client's errors into ours, naming the registry and never the password.
    fn classify(&self, error: OciDistributionError, what: &str) -> TransportError {
        super::classify::classify(
            error,
            &self.registry,
            self.credentials.is_anonymous(),
            what,
            self.stall_timeout,
        )
    }

    /// Fetches a manifest by tag or digest; returns its bytes and digest (verified when by digest).
    pub async fn get_manifest(
        &self,
        image: &RegistryRef,
    ) -> Result<(Vec<u8>, Digest), TransportError> {
        if let Some(cached) = image.digest.as_ref().and_then(|d| self.cached(d)) {
            return Ok((cached, image.digest.clone().expect("checked")));
        }
        self.ensure_auth(&image.repository, false).await?;
        let reference = self.reference(&image.repository, &image.manifest_reference());
        let what = format!("manifest {image}");
        let (bytes, _) = self
            .retry
            .run(&what, TransportError::is_transient, || async {
                self.client
                    .pull_manifest_raw(
                        &reference,
                        &self.credentials.to_oci(),
                        crate::image::media::ACCEPTED_MANIFESTS,
                    )
                    .await
                    .map_err(|e| self.classify(e, &what))
            })
            .await?;
        let digest = Digest::of_bytes(&bytes);
        if let Some(expected) = &image.digest {
            if &digest != expected {
                return Err(TransportError::DigestMismatch {
                    what,
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        self.remember(&digest, &bytes);
        Ok((bytes.to_vec(), digest))
    }

    /// Fetches a small blob (a config) into memory, verifying its digest.
    pub async fn get_blob_bytes(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Vec<u8>, TransportError> {
        if let Some(cached) = self.cached(digest) {
            return Ok(cached);
        }
        let mut out = Vec::new();
        self.download(repository, digest, &mut out).await?;
        self.remember(digest, &out);
        Ok(out)
    }

    fn cached(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.by_digest
            .lock()
            .expect("digest cache lock")
            .get(digest)
            .cloned()
    }

    /// Keeps a small content-addressed value (manifest, config) this client fetched or pushed,
    /// so asking for it again by digest costs no round trip.
    pub(crate) fn remember(&self, digest: &Digest, bytes: &[u8]) {
        let mut cache = self.by_digest.lock().expect("digest cache lock");
        if cache.len() >= 4096 {
            cache.clear(); // small values only; a long-lived agent must not grow without bound
        }
        cache.insert(digest.clone(), bytes.to_vec());
    }

    /// Downloads a blob into `path` atomically (temp file + rename), verifying its digest.
    pub async fn download_to(
        &self,
        repository: &str,
        digest: &Digest,
        path: &Path,
    ) -> Result<(), TransportError> {
        let dir = path.parent().expect("blob path has a parent");
        let io = |what: String| {
            move |e: std::io::Error| TransportError::Io {
                what: what.clone(),
                source: e,
            }
        };
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io(format!("creating {}", dir.display())))?;
        let temp = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(dir)
            .map_err(io(format!("creating a file in {}", dir.display())))?;
        let (std_file, temp_path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        self.download(repository, digest, &mut file).await?;
        file.flush()
            .await
            .map_err(io(format!("writing {}", path.display())))?;
        drop(file);
        temp_path.persist(path).map_err(|e| TransportError::Io {
            what: format!("writing {}", path.display()),
            source: e.error,
        })?;
        Ok(())
    }

    async fn download<W: tokio::io::AsyncWrite + Unpin + Send>(
        &self,
        repository: &str,
        digest: &Digest,
        out: &mut W,
    ) -> Result<(), TransportError> {
        self.ensure_auth(repository, false).await?;
        let what = format!("blob {digest} in {}/{repository}", self.registry);
        let reference = self.reference(repository, &digest.to_string());
        let descriptor = oci_client::manifest::OciDescriptor {
            digest: digest.to_string(),
            ..Default::default()
        };
        // Downloads are not retried mid-stream: a partial write would need truncating first.
        self.api()
            .pull_blob(&reference, &descriptor, out)
            .await
            .map_err(|e| self.classify(e, &what))
    }

    /// Streams a blob (for copying between registries without touching the disk).
    pub async fn blob_stream(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<
        impl Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static,
        TransportError,
    > {
        self.ensure_auth(repository, false).await?;
        let what = format!("blob {digest} in {}/{repository}", self.registry);
        let reference = self.reference(repository, &digest.to_string());
        let descriptor = oci_client::manifest::OciDescriptor {
            digest: digest.to_string(),
            ..Default::default()
        };
        let sized = self
            .api()
            .pull_blob_stream(&reference, &descriptor)
            .await
            .map_err(|e| self.classify(e, &what))?;
        Ok(sized.stream.map_err(OciDistributionError::IoError))
    }

    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, TransportError> {
        self.ensure_auth(repository, true).await?;
        let reference = self.reference(repository, &digest.to_string());
        let what = format!("checking blob {digest} in {}/{repository}", self.registry);
        self.retry
            .run(&what, TransportError::is_transient, || async {
                self.api()
                    .blob_exists(&reference, &digest.to_string())
                    .await
                    .map_err(|e| self.classify(e, &what))
            })
            .await
    }

    /// Asks the registry to mount `digest` from `from_repository`; false when it declined.
    pub async fn mount(
        &self,
        repository: &str,
        from_repository: &str,
        digest: &Digest,
    ) -> Result<bool, TransportError> {
        self.ensure_auth(repository, true).await?;
        let target = self.reference(repository, &digest.to_string());
        let source = self.reference(from_repository, &digest.to_string());
        match self
            .api()
            .mount_blob(&target, &source, &digest.to_string())
            .await
        {
            Ok(()) => Ok(true),
            // 202: the registry opened an upload session instead of mounting — upload normally.
            Err(OciDistributionError::SpecViolationError(_))
            | Err(OciDistributionError::RegistryNoLocationError) => Ok(false),
            Err(e) => match self.classify(e, "mount") {
                err @ (TransportError::AuthenticationFailed { .. }
                | TransportError::CredentialsRequired { .. }
                | TransportError::Unreachable { .. }
                | TransportError::Tls { .. }) => Err(err),
                _ => Ok(false),
            },
        }
    }

    /// Uploads a blob from a local file in one streamed PUT, retried on transient failures.
    pub async fn upload_file(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
    ) -> Result<(), TransportError> {
        self.upload_stream(repository, digest, size, || async {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| TransportError::Io {
                    what: format!("reading {}", path.display()),
                    source: e,
                })?;
            Ok(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
                .map_err(OciDistributionError::IoError))
        })
        .await
    }

    /// Uploads a blob from a stream factory (called again for each retry).
    pub async fn upload_stream<S, F, Fut>(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        open: F,
    ) -> Result<(), TransportError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<S, TransportError>>,
        S: Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static,
    {
        self.ensure_auth(repository, true).await?;
        let reference = self.reference(repository, &digest.to_string());
        let what = format!("uploading blob {digest} to {}/{repository}", self.registry);
        self.retry
            .run(&what, TransportError::is_transient, || async {
                let stream = open().await?;
                self.api()
                    .push_blob_stream(&reference, stream, &digest.to_string(), Some(size))
                    .await
                    .map(|_| ())
                    .map_err(|e| self.classify(e, &what))
            })
            .await
    }

    /// Puts a manifest under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), TransportError> {
        self.ensure_auth(repository, true).await?;
        let target = self.reference(repository, reference);
        let what = format!(
            "pushing manifest {}/{repository}:{reference}",
            self.registry
        );
        let content_type: http::HeaderValue =
            media_type.parse().map_err(|_| TransportError::Protocol {
                registry: self.registry.clone(),
                what: what.clone(),
                reason: format!("bad media type {media_type}"),
            })?;
        let body = Bytes::copy_from_slice(bytes);
        self.retry
            .run(&what, TransportError::is_transient, || async {
                self.api()
                    .push_manifest_raw(&target, body.clone(), content_type.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| self.classify(e, &what))
            })
            .await?;
        // Read back right after (a signed job's SBOM reads the image it pushed): no round trip.
        self.remember(&Digest::of_bytes(bytes), bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credentials_go_only_to_the_registries_listed() {
        let config = tempfile::tempdir().unwrap();
        let auth =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "agent:s3cret");
        let hosts = ["ours.example:5000", "theirs.example:5000"];
        let entries: serde_json::Map<String, serde_json::Value> = hosts
            .iter()
            .map(|h| (h.to_string(), serde_json::json!({ "auth": auth })))
            .collect();
        std::fs::write(
            config.path().join("config.json"),
            serde_json::json!({ "auths": entries }).to_string(),
        )
        .unwrap();
        // nextest runs each test in a process of its own: the variable is this test's alone.
        std::env::set_var("DOCKER_CONFIG", config.path());

        let everywhere = Registries::new(RegistryOptions::default());
        for host in hosts {
            assert!(!everywhere.client(host).await.is_anonymous(), "{host}");
        }
        let listed = Registries::new(RegistryOptions {
            credential_hosts: Some(vec![hosts[0].to_string()]),
            ..Default::default()
        });
        assert!(!listed.client(hosts[0]).await.is_anonymous());
        assert!(
            listed.client(hosts[1]).await.is_anonymous(),
            "a registry the agent was not told about gets no password"
        );
    }
}
