//! Image references: `HOST[:PORT]/REPO[:TAG|@sha256:…]` for registries, `oci:DIR[:TAG]` for OCI
//! layouts, and names without a registry (`wls:12.2.1.4.0`, `docker-daemon:NAME`) for the local
//! container engine's image store, as WIT's `docker build -t` leaves them.

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
    Engine(EngineRef),
}

/// An image in the local container engine's store, named as the container tools normalise a
/// name without a registry: `wls:test` is `docker.io/library/wls:test`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct EngineRef {
    /// `docker.io/library/wls`, `docker.io/org/app`.
    pub repository: String,
    pub tag: String,
}

impl EngineRef {
    /// The name as `docker images` shows it (`wls:test`, `org/app:1`).
    pub fn familiar(&self) -> String {
        let short = match self.repository.strip_prefix("docker.io/") {
            Some(path) => path.strip_prefix("library/").unwrap_or(path),
            None => &self.repository,
        };
        format!("{short}:{}", self.tag)
    }

    /// The same name in its registry (Docker Hub for short names), where the container tools
    /// pull it from when the engine lacks it.
    pub fn in_registry(&self) -> RegistryRef {
        let (registry, repository) = self
            .repository
            .split_once('/')
            .expect("engine repositories are normalised with a registry");
        RegistryRef {
            registry: registry.into(),
            repository: repository.into(),
            tag: Some(self.tag.clone()),
            digest: None,
        }
    }
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
    /// A reference to read from. Same rules as one to write; kept apart because a name without
    /// a registry reads as docker does: the engine's image if it has one, else Docker Hub's.
    pub fn parse_source(text: &str) -> Result<ImageRef, ReferenceError> {
        text.parse()
    }
}

fn engine_ref(input: &str, name: &str) -> Result<EngineRef, ReferenceError> {
    let fail = |reason: String| ReferenceError {
        input: input.into(),
        reason,
    };
    if name.contains('@') {
        return Err(fail(
            "an image of the local container engine is named NAME[:TAG]; a digest needs a registry (HOST[:PORT]/REPO@sha256:…)".into(),
        ));
    }
    // A name with a registry (`docker-daemon:reg.example/app:1`, as `docker pull` stores it)
    // keeps it; any other is Docker Hub's.
    let Some(full) = docker_hub(name) else {
        if name.is_empty() || name.starts_with("oci:") || name.contains("://") {
            return Err(fail("it names no image".into()));
        }
        // The first part names a registry host, so this parses as a registry reference.
        return match name.parse::<ImageRef>()? {
            ImageRef::Registry(r) => Ok(EngineRef {
                repository: format!("{}/{}", r.registry, r.repository),
                tag: r.tag.unwrap_or_else(|| "latest".into()),
            }),
            _ => Err(fail("it names no image".into())),
        };
    };
    let (repository, tag) = full
        .rsplit_once(':')
        .expect("docker_hub always writes a tag");
    let path = repository.trim_start_matches("docker.io/");
    if !is_valid_repository(path) {
        return Err(fail(format!(
            "'{path}' is not a valid repository name (lowercase letters, digits, '.', '_', '-' and '/')"
        )));
    }
    if !is_valid_tag(tag) {
        return Err(fail(format!("'{tag}' is not a valid tag")));
    }
    Ok(EngineRef {
        repository: repository.into(),
        tag: tag.into(),
    })
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
        if let Some(name) = input.strip_prefix("docker-daemon:") {
            return engine_ref(input, name).map(ImageRef::Engine);
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
        // A first part that is no host (`wls:12.2.1.4.0`, `oracle/weblogic:14`) names an image of
        // the local container engine, as in WIT's examples.
        let host_and_path = name.split_once('/').filter(|(host, _)| {
            host.contains('.')
                || host.contains(':')
                || *host == "localhost"
                || host.starts_with('[')
        });
        let Some((host, path)) = host_and_path else {
            return engine_ref(input, input).map(ImageRef::Engine);
        };
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
            ImageRef::Engine(e) => write!(f, "docker-daemon:{}", e.familiar()),
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
            "busybox@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "Busybox:latest",
            "docker-daemon:",
            "docker-daemon:oci:/tmp/x",
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
    fn names_without_a_registry_are_the_engines_as_the_container_tools_normalise_them() {
        for (short, repository, tag, shown) in [
            (
                "busybox",
                "docker.io/library/busybox",
                "latest",
                "busybox:latest",
            ),
            (
                "wls:12.2.1.4.0",
                "docker.io/library/wls",
                "12.2.1.4.0",
                "wls:12.2.1.4.0",
            ),
            (
                "oracle/weblogic:14",
                "docker.io/oracle/weblogic",
                "14",
                "oracle/weblogic:14",
            ),
            (
                "docker-daemon:wls:test",
                "docker.io/library/wls",
                "test",
                "wls:test",
            ),
            (
                "docker-daemon:reg.example:5000/app",
                "reg.example:5000/app",
                "latest",
                "reg.example:5000/app:latest",
            ),
        ] {
            match ImageRef::parse_source(short).unwrap() {
                ImageRef::Engine(e) => {
                    assert_eq!((e.repository.as_str(), e.tag.as_str()), (repository, tag));
                    assert_eq!(e.familiar(), shown);
                    assert_eq!(
                        ImageRef::Engine(e.clone()).to_string(),
                        format!("docker-daemon:{shown}")
                    );
                    assert_eq!(e.in_registry().to_string(), format!("{repository}:{tag}"));
                }
                other => panic!("{short}: expected an engine image, got {other}"),
            }
        }
        let shown = ImageRef::parse_source("wls:test").unwrap().to_string();
        assert_eq!(shown.parse::<ImageRef>().unwrap().to_string(), shown);
        assert!(matches!(
            ImageRef::parse_source("reg.example:5000/wls/base:1").unwrap(),
            ImageRef::Registry(_)
        ));
    }
}
