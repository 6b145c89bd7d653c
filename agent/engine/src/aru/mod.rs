//! Oracle's patch service (ARU), spoken as WIT speaks it: the REST search by bug, the release
//! table, recommended patches per product and release, and downloads — each zip verified
//! against the SHA-256 digest ARU publishes before it enters the cache (WIT does not check).
//! The base URL follows WIT's `WLSIMG_ARU_HOST`; `PATCHFARM_ARU_URL` overrides it whole.

mod conflicts;
mod resolve;
pub mod xml;

pub use resolve::{fetch_into_cache, resolve, resolve_opatch, Resolution, Wanted};
pub use xml::{AruPatch, Release};

use crate::digest::HashingWriter;
use futures_util::StreamExt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// WIT's deadline for one ARU call.
const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// A download may take long, but never sits silent this long.
const DOWNLOAD_IDLE_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AruError {
    #[error("Oracle's patch service at {url} refused the credentials of {user}: invalid credentials (check --user and the password)")]
    InvalidCredentials { url: String, user: String },
    #[error("Oracle's patch service at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Oracle's patch service at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("Oracle's patch service: {message}")]
    Service { message: String },
    #[error("Oracle's patch service found nothing: {message}")]
    NothingFound { message: String },
    #[error("Oracle's patch service sent a malformed answer for {what}: {reason}")]
    Malformed { what: String, reason: String },
    #[error("patch {patch}: {file} does not match the SHA-256 digest Oracle's patch service publishes (expected {expected}, got {actual}); nothing was cached")]
    DigestMismatch {
        patch: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Selection(String),
    #[error("Oracle's patch service reports conflicting patches: {}; choose among them, or ask Oracle for a merge patch", sets.iter().map(|set| format!("[{}] conflict", set.join(", "))).collect::<Vec<_>>().join("; "))]
    Conflicts { sets: Vec<Vec<String>> },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
}

/// An Oracle Support account. The password never reaches a log, an error or a Debug print.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl Credentials {
    pub fn new(user: String, password: String) -> Self {
        Credentials { user, password }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, password: <redacted>)", self.user)
    }
}

/// A client of ARU for one account.
pub struct AruClient {
    base: reqwest::Url,
    credentials: Credentials,
    http: reqwest::Client,
    releases: tokio::sync::OnceCell<Vec<Release>>,
}

impl std::fmt::Debug for AruClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AruClient({}, {:?})", self.base, self.credentials)
    }
}

/// WIT's service URL, or `PATCHFARM_ARU_URL` whole.
pub fn service_url() -> Result<reqwest::Url, AruError> {
    let text = match std::env::var("PATCHFARM_ARU_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => url,
        None => {
            let host = std::env::var("WLSIMG_ARU_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "updates.oracle.com".into());
            format!("https://{host}/Orion/Services")
        }
    };
    let url =
        reqwest::Url::parse(text.trim_end_matches('/')).map_err(|e| AruError::Unreachable {
            url: text.clone(),
            reason: format!("not a URL ({e}); PATCHFARM_ARU_URL takes http(s)://HOST[:PORT]/PATH"),
        })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AruError::Unreachable {
            url: text,
            reason: "only http and https are spoken".into(),
        });
    }
    Ok(url)
}

