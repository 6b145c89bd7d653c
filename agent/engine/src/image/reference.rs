//! Image references: `HOST[:PORT]/REPO[:TAG|@sha256:…]` for registries, `oci:DIR[:TAG]` for OCI layouts.

use crate::digest::Digest;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference '{input}': {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

/// Where an image lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ImageRef {
    Registry(RegistryRef),
    Layout(LayoutRef),
}

/// An image in a registry, named by tag, digest or both.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RegistryRef {
    /// `host[:port]` exactly as written (the key docker's config.json uses).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// An image in an OCI image layout directory, as skopeo spells it (`oci:DIR[:TAG]`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct LayoutRef {
    pub dir: PathBuf,
    pub tag: Option<String>,
}

impl RegistryRef {
    /// The tag or digest to address the manifest by (digest wins, as in docker).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// True for registries reached over plain HTTP without being asked: loopback hosts only.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }

    /// The same repository addressed by `digest`.
    pub fn with_digest(&self, digest: Digest) -> RegistryRef {
        RegistryRef {
            digest: Some(digest),
            tag: None,
            ..self.clone()
        }
    }
}

/// `localhost`, `127.0.0.0/8` and `[::1]`, with or without a port.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = strip_port(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn strip_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(end) => &registry[..=end],
            None => registry,
        };
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

fn is_valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|component| {
            !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && component.as_bytes()[0].is_ascii_alphanumeric()
                && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric()
        })
}

pub(crate) fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.as_bytes()[0] == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn is_valid_host(host: &str) -> bool {
    let bare = strip_port(host);
    let port_ok = match host.strip_prefix(bare) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .is_some(),
        None => false,
    };
    let host_ok = if bare.starts_with('[') {
        bare.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
    } else {
        !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    port_ok && host_ok
}

impl ImageRef {
    /// A reference to read from, as the container tools read short names: `busybox` is
    /// `docker.io/library/busybox:latest` and `org/app:1` is `docker.io/org/app:1` (WIT's
    /// command lines name bases that way). Images written take no such default: a tag must say
    /// where it goes.
    pub fn parse_source(text: &str) -> Result<ImageRef, ReferenceError> {
        text.parse().or_else(|e| match docker_hub(text) {
            Some(full) => full.parse(),
            None => Err(e),
        })
    }
}

