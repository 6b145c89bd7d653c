//! Who may call what, in one place: the caller's role and name come from its verified
//! certificate (subject OU and CN), and [`RoleLayer`] checks every call against [`allowed`]
//! before any handler runs. Handlers that need the caller's name read it with [`caller`].

use patchfarm_client::tls::Role;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Request, Status};

/// The roles that may call each method: the farm's whole access policy.
pub fn allowed(path: &str) -> &'static [Role] {
    use Role::*;
    match path {
        // Agents read the catalog to resolve a job's cache keys.
        "/patchfarm.v1.Farm/CatalogList" => &[Client, Coordinator, Agent],
        "/patchfarm.v1.Raft/Send" => &[Coordinator],
        // Clients ask every node for its own view (`cluster status`).
        "/patchfarm.v1.Raft/LocalStatus" => &[Coordinator, Client],
        p if p.starts_with("/patchfarm.v1.Farm/") => &[Client, Coordinator],
        // Anyone with a farm certificate may ask whether a node serves.
        p if p.starts_with("/grpc.health.v1.Health/") => &[Client, Coordinator, Agent],
        p if p.starts_with("/patchfarm.v1.AgentApi/") => &[Agent],
        _ => &[],
    }
}

/// Who is calling: role and name from the verified certificate, or anyone under `--insecure`.
#[derive(Clone, Debug)]
pub struct Caller {
    pub role: Option<Role>,
    pub name: String,
}

/// The caller of `path`, if its certificate's role may call it; `insecure` servers have no
/// certificates, and every caller may do everything.
fn admit(path: &str, extensions: &http::Extensions, insecure: bool) -> Result<Caller, Status> {
    if insecure {
        return Ok(Caller {
            role: None,
            name: "insecure".into(),
        });
    }
    let certs = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.peer_certs())
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let caller = identity_of(leaf.as_ref()).ok_or_else(|| {
        Status::permission_denied(
            "certificate names no patchfarm role (subject OU) or no valid name (CN: letters, digits, '.', '-', '_')",
        )
    })?;
    let roles = allowed(path);
    match caller.role {
        Some(role) if roles.contains(&role) => Ok(caller),
        Some(role) => Err(Status::permission_denied(format!(
            "certificate {:?} has role {role}; {path} needs {}",
            caller.name,
            if roles.is_empty() {
                "a role no certificate has".to_string()
            } else {
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            }
        ))),
        None => Ok(caller),
    }
}

/// The caller [`RoleLayer`] admitted.
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::internal("no role check ran for this call"))
}

/// Checks every call's certificate against [`allowed`] and hands the caller to the handler.
#[derive(Clone, Copy)]
pub struct RoleLayer {
    pub insecure: bool,
}

impl<S> tower::Layer<S> for RoleLayer {
    type Service = RoleCheck<S>;

    fn layer(&self, inner: S) -> RoleCheck<S> {
        RoleCheck {
            inner,
            insecure: self.insecure,
        }
    }
}

#[derive(Clone)]
pub struct RoleCheck<S> {
    inner: S,
    insecure: bool,
}

type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for RoleCheck<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Answer<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match admit(request.uri().path(), request.extensions(), self.insecure) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                tracing::debug!(path = request.uri().path(), %status, "call refused");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// A certificate's name becomes an agent's name in the state, logs and listings: a DNS-label-like
/// word, never empty, never a control character.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn identity_of(der: &[u8]) -> Option<Caller> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let ou = subject
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok())?;
    let role = Role::from_unit(ou)?;
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .filter(|name| is_valid_name(name))?
        .to_string();
    Some(Caller {
        role: Some(role),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchfarm_client::tls::{init, TlsError};

    #[test]
    fn every_method_has_its_roles() {
        use Role::*;
        assert_eq!(
            allowed("/patchfarm.v1.Farm/SubmitJob"),
            [Client, Coordinator]
        );
        assert_eq!(
            allowed("/patchfarm.v1.Farm/CatalogList"),
            [Client, Coordinator, Agent]
        );
        assert_eq!(allowed("/patchfarm.v1.AgentApi/Lease"), [Agent]);
        assert_eq!(allowed("/patchfarm.v1.Raft/Send"), [Coordinator]);
        assert_eq!(
            allowed("/grpc.health.v1.Health/Check"),
            [Client, Coordinator, Agent]
        );
        assert!(allowed("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").is_empty());
    }

    #[test]
    fn roles_round_trip_through_certificates() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), 2, 1).unwrap();
        for (file, role, cn) in [
            ("coordinator-2.crt", Role::Coordinator, "coordinator-2"),
            ("agent-1.crt", Role::Agent, "agent-1"),
            ("client.crt", Role::Client, "client"),
        ] {
            let pem = std::fs::read_to_string(dir.path().join(file)).unwrap();
            let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .unwrap()
                .1
                .contents;
            let caller = identity_of(&der).unwrap();
            assert_eq!(caller.role, Some(role));
            assert_eq!(caller.name, cn);
        }
        assert!(matches!(
            init(dir.path(), 1, 1),
            Err(TlsError::Exists { .. })
        ));
    }

    #[test]
    fn certificates_without_a_clean_name_name_nobody() {
        let named = |cn: Option<&str>| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationalUnitName, "agent");
            if let Some(cn) = cn {
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, cn);
            }
            identity_of(params.self_signed(&key).unwrap().der())
        };
        assert_eq!(named(Some("agent-7")).unwrap().name, "agent-7");
        assert!(named(Some("agent\u{7}7")).is_none());
        assert!(named(Some("agent 7\nwarn forged")).is_none());
        assert!(named(None).is_none());
    }
}