impl AruClient {
    /// A client of `base` (see [`service_url`]), through `https_proxy` when given (WIT's
    /// `--httpsProxyUrl`).
    pub fn new(
        base: reqwest::Url,
        credentials: Credentials,
        https_proxy: Option<&str>,
    ) -> Result<Self, AruError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(DOWNLOAD_IDLE_DEADLINE)
            .user_agent(concat!("patchfarm/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(10))
            .no_proxy();
        if let Some(proxy) = https_proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| AruError::Unreachable {
                url: proxy.to_owned(),
                reason: format!("--httpsProxyUrl: {e}"),
            })?;
            builder = builder.proxy(proxy);
        }
        let http = builder.build().map_err(|e| AruError::Unreachable {
            url: base.to_string(),
            reason: e.to_string(),
        })?;
        Ok(AruClient {
            base,
            credentials,
            http,
            releases: tokio::sync::OnceCell::new(),
        })
    }

    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.base.as_str().trim_end_matches('/')
        )
    }

    /// Credentials go to the service's own host only (downloads there too), never elsewhere.
    fn authorised(&self, url: &reqwest::Url) -> bool {
        url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
            && url.scheme() == self.base.scheme()
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, AruError> {
        self.send(url, None).await
    }

    /// A GET, or a POST of an XML `body`, with the credentials where they belong.
    async fn send(&self, url: &str, body: Option<String>) -> Result<reqwest::Response, AruError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| AruError::Malformed {
            what: url.into(),
            reason: e.to_string(),
        })?;
        let mut request = match body {
            Some(body) => self
                .http
                .post(parsed.clone())
                .header(http::header::CONTENT_TYPE, "application/xml")
                .body(body),
            None => self.http.get(parsed.clone()),
        };
        if self.authorised(&parsed) {
            request = request.basic_auth(&self.credentials.user, Some(&self.credentials.password));
        }
        let response = request.send().await.map_err(|e| AruError::Unreachable {
            url: url.into(),
            reason: error_chain(&e),
        })?;
        match response.status().as_u16() {
            200..=299 => Ok(response),
            401 | 403 => Err(AruError::InvalidCredentials {
                url: self.base.to_string(),
                user: self.credentials.user.clone(),
            }),
            status => Err(AruError::Status {
                url: url.into(),
                status,
            }),
        }
    }

    /// One XML answer, within WIT's 30 s deadline.
    async fn get_xml(&self, path_and_query: &str) -> Result<String, AruError> {
        self.xml_call(path_and_query, None).await
    }

    /// The XML answer to posting `body`, within the same deadline.
    async fn post_xml(&self, path: &str, body: String) -> Result<String, AruError> {
        self.xml_call(path, Some(body)).await
    }

    async fn xml_call(
        &self,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<String, AruError> {
        let url = self.url(path_and_query);
        let fetch = async {
            let response = self.send(&url, body).await?;
            response.text().await.map_err(|e| AruError::Unreachable {
                url: url.clone(),
                reason: error_chain(&e),
            })
        };
        tokio::time::timeout(CALL_DEADLINE, fetch)
            .await
            .map_err(|_| AruError::Unreachable {
                url: url.clone(),
                reason: format!("no answer within {CALL_DEADLINE:?}"),
            })?
    }

    /// WIT's credentials check (the language table): a 401 is "invalid credentials".
    pub async fn check_credentials(&self) -> Result<(), AruError> {
        let xml = self.get_xml("/metadata?table=aru_languages").await?;
        xml::check_results(&xml, "the language table")
    }

    pub async fn releases(&self) -> Result<&[Release], AruError> {
        self.releases
            .get_or_try_init(|| async {
                let xml = self.get_xml("/metadata?table=aru_releases").await?;
                xml::parse_releases(&xml, "the release table")
            })
            .await
            .map(Vec::as_slice)
    }

    /// The release id of `product` (its description) at `version`, as WIT finds it: the first
    /// release whose text starts with "DESCRIPTION VERSION".
    pub async fn release_number(
        &self,
        description: &str,
        version: &str,
    ) -> Result<Option<String>, AruError> {
        let prefix = format!("{description} {version}");
        Ok(self
            .releases()
            .await?
            .iter()
            .find(|r| r.text.starts_with(&prefix))
            .map(|r| r.id.clone()))
    }

    /// Recommended patches of a product's release (`[]` when ARU finds none).
    pub async fn recommended(
        &self,
        product_id: &str,
        release: &str,
    ) -> Result<Vec<AruPatch>, AruError> {
        let query = format!(
            "/search?patch_type=all&life_cycle=Recommended&product={product_id}&release={release}"
        );
        let xml = self.get_xml(&query).await?;
        match xml::parse_patches(&xml, &format!("recommended patches of release {release}")) {
            Err(AruError::NothingFound { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// Every version of patch `bug` ARU has.
    pub async fn search_bug(&self, bug: &str) -> Result<Vec<AruPatch>, AruError> {
        if bug.is_empty() || !bug.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AruError::Selection(format!(
                "patch {bug:?}: a bug number is digits only"
            )));
        }
        let xml = self.get_xml(&format!("/search?bug={bug}")).await?;
        xml::parse_patches(&xml, &format!("bug {bug}")).map_err(|e| match e {
            AruError::NothingFound { .. } => AruError::NothingFound {
                message: format!("no patch {bug} (check the bug number)"),
            },
            other => other,
        })
    }

    /// Downloads `patch` into `dir` and checks it against ARU's SHA-256; returns the file. A
    /// file that does not match is removed and refused.
    pub async fn download(
        &self,
        patch: &AruPatch,
        dir: &Path,
    ) -> Result<std::path::PathBuf, AruError> {
        let what = format!("{}_{}", patch.patch_id, patch.version);
        if patch.sha256.len() != 64 {
            return Err(AruError::Malformed {
                what: format!("patch {what}"),
                reason: "no SHA-256 digest is published for its file, so it cannot be verified"
                    .into(),
            });
        }
        let name = Path::new(&patch.file_name)
            .file_name()
            .filter(|n| !patch.file_name.is_empty() && n.len() == patch.file_name.len())
            .ok_or_else(|| AruError::Malformed {
                what: format!("patch {what}"),
                reason: format!("file name {:?} is not a plain name", patch.file_name),
            })?;
        let io = |e: std::io::Error| AruError::Io {
            what: format!("downloading {}", patch.file_name),
            source: e,
        };
        let temp = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(dir)
            .map_err(io)?;
        let response = self.get(&patch.download_url).await?;
        let mut stream = response.bytes_stream();
        let mut writer = HashingWriter::new(std::io::BufWriter::new(temp.as_file()));
        while let Some(chunk) = tokio::time::timeout(DOWNLOAD_IDLE_DEADLINE, stream.next())
            .await
            .map_err(|_| AruError::Unreachable {
                url: patch.download_url.clone(),
                reason: format!("the download sent nothing for {DOWNLOAD_IDLE_DEADLINE:?}"),
            })?
        {
            let chunk = chunk.map_err(|e| AruError::Unreachable {
                url: patch.download_url.clone(),
                reason: error_chain(&e),
            })?;
            writer.write_all(&chunk).map_err(io)?;
        }
        let (buffered, digest, _) = writer.finish();
        buffered.into_inner().map_err(|e| io(e.into_error()))?;
        if digest.hex() != patch.sha256 {
            return Err(AruError::DigestMismatch {
                patch: what,
                file: patch.file_name.clone(),
                expected: patch.sha256.clone(),
                actual: digest.hex().to_owned(),
            });
        }
        let path = dir.join(name);
        temp.persist(&path).map_err(|e| io(e.error))?;
        Ok(path)
    }
}

/// reqwest's error with its causes (the top line alone says only "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
