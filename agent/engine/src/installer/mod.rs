//! Installers in native form, unpacked into a build directory: a JDK (tar.gz with one top
//! directory) and an installed Oracle Home (zip or tar.gz with `inventory/registry.xml`).
//! Oracle Universal Installer zips are run by `recipe::oui` through the executor instead.

pub mod sets;
mod unpack;

pub use sets::InstallerSet;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InstallerError {
    #[error("installer {key} ({file}): {reason}")]
    Bad {
        key: String,
        file: String,
        reason: String,
    },
    #[error("installer {key} ({file}) holds an Oracle Universal Installer ({inner}) packed as patchfarm does not run it: cache the zip Oracle ships (the .jar or .bin at its top) or the .jar itself, or an installed Oracle Home (a zip or tar.gz whose root holds inventory/registry.xml)")]
    OuiInstaller {
        key: String,
        file: String,
        inner: String,
    },
}

/// An unpacked JDK.
#[derive(Clone, Debug)]
pub struct Jdk {
    pub root: PathBuf,
    /// `JAVA_VERSION` from the JDK's `release` file.
    pub version: Option<String>,
}

/// An unpacked Oracle Home.
#[derive(Clone, Debug)]
pub struct OracleHome {
    pub root: PathBuf,
    pub version: String,
    pub products: Vec<String>,
}

/// Unpacks a zip or tar(.gz) into `dest` within the archive limits. Blocking.
fn unpack(
    archive: &Path,
    dest: &Path,
    fail: &dyn Fn(String) -> InstallerError,
) -> Result<(), InstallerError> {
    let limits = crate::limits::ArchiveLimits::from_env().map_err(fail)?;
    unpack::unpack(archive, dest, limits).map_err(fail)
}

fn only_child_dir(dir: &Path) -> Option<PathBuf> {
    let children: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    match children.as_slice() {
        [one] if one.file_type().ok()?.is_dir() => Some(one.path()),
        _ => None,
    }
}

/// `KEY=VALUE` lines (quotes stripped), as in the JDK's `release` and `/etc/os-release`.
pub fn key_values(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.trim().trim_matches('"').trim_matches('\'').to_string(),
            )
        })
        .collect()
}

/// Unpacks a JDK tar.gz (one top directory, as Oracle and OpenJDK ship them) into `dest`. Blocking.
pub fn unpack_jdk(
    key: &str,
    archive: &Path,
    file_name: &str,
    dest: &Path,
) -> Result<Jdk, InstallerError> {
    let fail = |reason: String| InstallerError::Bad {
        key: key.into(),
        file: file_name.into(),
        reason,
    };
    unpack(archive, dest, &fail)?;
    let root = only_child_dir(dest)
        .ok_or_else(|| fail("a JDK archive must hold exactly one top directory".into()))?;
    if !root.join("bin").is_dir() {
        return Err(fail(format!(
            "{} has no bin/ directory; is this a JDK?",
            root.file_name().unwrap_or_default().to_string_lossy()
        )));
    }
    // `release` is read from inside the JDK only: a link could name the host's files.
    let release = crate::beneath::read(&root, "release").map_err(|e| fail(e.to_string()))?;
    let version = release.and_then(|r| {
        key_values(&String::from_utf8_lossy(&r))
            .get("JAVA_VERSION")
            .cloned()
    });
    Ok(Jdk { root, version })
}

/// Unpacks an installed Oracle Home (its root, or a single top directory, holds
/// `inventory/registry.xml`) into `dest`; OUI installer archives are refused. Blocking.
pub fn unpack_oracle_home(
    key: &str,
    archive: &Path,
    file_name: &str,
    dest: &Path,
) -> Result<OracleHome, InstallerError> {
    let fail = |reason: String| InstallerError::Bad {
        key: key.into(),
        file: file_name.into(),
        reason,
    };
    unpack(archive, dest, &fail)?;
    let root = if dest.join("inventory/registry.xml").is_file() {
        dest.to_path_buf()
    } else {
        match only_child_dir(dest).filter(|d| d.join("inventory/registry.xml").is_file()) {
            Some(dir) => dir,
            None => {
                let oui = std::fs::read_dir(dest)
                    .map_err(|e| fail(e.to_string()))?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.ends_with(".jar") || n.ends_with(".bin"));
                return Err(match oui {
                    Some(inner) => InstallerError::OuiInstaller { key: key.into(), file: file_name.into(), inner },
                    None => fail("not an installed Oracle Home: inventory/registry.xml is missing from its root".into()),
                });
            }
        }
    };
    installed_home(root, key, file_name)
}

