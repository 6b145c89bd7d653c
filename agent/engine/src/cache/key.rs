//! WIT's cache keys: installers `type_version[_arch]`, patches `bugnumber_version[_arch]`.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("invalid cache key '{input}': {reason}")]
pub struct KeyError {
    pub input: String,
    pub reason: String,
}

/// Architectures WIT knows, spelled as its keys spell them.
pub const ARCHITECTURES: &[&str] = &["amd64", "arm64"];

/// Maps the spellings users type (`x86_64`, `aarch64`) to WIT's.
pub fn normalize_arch(arch: &str) -> Option<&'static str> {
    match arch.to_ascii_lowercase().as_str() {
        "amd64" | "x86_64" => Some("amd64"),
        "arm64" | "aarch64" => Some("arm64"),
        _ => None,
    }
}

/// A cache key, validated. `name` is the installer type or the patch's bug number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey {
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
}

/// Versions as Oracle spells them (`12.2.1.4.0`, `8u291`, `latest`): they start with a letter or
/// digit and hold no `..`, so no key ever reads as a path (found by `tests/fuzz.sh`: `0_..`).
fn valid_version(v: &str) -> bool {
    v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && !v.contains("..")
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

impl CacheKey {
    /// An installer key from `--type`, `--version`, `--architecture`.
    pub fn installer(kind: &str, version: &str, arch: Option<&str>) -> Result<Self, KeyError> {
        let input = format!(
            "{kind}_{version}{}",
            arch.map(|a| format!("_{a}")).unwrap_or_default()
        );
        let fail = |reason: String| KeyError {
            input: input.clone(),
            reason,
        };
        let kind = kind.to_ascii_lowercase();
        if kind.is_empty()
            || !kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(fail(format!(
                "installer type '{kind}' must be letters and digits (jdk, wls, fmw, wdt, …)"
            )));
        }
        if !valid_version(version) {
            return Err(fail(format!(
                "version '{version}' may hold only letters, digits, '.' and '-', starting with a letter or digit, without '..'"
            )));
        }
        let arch = match arch {
            None => None,
            Some(a) => Some(
                normalize_arch(a)
                    .ok_or_else(|| fail(format!("architecture '{a}' is not one of amd64, arm64")))?
                    .to_string(),
            ),
        };
        // Keys are case-insensitive, as in WIT: `--version LATEST` is `wdt_latest`.
        Ok(CacheKey {
            name: kind,
            version: version.to_ascii_lowercase(),
            arch,
        })
    }

    /// A patch key `BUG_VERSION[_ARCH]` as `--patchId` spells it.
    pub fn patch(id: &str) -> Result<Self, KeyError> {
        let fail = |reason: &str| KeyError {
            input: id.into(),
            reason: reason.into(),
        };
        let parts: Vec<&str> = id.split('_').collect();
        let (bug, version, arch) = match parts.as_slice() {
            [bug, version] => (*bug, *version, None),
            [bug, version, arch] => (*bug, *version, Some(*arch)),
            _ => {
                return Err(fail(
                    "expected BUGNUMBER_VERSION[_ARCH], e.g. 29135930_12.2.1.4.0",
                ))
            }
        };
        if bug.is_empty() || !bug.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("the bug number must be digits"));
        }
        if !valid_version(version) {
            return Err(fail(
                "the version may hold only letters, digits, '.' and '-', starting with a letter or digit, without '..'",
            ));
        }
        let arch = match arch {
            None => None,
            Some(a) => Some(
                normalize_arch(a)
                    .ok_or_else(|| fail("the architecture must be amd64 or arm64"))?
                    .to_string(),
            ),
        };
        Ok(CacheKey {
            name: bug.into(),
            version: version.to_ascii_lowercase(),
            arch,
        })
    }

    /// The same key without its architecture (WIT's fallback when no arch-specific entry exists).
    pub fn without_arch(&self) -> CacheKey {
        CacheKey {
            arch: None,
            ..self.clone()
        }
    }

    pub fn with_arch(&self, arch: &str) -> CacheKey {
        CacheKey {
            arch: normalize_arch(arch).map(str::to_owned),
            ..self.clone()
        }
    }
}

impl FromStr for CacheKey {
    type Err = KeyError;
    /// Parses any stored key (`jdk_8u291`, `wls_12.2.1.4.0_arm64`, `29135930_12.2.1.4.0`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.split('_')
            .next()
            .is_some_and(|first| !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()))
        {
            return CacheKey::patch(s);
        }
        let parts: Vec<&str> = s.split('_').collect();
        match parts.as_slice() {
            [kind, version] => CacheKey::installer(kind, version, None),
            [kind, version, arch] => CacheKey::installer(kind, version, Some(arch)),
            _ => Err(KeyError {
                input: s.into(),
                reason: "expected TYPE_VERSION[_ARCH] or BUGNUMBER_VERSION[_ARCH]".into(),
            }),
        }
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.name, self.version)?;
        if let Some(a) = &self.arch {
            write!(f, "_{a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_key_shapes() {
        assert_eq!(
            CacheKey::installer("JDK", "8u291", None)
                .unwrap()
                .to_string(),
            "jdk_8u291"
        );
        assert_eq!(
            CacheKey::installer("wls", "12.2.1.4.0", Some("aarch64"))
                .unwrap()
                .to_string(),
            "wls_12.2.1.4.0_arm64"
        );
        assert_eq!(
            CacheKey::patch("29135930_12.2.1.4.0").unwrap().to_string(),
            "29135930_12.2.1.4.0"
        );
        assert_eq!("wdt_latest".parse::<CacheKey>().unwrap().name, "wdt");
        assert!(CacheKey::patch("abc_1").is_err());
        assert!(CacheKey::installer("wls", "1/2", None).is_err());
        assert!(CacheKey::installer("wls", "1", Some("sparc")).is_err());
        assert!("nounderscore".parse::<CacheKey>().is_err());
    }

    #[test]
    fn keys_are_case_insensitive_as_in_wit() {
        assert_eq!(
            "WDT_LATEST".parse::<CacheKey>().unwrap().to_string(),
            "wdt_latest"
        );
        assert_eq!(
            CacheKey::installer("JDK", "8U291", Some("AMD64"))
                .unwrap()
                .to_string(),
            "jdk_8u291_amd64"
        );
        assert_eq!(
            CacheKey::patch("29135930_12.2.1.4.0_ARM64")
                .unwrap()
                .to_string(),
            "29135930_12.2.1.4.0_arm64"
        );
    }
}
