//! The local container engine's image store, reached through the Docker engine API on its socket
//! (`$DOCKER_HOST`, default `unix:///var/run/docker.sock`): images tagged without a registry, as
//! WIT's `docker build -t wls:12.2.1.4.0` leaves them, are loaded into it and read back from it.
//! Only four calls are needed (version, image inspect, save, load), so this speaks HTTP/1.1
//! through hyper rather than pulling in a whole engine SDK.

use super::push::{self, PushReport, PushedImage};
use super::{docker_archive, Registries, TransportError};
use crate::image::manifest::ManifestKind;
use crate::image::{EngineRef, ImageRef, Platform};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A short call (version, inspect) that takes longer than this is an engine in trouble.
const CALL_DEADLINE: Duration = Duration::from_secs(15);
/// Saving and loading stream whole images: they may take minutes, but never sit silent this long.
const STREAM_IDLE_DEADLINE: Duration = Duration::from_secs(120);

/// Where the engine listens.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// A client of one container engine.
#[derive(Clone, Debug)]
pub struct EngineStore {
    endpoint: Endpoint,
}

type Body = BoxBody<Bytes, std::io::Error>;

impl EngineStore {
    /// The engine `$DOCKER_HOST` names, as the docker CLI reads it.
    pub fn from_env() -> Result<Self, TransportError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        Self::at(if host.is_empty() {
            "unix:///var/run/docker.sock"
        } else {
            &host
        })
    }

    /// `unix:///PATH` or `tcp://HOST:PORT` (plain HTTP: a TLS-protected engine is refused).
    pub fn at(host: &str) -> Result<Self, TransportError> {
        let endpoint = if let Some(path) = host.strip_prefix("unix://") {
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(address) = host.strip_prefix("tcp://") {
            if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
                return Err(engine_error(
                    host,
                    "DOCKER_TLS_VERIFY is set: patchfarm reaches the engine over its unix socket or plain tcp only",
                ));
            }
            Endpoint::Tcp(address.trim_end_matches('/').to_string())
        } else {
            return Err(engine_error(
                host,
                "DOCKER_HOST must be unix:///PATH or tcp://HOST:PORT",
            ));
        };
        Ok(EngineStore { endpoint })
    }

    pub fn describe(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(path) => format!("unix://{}", path.display()),
            Endpoint::Tcp(address) => format!("tcp://{address}"),
        }
    }

    fn fail(&self, reason: impl std::fmt::Display) -> TransportError {
        engine_error(&self.describe(), reason)
    }

    async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, TransportError> {
        let what = format!("{} {}", request.method(), request.uri());
        let exchange = async {
            match &self.endpoint {
                Endpoint::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| self.fail(format!("cannot connect: {e}")))?;
                    self.exchange(TokioIo::new(stream), request).await
                }
                Endpoint::Tcp(address) => {
                    let stream = tokio::net::TcpStream::connect(address)
                        .await
                        .map_err(|e| self.fail(format!("cannot connect: {e}")))?;
                    self.exchange(TokioIo::new(stream), request).await
                }
            }
        };
        // The response head must come within the call deadline; bodies have their own.
        tokio::time::timeout(CALL_DEADLINE, exchange)
            .await
            .map_err(|_| self.fail(format!("no answer to {what} within {CALL_DEADLINE:?}")))?
    }

    async fn exchange<Io>(
        &self,
        io: Io,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, TransportError>
    where
        Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.fail(format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "engine connection ended");
            }
        });
        sender
            .send_request(request)
            .await
            .map_err(|e| self.fail(format!("request failed: {e}")))
    }

    fn request(method: &str, path: &str, body: Body) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", "docker")
            .body(body)
            .expect("engine requests are well formed")
    }

    /// A small JSON answer, or the engine's own message on failure.
    async fn call_json(
        &self,
        path: &str,
    ) -> Result<(StatusCode, serde_json::Value), TransportError> {
        let response = self.send(Self::request("GET", path, empty())).await?;
        let status = response.status();
        let body = tokio::time::timeout(CALL_DEADLINE, response.into_body().collect())
            .await
            .map_err(|_| {
                self.fail(format!(
                    "GET {path}: answer not finished within {CALL_DEADLINE:?}"
                ))
            })?
            .map_err(|e| self.fail(format!("GET {path}: {e}")))?
            .to_bytes();
        let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Ok((status, value))
    }

    /// The engine's `os/architecture` in OCI terms (`linux/amd64`).
    pub async fn platform(&self) -> Result<(String, String), TransportError> {
        let (status, version) = self.call_json("/version").await?;
        let field = |name: &str| version[name].as_str().map(str::to_owned);
        match (status.is_success(), field("Os"), field("Arch")) {
            (true, Some(os), Some(arch)) => Ok((os, arch)),
            _ => Err(self.fail(format!("GET /version answered {status}: {version}"))),
        }
    }

    /// The image id (`sha256:…` of its config) the engine holds under `name`, if any.
    pub async fn image_id(&self, name: &str) -> Result<Option<String>, TransportError> {
        let path = format!("/images/{}/json", encode(name));
        let (status, image) = self.call_json(&path).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => image["Id"]
                .as_str()
                .map(|id| Some(id.to_owned()))
                .ok_or_else(|| self.fail(format!("GET {path}: no Id in {image}"))),
            s => Err(self.fail(format!("GET {path} answered {s}: {}", message(&image)))),
        }
    }

    /// Writes `docker save NAME` (a docker-archive tar) to `archive`.
    pub async fn save(&self, name: &str, archive: &Path) -> Result<(), TransportError> {
        let path = format!("/images/{}/get", encode(name));
        let response = self.send(Self::request("GET", &path, empty())).await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.read_all(response.into_body(), &path).await?;
            let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            return Err(self.fail(format!("GET {path} answered {status}: {}", message(&value))));
        }
        let io = |e: std::io::Error| TransportError::Io {
            what: format!("writing {}", archive.display()),
            source: e,
        };
        let mut file = tokio::fs::File::create(archive).await.map_err(io)?;
        let mut body = response.into_body();
        while let Some(frame) = self.next_frame(&mut body, &path).await? {
            if let Ok(data) = frame.into_data() {
                file.write_all(&data).await.map_err(io)?;
            }
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }

    /// `docker load` of the docker-archive tar at `archive`; the engine's lines ("Loaded image:
    /// wls:test") are returned, its error (a layer that does not match its diff id, …) raised.
    pub async fn load(&self, archive: &Path) -> Result<Vec<String>, TransportError> {
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(|e| TransportError::Io {
                what: format!("reading {}", archive.display()),
                source: e,
            })?;
        let stream = tokio_util::io::ReaderStream::new(file).map_ok(Frame::data);
        let mut request = Self::request("POST", "/images/load", StreamBody::new(stream).boxed());
        request
            .headers_mut()
            .insert("content-type", "application/x-tar".parse().expect("header"));
        let response = self.send(request).await?;
        let status = response.status();
        let body = self
            .read_all(response.into_body(), "POST /images/load")
            .await?;
        let mut lines = Vec::new();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let value: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(line).into_owned())
            });
            if value.get("error").is_some() || !status.is_success() {
                return Err(self.fail(format!("loading the image: {}", message(&value))));
            }
            if let Some(text) = value["stream"].as_str() {
                lines.push(text.trim().to_owned());
            }
        }
        Ok(lines)
    }

    async fn next_frame(
        &self,
        body: &mut Incoming,
        what: &str,
    ) -> Result<Option<Frame<Bytes>>, TransportError> {
        match tokio::time::timeout(STREAM_IDLE_DEADLINE, body.frame()).await {
            Err(_) => Err(self.fail(format!("{what}: nothing for {STREAM_IDLE_DEADLINE:?}"))),
            Ok(None) => Ok(None),
            Ok(Some(frame)) => frame
                .map(Some)
                .map_err(|e| self.fail(format!("{what}: {e}"))),
        }
    }

    async fn read_all(&self, mut body: Incoming, what: &str) -> Result<Vec<u8>, TransportError> {
        let mut all = Vec::new();
        while let Some(frame) = self.next_frame(&mut body, what).await? {
            if let Ok(data) = frame.into_data() {
                all.extend_from_slice(&data);
            }
        }
        Ok(all)
    }
}