/// The Oracle Home at `root` (an installer wrote it, or an archive held it), read from its
/// `inventory/registry.xml`; `key` and `file_name` name the installer in errors.
pub fn installed_home(
    root: PathBuf,
    key: &str,
    file_name: &str,
) -> Result<OracleHome, InstallerError> {
    let fail = |reason: String| InstallerError::Bad {
        key: key.into(),
        file: file_name.into(),
        reason,
    };
    // Read beneath the home: a link there could name the host's files.
    let xml = crate::beneath::read(&root, "inventory/registry.xml")
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("inventory/registry.xml is missing".into()))?;
    let (version, products) = parse_registry(&String::from_utf8_lossy(&xml));
    let version = version
        .ok_or_else(|| fail("inventory/registry.xml names no <distribution version=…>".into()))?;
    Ok(OracleHome {
        root,
        version,
        products,
    })
}

/// One installer of an Oracle Home: its cache key, the cached file and the file's name.
pub struct HomePart<'a> {
    pub key: &'a str,
    pub archive: &'a Path,
    pub file_name: &'a str,
}

/// Unpacks the installers of one Oracle Home (an installer set: FMW, then SOA, …) in order, each
/// installed on top of the ones before as OUI installs them; every part must be an installed
/// Oracle Home of the same version. Blocking.
pub fn unpack_oracle_homes(parts: &[HomePart], dest: &Path) -> Result<OracleHome, InstallerError> {
    let (first, rest) = parts
        .split_first()
        .expect("an installer set names an installer");
    let mut home = unpack_oracle_home(first.key, first.archive, first.file_name, &dest.join("0"))?;
    for (i, part) in rest.iter().enumerate() {
        let next = unpack_oracle_home(
            part.key,
            part.archive,
            part.file_name,
            &dest.join((i + 1).to_string()),
        )?;
        let fail = |reason: String| InstallerError::Bad {
            key: part.key.into(),
            file: part.file_name.into(),
            reason,
        };
        if next.version != home.version {
            return Err(fail(format!(
                "its inventory/registry.xml says version {}, but {} is {}",
                next.version, first.key, home.version
            )));
        }
        merge_tree(&next.root, &home.root, "").map_err(|e| fail(e.to_string()))?;
        for product in next.products {
            if !home.products.contains(&product) {
                home.products.push(product);
            }
        }
    }
    Ok(home)
}

/// Moves every entry of `from` into `into` (later installers win over earlier files), creating
/// directories beneath `into` without passing a link.
fn merge_tree(from: &Path, into: &Path, rel: &str) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from.join(rel))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type()?.is_dir() {
            crate::beneath::mkdir(into, &child)?;
            merge_tree(from, into, &child)?;
        } else {
            let parent = match rel {
                "" => into.to_path_buf(),
                _ => crate::beneath::mkdir(into, rel)?,
            };
            let target = parent.join(&name);
            if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                return Err(std::io::Error::other(format!(
                    "{child} is a directory in the Oracle Home so far and not one in this installer"
                )));
            }
            // rename replaces a leaf without following it, a link included.
            std::fs::rename(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Product version and product codes from an Oracle Home's `inventory/registry.xml`.
pub fn parse_registry(xml: &str) -> (Option<String>, Vec<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut version = None;
    let mut products = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e))
                if e.local_name().as_ref() == b"distribution" =>
            {
                let attr = |name: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name)
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                if version.is_none() {
                    version = attr(b"version");
                }
                let code = match attr(b"name").unwrap_or_default().as_str() {
                    "WebLogic Server" | "Oracle WebLogic Server" => "WLS".to_string(),
                    "Coherence" | "Oracle Coherence" => "COH".to_string(),
                    "TopLink" | "Oracle TopLink" => "TOPLINK".to_string(),
                    "Fusion Middleware Infrastructure"
                    | "Oracle Fusion Middleware Infrastructure" => "INFRA".to_string(),
                    other => other.to_string(),
                };
                if !code.is_empty() && !products.contains(&code) {
                    products.push(code);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    (version, products)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    /// A JDK tar.gz (top directory `jdk/`, a `bin/`) whose `release` is a link to `target`.
    fn jdk_with_linked_release(path: &Path, target: &Path) {
        let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), Default::default());
        let mut tar = tar::Builder::new(gz);
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        tar.append_data(&mut dir.clone(), "jdk/", std::io::empty())
            .unwrap();
        tar.append_data(&mut dir, "jdk/bin/", std::io::empty())
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        tar.append_link(&mut link, "jdk/release", target).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn a_jdk_release_linked_out_of_the_jdk_is_refused() {
        let work = tempfile::tempdir().unwrap();
        let host = work.path().join("host-secret");
        std::fs::write(&host, "JAVA_VERSION=\"stolen\"\n").unwrap();
        for target in [host.as_path(), Path::new("/dev/zero")] {
            let archive = work.path().join("jdk.tar.gz");
            jdk_with_linked_release(&archive, target);
            let dest = tempfile::tempdir().unwrap();
            let e = unpack_jdk("jdk_17", &archive, "jdk.tar.gz", dest.path()).unwrap_err();
            assert!(e.to_string().contains("release is a symbolic link"), "{e}");
        }
    }
}
