//! Platforms (`os/arch[/variant]`) as `--platform` spells them.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid platform '{0}': expected OS/ARCH[/VARIANT], e.g. linux/amd64")]
pub struct PlatformParseError(pub String);

impl Default for Platform {
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl Platform {
    /// Whether an index entry's platform satisfies this one (a missing variant matches any).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && match (&self.variant, variant) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }

    /// WIT's architecture suffix for cache keys (`amd64`, `arm64`).
    pub fn wit_arch(&self) -> &str {
        &self.architecture
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid =
            |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(PlatformParseError(s.into())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}