/// `NAME[:TAG]` or `ORG/NAME[:TAG|@DIGEST]` spelled out on Docker Hub; `None` when the first
/// part names a registry host (or the text is a layout or a URL).
fn docker_hub(text: &str) -> Option<String> {
    if text.starts_with("oci:") || text.contains("://") || text.is_empty() {
        return None;
    }
    let path = match text.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            return None
        }
        Some(_) => text.to_string(),
        None => format!("library/{text}"),
    };
    let name = path.split('@').next().unwrap_or(&path);
    let tagged = path.contains('@') || name.rsplit('/').next().is_some_and(|n| n.contains(':'));
    Some(if tagged {
        format!("docker.io/{path}")
    } else {
        format!("docker.io/{path}:latest")
    })
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ReferenceError {
            input: input.into(),
            reason: reason.into(),
        };
        if let Some(rest) = input.strip_prefix("oci:") {
            // The tag is what follows the last ':' unless that part looks like a path.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => (dir, Some(tag)),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(fail(
                    "an OCI layout reference needs a directory: oci:DIR[:TAG]",
                ));
            }
            if let Some(tag) = tag {
                if !is_valid_tag(tag) {
                    return Err(fail(&format!("'{tag}' is not a valid tag")));
                }
            }
            return Ok(ImageRef::Layout(LayoutRef {
                dir: PathBuf::from(dir),
                tag: tag.map(str::to_owned),
            }));
        }
        if input.contains("://") {
            return Err(fail("write HOST[:PORT]/REPO[:TAG] without a URL scheme"));
        }
        let (name, digest) = match input.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(digest.parse::<Digest>().map_err(|e| fail(&e.to_string()))?),
            ),
            None => (input, None),
        };
        // WIT's examples name local engine images (`wls:12.2.1.4.0`); patchfarm writes no
        // engine image store yet, so say both ways it can go.
        let no_registry = || {
            fail(&format!(
                "it names no registry, and patchfarm does not write the local container engine's image store yet: use a registry reference (HOST[:PORT]/{input}) or an OCI layout (oci:DIR:{})",
                input.rsplit_once(':').map(|(_, tag)| tag).filter(|t| !t.contains('/')).unwrap_or("latest")
            ))
        };
        let (host, path) = name.split_once('/').ok_or_else(no_registry)?;
        let looks_like_host = host.contains('.')
            || host.contains(':')
            || host == "localhost"
            || host.starts_with('[');
        if !looks_like_host {
            return Err(no_registry());
        }
        if !is_valid_host(host) {
            return Err(fail(&format!("'{host}' is not a registry host")));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        if !is_valid_repository(repository) {
            return Err(fail(&format!(
                "'{repository}' is not a valid repository name (lowercase letters, digits, '.', '_', '-' and '/')"
            )));
        }
        if let Some(tag) = tag {
            if !is_valid_tag(tag) {
                return Err(fail(&format!("'{tag}' is not a valid tag")));
            }
        }
        Ok(ImageRef::Registry(RegistryRef {
            registry: host.into(),
            repository: repository.into(),
            tag: tag.map(str::to_owned),
            digest,
        }))
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Registry(r) => r.fmt(f),
            ImageRef::Layout(l) => {
                write!(f, "oci:{}", l.dir.display())?;
                if let Some(tag) = &l.tag {
                    write!(f, ":{tag}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(s: &str) -> RegistryRef {
        match s.parse::<ImageRef>().unwrap() {
            ImageRef::Registry(r) => r,
            other => panic!("expected registry ref, got {other}"),
        }
    }

    #[test]
    fn parses_registry_forms() {
        let r = registry("127.0.0.1:5000/wls/aux:1.0");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "wls/aux");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert!(r.is_loopback());
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = registry(&format!(
            "container-registry.oracle.com/middleware/weblogic@{d}"
        ));
        assert_eq!(r.digest.unwrap().to_string(), d);
        assert!(r.tag.is_none());
        assert!(!registry("lhr.ocir.io/ns/img:t").is_loopback());
        assert!(registry("localhost/x").is_loopback());
        assert!(registry("[::1]:5000/x:y").is_loopback());
        assert!(registry("127.9.9.9:80/x").is_loopback());
    }

    #[test]
    fn parses_layout_forms() {
        match "oci:/tmp/out:v1".parse::<ImageRef>().unwrap() {
            ImageRef::Layout(l) => {
                assert_eq!(l.dir, PathBuf::from("/tmp/out"));
                assert_eq!(l.tag.as_deref(), Some("v1"));
            }
            _ => panic!(),
        }
        match "oci:relative/dir".parse::<ImageRef>().unwrap() {
            ImageRef::Layout(l) => assert!(l.tag.is_none()),
            _ => panic!(),
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "busybox",
            "busybox:latest",
            "https://reg.example.com/x",
            "reg.example.com/UPPER:tag",
            "reg.example.com/x:bad tag",
            "reg.example.com/x@sha256:123",
            "reg.example.com:99999/x",
            "oci:",
        ] {
            let err = bad.parse::<ImageRef>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn sources_read_docker_hub_short_names_as_the_container_tools_do() {
        for (short, full) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            (
                "oracle/weblogic:12.2.1.4",
                "docker.io/oracle/weblogic:12.2.1.4",
            ),
            ("reg.example:5000/wls/base:1", "reg.example:5000/wls/base:1"),
        ] {
            assert_eq!(ImageRef::parse_source(short).unwrap().to_string(), full);
        }
        assert!(ImageRef::parse_source("Busybox").is_err());
        assert!(
            "busybox".parse::<ImageRef>().is_err(),
            "a tag to write takes no default registry"
        );
    }
}
