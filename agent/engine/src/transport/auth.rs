//! Registry credentials from docker's config (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`: auths, credsStore, credHelpers), redacted in Debug output.

use docker_credential::{CredentialRetrievalError, DockerCredential};
use std::fmt;

/// Credentials for one registry. The password never reaches Debug output or logs.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

impl Credentials {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }

    pub(crate) fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            Credentials::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone())
            }
        }
    }
}

/// Looks `registry` (`host[:port]`) up in docker's config; blocking (helpers are processes).
pub fn lookup(registry: &str) -> Credentials {
    for key in [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ] {
        match docker_credential::get_credential(&key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                return Credentials::Basic { username, password };
            }
            Ok(DockerCredential::IdentityToken(_)) => {
                tracing::warn!(registry, "docker config holds an identity token for this registry; patchfarm supports username/password credentials only, continuing anonymously");
                return Credentials::Anonymous;
            }
            Err(CredentialRetrievalError::NoCredentialConfigured) => continue,
            Err(
                CredentialRetrievalError::ConfigNotFound
                | CredentialRetrievalError::ConfigReadError,
            ) => {
                return Credentials::Anonymous;
            }
            Err(other) => {
                tracing::warn!(registry, error = %other, "could not read credentials from docker config; continuing anonymously");
                return Credentials::Anonymous;
            }
        }
    }
    Credentials::Anonymous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
