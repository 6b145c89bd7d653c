//! mTLS for every farm connection: the certificate set `patchfarm certs init` writes (feature
//! `certs`), the rustls configurations built from it, and the roles certificates carry.
//!
//! A certificate's role is its subject's organizational unit (`coordinator`, `agent`, `client`);
//! its name is the common name (`coordinator-2`, `agent-1`, `client`). All are signed by the
//! farm's CA, so a certificate from another CA never reaches a handler, and a handler refuses a
//! valid certificate of the wrong role.

#[cfg(feature = "certs")]
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::fmt;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The DNS name every coordinator certificate carries; clients verify it whatever address they dial.
pub const COORDINATOR_SERVER_NAME: &str = "patchfarm-coordinator";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[cfg(feature = "certs")]
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{dir} already holds a certificate set ({file}); pick another --out or remove it")]
    Exists { dir: PathBuf, file: String },
}

/// What a certificate allows its holder to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Agent,
    Client,
}

impl Role {
    /// The organizational unit a certificate of this role carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Agent => "agent",
            Role::Client => "client",
        }
    }

    /// The role a certificate's organizational unit names, if any.
    pub fn from_unit(unit: &str) -> Option<Role> {
        match unit {
            "coordinator" => Some(Role::Coordinator),
            "agent" => Some(Role::Agent),
            "client" => Some(Role::Client),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a coordinator or an agent is given its certificate: a directory, the three files one by
/// one, or none at all (`--insecure`).
#[derive(clap::Args, Debug, Clone)]
pub struct TlsFlags {
    /// Directory with ca.crt and this identity's <name>.crt/.key (from `patchfarm certs init`).
    #[arg(long = "tls-dir", required_unless_present_any = ["insecure", "tls_cert"])]
    pub tls_dir: Option<PathBuf>,
    /// The certificate, key and CA named one by one instead of --tls-dir (a Kubernetes
    /// Secret in cert-manager's layout: tls.crt, tls.key, ca.crt); all three together.
    #[arg(long = "tls-cert", value_name = "FILE", conflicts_with_all = ["tls_dir", "insecure"], requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[arg(long = "tls-ca", value_name = "FILE", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// Plaintext gRPC with no certificates and no roles, on both sides. For experiments only.
    #[arg(long, conflicts_with = "tls_dir")]
    pub insecure: bool,
}

impl TlsFlags {
    /// The files of identity `name`; `None` with `--insecure`.
    pub fn files(&self, name: &str) -> Result<Option<TlsFiles>, String> {
        if self.insecure {
            return Ok(None);
        }
        TlsFiles::from_flags(
            self.tls_dir.as_deref(),
            name,
            [
                self.tls_cert.as_deref(),
                self.tls_key.as_deref(),
                self.tls_ca.as_deref(),
            ],
        )
    }
}

/// The files of one identity: its certificate and key, and the farm's CA.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsFiles {
    /// `<name>.crt`, `<name>.key` and `ca.crt` in `dir`, as `patchfarm certs init` writes them.
    pub fn new(dir: &Path, name: &str) -> Self {
        TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            ca: dir.join("ca.crt"),
        }
    }

    /// The files as the flags give them: `--tls-cert`, `--tls-key` and `--tls-ca` together (a
    /// Kubernetes Secret in cert-manager's layout: `tls.crt`, `tls.key`, `ca.crt`), else
    /// `--tls-dir` with the identity `name`; `None` when neither is given.
    pub fn from_flags(
        dir: Option<&Path>,
        name: &str,
        explicit: [Option<&Path>; 3],
    ) -> Result<Option<Self>, String> {
        match (dir, explicit) {
            (Some(_), [None, None, None]) | (None, [None, None, None]) => {
                Ok(dir.map(|dir| TlsFiles::new(dir, name)))
            }
            (None, [Some(cert), Some(key), Some(ca)]) => Ok(Some(TlsFiles {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                ca: ca.to_path_buf(),
            })),
            (Some(_), _) => Err("--tls-dir, or --tls-cert/--tls-key/--tls-ca: not both".into()),
            (None, _) => {
                Err("--tls-cert, --tls-key and --tls-ca go together: give all three".into())
            }
        }
    }

    fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    fn identity(&self) -> Result<Identity, TlsError> {
        Ok(Identity::from_pem(
            Self::read(&self.cert)?,
            Self::read(&self.key)?,
        ))
    }

    fn ca(&self) -> Result<Certificate, TlsError> {
        Ok(Certificate::from_pem(Self::read(&self.ca)?))
    }

    /// Server side: present our certificate, require one signed by the farm CA.
    pub fn server(&self) -> Result<ServerTlsConfig, TlsError> {
        Ok(ServerTlsConfig::new()
            .identity(self.identity()?)
            .client_ca_root(self.ca()?))
    }

    /// Client side: present our certificate, trust only the farm CA, expect a coordinator.
    pub fn client(&self) -> Result<ClientTlsConfig, TlsError> {
        Ok(ClientTlsConfig::new()
            .ca_certificate(self.ca()?)
            .identity(self.identity()?)
            .domain_name(COORDINATOR_SERVER_NAME))
    }
}

#[cfg(feature = "certs")]
/// Writes a fresh farm certificate set into `out`: `ca.crt`/`ca.key`, `coordinator-<id>`,
/// `agent-<k>`, `client`. Refuses to overwrite an existing set.
pub fn init(out: &Path, coordinators: u32, agents: u32) -> Result<Vec<PathBuf>, TlsError> {
    if out.join("ca.crt").exists() {
        return Err(TlsError::Exists {
            dir: out.to_path_buf(),
            file: "ca.crt".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(|source| TlsError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("patchfarm CA", None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let mut written = Vec::new();
    write(out, "ca.crt", ca_cert.pem().as_bytes(), false, &mut written)?;
    write(
        out,
        "ca.key",
        ca_key.serialize_pem().as_bytes(),
        true,
        &mut written,
    )?;
    let mut identities: Vec<(String, Role)> = (1..=coordinators)
        .map(|id| (format!("coordinator-{id}"), Role::Coordinator))
        .collect();
    identities.extend((1..=agents).map(|k| (format!("agent-{k}"), Role::Agent)));
    identities.push(("client".into(), Role::Client));
    for (common_name, role) in identities {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&common_name, Some(role));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if role == Role::Coordinator {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
            params.subject_alt_names = vec![
                SanType::DnsName(COORDINATOR_SERVER_NAME.try_into()?),
                SanType::DnsName("localhost".try_into()?),
                SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            ];
        }
        let cert = params.signed_by(&key, &issuer)?;
        write(
            out,
            &format!("{common_name}.crt"),
            cert.pem().as_bytes(),
            false,
            &mut written,
        )?;
        write(
            out,
            &format!("{common_name}.key"),
            key.serialize_pem().as_bytes(),
            true,
            &mut written,
        )?;
    }
    Ok(written)
}

#[cfg(feature = "certs")]
fn name(common_name: &str, role: Option<Role>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "patchfarm");
    if let Some(role) = role {
        dn.push(DnType::OrganizationalUnitName, role.as_str());
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

#[cfg(feature = "certs")]
fn write(
    dir: &Path,
    file: &str,
    bytes: &[u8],
    secret: bool,
    written: &mut Vec<PathBuf>,
) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(file);
    let mode = if secret { 0o600 } else { 0o644 };
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .and_then(|mut f| f.write_all(bytes));
    result.map_err(|source| TlsError::Write {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(())
}