fn engine_error(engine: &str, reason: impl std::fmt::Display) -> TransportError {
    TransportError::Engine {
        engine: engine.into(),
        reason: reason.to_string(),
    }
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The engine's message from an error body (`{"message": …}` or a load line's `error`).
fn message(value: &serde_json::Value) -> String {
    value["message"]
        .as_str()
        .or_else(|| value["error"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string())
}

/// Image names go into the path: '/' and ':' are kept (the engine routes on them), nothing else
/// a reference may hold needs escaping.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b':' | b'.' | b'_' | b'-' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The engine this process may use, and where it unpacks the engine's images.
fn local_engine(registries: &Registries) -> Result<(EngineStore, PathBuf), TransportError> {
    let exports = registries.engine_exports().ok_or_else(|| {
        engine_error(
            "(none)",
            "this process reads and writes registries and OCI layouts only (farm jobs name a registry: HOST[:PORT]/REPO:TAG)",
        )
    })?;
    Ok((EngineStore::from_env()?, exports.to_path_buf()))
}

/// The OCI layout holding `name` as the local engine has it, unpacked once per image id (the
/// digest of its config, so a re-tagged or rebuilt image is unpacked again). `Ok(None)`: the
/// engine does not hold it.
pub async fn read_image(
    registries: &Registries,
    name: &EngineRef,
) -> Result<Option<PathBuf>, TransportError> {
    let (store, exports) = local_engine(registries)?;
    let Some(id) = store.image_id(&name.familiar()).await? else {
        return Ok(None);
    };
    let id_hex = id.strip_prefix("sha256:").unwrap_or(&id).to_owned();
    let dir = exports.join(&id_hex);
    if dir.join("index.json").exists() {
        return Ok(Some(dir));
    }
    let io = |what: &str, e: std::io::Error| TransportError::Io {
        what: format!("{what} under {}", exports.display()),
        source: e,
    };
    std::fs::create_dir_all(&exports).map_err(|e| io("creating the engine export dir", e))?;
    let work = tempfile::Builder::new()
        .prefix(".export-")
        .tempdir_in(&exports)
        .map_err(|e| io("creating a work dir", e))?;
    let archive = work.path().join("image.tar");
    store.save(&name.familiar(), &archive).await?;
    let unpacked = work.path().join("layout");
    let from = unpacked.clone();
    crate::spawn_blocking(move || docker_archive::read(&archive, &from))
        .await
        .expect("docker archive task")?;
    // Another reader may have finished first: its copy is the same image.
    if let Err(e) = std::fs::rename(&unpacked, &dir) {
        if !dir.join("index.json").exists() {
            return Err(io("keeping the unpacked image", e));
        }
    }
    Ok(Some(dir))
}

/// `docker load` of one image value under `name`: written as a layout, archived, loaded.
pub async fn load_image(
    image: &PushedImage,
    name: &EngineRef,
    registries: &Registries,
) -> Result<PushReport, TransportError> {
    let target = ImageRef::Engine(name.clone());
    let (store, _) = local_engine(registries)?;
    // Reachable before anything is written, so the refusal says what to do instead.
    store.platform().await.map_err(|e| {
        engine_error(
            &store.describe(),
            format!(
                "{target} names no registry, so it goes to the local container engine's image store, which is not reachable ({e}); name a registry (HOST[:PORT]/{}) or an OCI layout (oci:DIR:{})",
                name.familiar(),
                name.tag
            ),
        )
    })?;
    let work = tempfile::Builder::new()
        .prefix("patchfarm-load-")
        .tempdir()
        .map_err(|e| TransportError::Io {
            what: "creating a work dir for docker load".into(),
            source: e,
        })?;
    let dir = work.path().join("layout");
    let mut report = push::write_to_layout(image, &dir, &target).await?;
    let manifest = match ManifestKind::parse(&image.manifest_bytes, &target.to_string())? {
        ManifestKind::Image(m) => m,
        ManifestKind::Index(_) => unreachable!("a pushed image value is one manifest"),
    };
    let archive = work.path().join("image.tar");
    let (from, out, tag) = (dir.clone(), archive.clone(), name.familiar());
    crate::spawn_blocking(move || docker_archive::write(&from, &manifest, &tag, &out))
        .await
        .expect("docker archive task")?;
    let lines = store.load(&archive).await?;
    tracing::info!(image = %target, engine = %store.describe(), loaded = %lines.join("; "), "loaded into the container engine");
    report.blobs_uploaded = 1 + image.layers.len() as u32;
    report.bytes_uploaded = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    Ok(report)
}

/// Of a multi-platform build, loads the image of the engine's own platform.
pub async fn load_platform_of_engine(
    images: &[(PushedImage, Platform)],
    name: &EngineRef,
    registries: &Registries,
) -> Result<PushReport, TransportError> {
    let (store, _) = local_engine(registries)?;
    let (os, architecture) = store.platform().await?;
    let chosen = images
        .iter()
        .find(|(_, p)| p.os == os && p.architecture == architecture)
        .ok_or_else(|| {
            engine_error(
                &store.describe(),
                format!(
                    "it runs {os}/{architecture} and holds one platform per image; built were {}: push the index to a registry or an OCI layout instead",
                    images.iter().map(|(_, p)| p.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
    load_image(&chosen.0, name, registries).await
}
