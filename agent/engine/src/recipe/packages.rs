//! WIT's `--packageManager`: the OS packages its Dockerfile installs on the base image before
//! anything else (its `os_update` stage), with WIT's command line for each package manager and
//! its package list (`WLSIMG_OS_PACKAGES` replaces the default one; `[package-manager-packages]`
//! adds to it), run as root in a build step whose changes are the image's first new layer.
//! patchfarm installs no packages unless asked: `OS_DEFAULT` (WIT's default, which probes the
//! base) means none here, as installing them needs the build host's network.

use super::build::BuildDir;
use super::{step_layer, Engine, RecipeError};
use crate::image::ImageConfig;
use crate::layer::LayerBlob;
use crate::transport::push::OutBlob;
use patchfarm_executor::Step;

/// WIT's `PackageManagerType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PackageManager {
    #[default]
    OsDefault,
    None,
    Yum,
    Dnf,
    Microdnf,
    Microdnf8,
    AptGet,
    Apk,
    Zypper,
}

const NAMES: &[(&str, PackageManager)] = &[
    ("OS_DEFAULT", PackageManager::OsDefault),
    ("NONE", PackageManager::None),
    ("YUM", PackageManager::Yum),
    ("DNF", PackageManager::Dnf),
    ("MICRODNF", PackageManager::Microdnf),
    ("MICRODNF_8", PackageManager::Microdnf8),
    ("APTGET", PackageManager::AptGet),
    ("APK", PackageManager::Apk),
    ("ZYPPER", PackageManager::Zypper),
];

impl std::str::FromStr for PackageManager {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                format!(
                    "{s:?} is not a package manager WIT knows: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for PackageManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = NAMES.iter().find(|(_, m)| m == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("OS_DEFAULT"))
    }
}

/// WIT's default OS packages (`DockerfileOptions.DEFAULT_OS_PACKAGES`), and the ones it adds
/// for OHS's binary installer.
const DEFAULT_PACKAGES: &[&str] = &[
    "gzip",
    "tar",
    "unzip",
    "libaio",
    "libnsl",
    "jq",
    "findutils",
    "diffutils",
    "make",
    "fontconfig",
    "freetype",
];
const BINARY_PACKAGES: &[&str] = &["binutils", "glibc-devel"];

/// What to install, and with which package manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageInstall {
    pub manager: PackageManager,
    pub packages: Vec<String>,
}

impl PackageInstall {
    /// WIT's package list: `WLSIMG_OS_PACKAGES` (space separated) or the default one (with
    /// binutils and glibc-devel for OHS), then `[package-manager-packages]`. `None` when no
    /// packages are installed (`NONE`, `OS_DEFAULT`).
    pub fn of(manager: PackageManager, kind: &str, section: &[String]) -> Option<PackageInstall> {
        if matches!(manager, PackageManager::None | PackageManager::OsDefault) {
            return None;
        }
        let mut packages: Vec<String> = match std::env::var("WLSIMG_OS_PACKAGES") {
            Ok(list) if !list.trim().is_empty() => {
                list.split_whitespace().map(str::to_owned).collect()
            }
            _ => DEFAULT_PACKAGES
                .iter()
                .chain(if kind.eq_ignore_ascii_case("ohs") {
                    BINARY_PACKAGES
                } else {
                    &[]
                })
                .map(|p| p.to_string())
                .collect(),
        };
        packages.extend(section.iter().cloned());
        Some(PackageInstall { manager, packages })
    }

    /// WIT's command line (`package-managers.mustache`) for this manager.
    pub fn script(&self) -> String {
        let list = self.packages.join(" ");
        match self.manager {
            PackageManager::Yum => format!("yum -y update && yum -y --downloaddir=/tmp/imagetool install {list} && yum -y --downloaddir=/tmp/imagetool clean all && rm -rf /var/cache/yum/* && rm -rf /tmp/imagetool"),
            PackageManager::Dnf => format!("dnf -y update && dnf -y install {list} && dnf clean all"),
            PackageManager::Microdnf => format!("microdnf -y update && microdnf -y install {list} && microdnf clean all"),
            PackageManager::Microdnf8 => format!("microdnf update && microdnf install {list} && microdnf clean all"),
            PackageManager::AptGet => format!("apt-get -y update && apt-get -y upgrade && apt-get -y install {list} && apt-get -y clean all"),
            PackageManager::Apk => "apk update && apk upgrade && rm -rf /var/cache/apk/*".into(),
            PackageManager::Zypper => "zypper -nq update && zypper -nq clean && rm -rf /var/cache/zypp/*".into(),
            PackageManager::None | PackageManager::OsDefault => "true".into(),
        }
    }

    /// How the layer is named in the image's history.
    pub fn created_by(&self) -> String {
        format!(
            "patchfarm: --packageManager {} [{}]",
            self.manager,
            self.packages.join(" ")
        )
    }

    /// Runs the install as root on `base` (layers and config); the layer of what it changed.
    /// `network`: the build host's network (`--buildNetwork`), which package repositories need
    /// unless the image's sources are local.
    pub async fn layer(
        &self,
        engine: &Engine,
        dir: &BuildDir,
        base_layers: &[OutBlob],
        config: &ImageConfig,
        network: bool,
    ) -> Result<LayerBlob, RecipeError> {
        let mut step = Step::shell(&self.script());
        step.env = config
            .env()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !step.env.iter().any(|e| e.starts_with("PATH=")) {
            step.env
                .push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        step.env.push("DEBIAN_FRONTEND=noninteractive".into());
        step.network = network;
        let what = format!("--packageManager {}", self.manager);
        step_layer::run(engine, dir, base_layers, "packages", &[step], &what).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_and_package_lists_follow_wit() {
        assert_eq!(
            "aptget".parse::<PackageManager>(),
            Ok(PackageManager::AptGet)
        );
        assert_eq!(
            "MICRODNF_8".parse::<PackageManager>(),
            Ok(PackageManager::Microdnf8)
        );
        assert!("brew"
            .parse::<PackageManager>()
            .unwrap_err()
            .contains("APTGET"));
        assert_eq!(PackageInstall::of(PackageManager::None, "wls", &[]), None);
        assert_eq!(
            PackageInstall::of(PackageManager::OsDefault, "wls", &[]),
            None
        );
        let ohs = PackageInstall::of(PackageManager::Yum, "OHS", &["vim".into()]).unwrap();
        assert_eq!(ohs.packages.first().map(String::as_str), Some("gzip"));
        assert!(ohs
            .packages
            .ends_with(&["binutils".into(), "glibc-devel".into(), "vim".into()]));
        let apt = PackageInstall::of(PackageManager::AptGet, "wls", &[]).unwrap();
        assert!(apt.script().starts_with(
            "apt-get -y update && apt-get -y upgrade && apt-get -y install gzip tar unzip"
        ));
    }
}
