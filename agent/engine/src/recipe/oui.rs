//! Oracle Universal Installer archives, as Oracle ships them (a zip holding one `.jar` or `.bin`,
//! or the jar itself), installed as WIT installs them: silently, one after another in the
//! installer set's order, as the Oracle Home's owner, on the base image with the JDK at
//! `/u01/jdk` — here through the executor instead of `docker build`. What they write under
//! `/u01/oracle` becomes the Oracle Home the rest of `create` patches and layers as usual.

use super::build::BuildDir;
use super::owner::ResolvedOwner;
use super::RecipeError;
use crate::cache::CachedItem;
use crate::installer::{self, InstallerSet, Jdk, OracleHome};
use patchfarm_executor::{Input, Step};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// WIT's paths: installers and response files under `/tmp/imagetool/<type>/`, the inventory
/// pointer in the Oracle Home.
const TEMP_DIR: &str = "/tmp/imagetool";

/// WIT's installer options: response files (one per installer of the set, in order) and a
/// custom inventory pointer (`oraInst.loc`) with the directory it goes to.
#[derive(Clone, Debug, Default)]
pub struct InstallerOptions {
    pub response_files: Vec<PathBuf>,
    pub inventory_pointer: Option<PathBuf>,
    /// Where the pointer goes (default `/u01/oracle`).
    pub inventory_pointer_dir: Option<String>,
}

impl InstallerOptions {
    pub fn is_empty(&self) -> bool {
        self.response_files.is_empty()
            && self.inventory_pointer.is_none()
            && self.inventory_pointer_dir.is_none()
    }

    /// The directory the pointer goes to, checked: absolute, plain.
    pub fn pointer_dir(&self) -> Result<String, RecipeError> {
        let dir = self
            .inventory_pointer_dir
            .clone()
            .unwrap_or_else(|| "/u01/oracle".into());
        crate::layer::writer::image_path(&dir)
            .map(|plain| format!("/{plain}"))
            .map_err(|e| RecipeError::input("--inventoryPointerInstallLoc", e.to_string()))
    }

    /// The pointer's text: the given file's, else WIT's default for `group`.
    pub fn pointer_text(&self, group: &str) -> Result<String, RecipeError> {
        match &self.inventory_pointer {
            Some(file) => std::fs::read_to_string(file).map_err(|e| {
                RecipeError::input(
                    format!("--inventoryPointerFile {}", file.display()),
                    e.to_string(),
                )
            }),
            None => Ok(format!(
                "inventory_loc=/u01/oracle/oraInventory\ninst_group={group}\n"
            )),
        }
    }
}

/// An installer runs at most this long.
const INSTALL_LIMIT: Duration = Duration::from_secs(60 * 60);

/// The installer a cached file holds when it is an OUI archive: the `.jar`/`.bin` at the top
/// of a zip, or the file itself when it is a jar (`None`: an installed Oracle Home archive).
/// `name` is the file's name as added (a cached file's own path names its digest). The agent
/// asks when it builds; the coordinator asks when it stores an installer, to send jobs that run
/// one only to agents that can run build steps.
pub fn installer_in(path: &Path, name: &str) -> Option<String> {
    if name.ends_with(".jar") || name.ends_with(".bin") {
        return Some(name.to_string());
    }
    let file = std::fs::File::open(path).ok()?;
    let zip = zip::ZipArchive::new(file).ok()?;
    // An installed Oracle Home (registry.xml at its root or under one top directory) is never
    // taken for an installer, whatever files sit beside it.
    let names: Vec<String> = zip.file_names().flatten().map(|n| n.into_owned()).collect();
    let installed = names.iter().any(|n| {
        n == "inventory/registry.xml"
            || n.split_once('/')
                .is_some_and(|(_, rest)| rest == "inventory/registry.xml")
    });
    if installed {
        return None;
    }
    names
        .into_iter()
        .find(|n| !n.contains('/') && (n.ends_with(".jar") || n.ends_with(".bin")))
}

/// WIT's `INSTALL_TYPE` per installer (`DefaultResponseFile`).
fn install_type(installer: &str, set: &InstallerSet) -> &'static str {
    match installer {
        "fmw" => "Fusion Middleware Infrastructure",
        "soa" => "SOA Suite",
        "osb" => "Service Bus",
        "b2b" => "B2B",
        "mft" => "",
        "idm" if set.name == "IDM" => {
            "Standalone Oracle Identity and Access Manager(Managed independently of WebLogic server)"
        }
        "idm" | "oam" => "Collocated Oracle Identity and Access Manager (Managed through WebLogic server)",
        "ohs" => "Standalone HTTP Server (Managed independently of WebLogic server)",
        "oud" => "Installation for Oracle Unified Directory",
        "oid" => "Collocated Oracle Internet Directory Server (Managed through WebLogic server)",
        "wcc" => "WebCenter Content",
        "wcp" => "WebCenter Portal",
        "wcs" => "WebCenter Sites",
        "odi" => "Oracle Data Integrator",
        _ => "WebLogic Server",
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RecipeError {
    let what = what.into();
    move |e| RecipeError::input(what, e.to_string())
}

/// Hard-links `from`'s tree into `to` (same filesystem, nothing copied); links stay links.
fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            link_tree(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_file() {
            std::fs::hard_link(&source, &target)?;
        }
    }
    Ok(())
}

/// The directory mounted at `/tmp/imagetool/<type>`: the installer taken out of its zip and the
/// response file.
fn stage_installer(
    item: &CachedItem,
    inner: &str,
    installer: &str,
    set: &InstallerSet,
    response_file: Option<&PathBuf>,
    dir: &Path,
) -> Result<(), RecipeError> {
    let fail = io(format!("installer {}", item.entry.key));
    std::fs::create_dir_all(dir).map_err(io(format!("installer {}", item.entry.key)))?;
    let target = dir.join(inner);
    if item.entry.file_name == inner {
        std::fs::copy(&item.path, &target).map_err(fail)?;
    } else {
        let file =
            std::fs::File::open(&item.path).map_err(io(format!("installer {}", item.entry.key)))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| {
            RecipeError::input(format!("installer {}", item.entry.key), e.to_string())
        })?;
        let mut entry = zip.by_name(inner).map_err(|e| {
            RecipeError::input(format!("installer {}", item.entry.key), e.to_string())
        })?;
        let mut out =
            std::fs::File::create(&target).map_err(io(format!("installer {}", item.entry.key)))?;
        std::io::copy(&mut entry, &mut out).map_err(io(format!("installer {}", item.entry.key)))?;
    }
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
        .map_err(io(format!("installer {}", item.entry.key)))?;
    let response = match response_file {
        Some(file) => std::fs::read_to_string(file).map_err(|e| {
            RecipeError::input(format!("--installerResponseFile {}", file.display()), e.to_string())
        })?,
        None => format!(
            "[ENGINE]\nResponse File Version=1.0.0.0.0\n[GENERIC]\nINSTALL_TYPE={}\nDECLINE_SECURITY_UPDATES=true\nSECURITY_UPDATES_VIA_MYORACLESUPPORT=false\n",
            install_type(installer, set)
        ),
    };
    std::fs::write(dir.join(format!("{installer}.rsp")), response)
        .map_err(io(format!("installer {}", item.entry.key)))?;
    Ok(())
}

/// The command line WIT's Dockerfile runs for one installer.
fn command(installer: &str, inner: &str, pointer: &str) -> Vec<String> {
    let staged = format!("{TEMP_DIR}/{installer}");
    let response = format!("{staged}/{installer}.rsp");
    let words: Vec<String> = if inner.ends_with(".bin") {
        vec![
            format!("{staged}/{inner}"),
            "-force".into(),
            "-ignoreSysPrereqs".into(),
            "-silent".into(),
            "-responseFile".into(),
            response,
            "-invPtrLoc".into(),
            pointer.into(),
            format!("ORACLE_HOME={}", super::create::ORACLE_HOME),
            "-jreLoc".into(),
            super::create::JAVA_HOME.into(),
        ]
    } else {
        vec![
            format!("{}/bin/java", super::create::JAVA_HOME),
            "-Xmx1024m".into(),
            "-jar".into(),
            format!("{staged}/{inner}"),
            "-silent".into(),
            format!("ORACLE_HOME={}", super::create::ORACLE_HOME),
            "-responseFile".into(),
            response,
            "-invPtrLoc".into(),
            pointer.into(),
            "-ignoreSysPrereqs".into(),
            "-force".into(),
            "-novalidation".into(),
        ]
    };
    words
}

/// Runs the set's installers on `base` (its layers, and the build's OS packages layer when there
/// is one) with `jdk`, after `[before-fmw-install]` when `before_fmw` has one (run over the
/// image whose config is given); returns the Oracle Home they wrote, moved to `dest`.
#[allow(clippy::too_many_arguments)]
pub async fn install(
    engine: &super::Engine,
    dir: &BuildDir,
    base: &[crate::transport::push::OutBlob],
    jdk: &Jdk,
    owner: &ResolvedOwner,
    set: &InstallerSet,
    version: &str,
    items: &[(CachedItem, String)],
    dest: &Path,
    options: &InstallerOptions,
    network: bool,
    before_fmw: Option<(&super::steps::BuildCommands, crate::image::ImageConfig)>,
) -> Result<(OracleHome, Vec<(PathBuf, String)>), RecipeError> {
    if !options.response_files.is_empty() && options.response_files.len() != items.len() {
        return Err(RecipeError::input(
            "--installerResponseFile",
            format!(
                "give one response file per installer of --type {} ({}), in that order",
                set.name,
                set.installers(version).join(", ")
            ),
        ));
    }
    let pointer_dir = options.pointer_dir()?;
    let pointer_text = options.pointer_text(&owner.group)?;
    let inventory = super::create::inventory_dir(&pointer_text);
    let lowers = dir.trees().lowers(base).await?;
    // What WIT's Dockerfile sets up before installing: the JDK, the owner's home directories,
    // the inventory pointer, the account files.
    let prep = dir.path().join("oui-prep");
    let (uid, gid) = (owner.owner.uid as u32, owner.owner.gid as u32);
    let setup = || -> std::io::Result<()> {
        link_tree(&jdk.root, &prep.join("u01/jdk"))?;
        let owned = ["u01", "u01/oracle", "u01/oracle/oraInventory"]
            .into_iter()
            .map(str::to_owned)
            .chain([pointer_dir.trim_start_matches('/').to_owned()])
            .chain(
                inventory
                    .iter()
                    .map(|i| i.trim_start_matches('/').to_owned()),
            );
        for path in owned {
            std::fs::create_dir_all(prep.join(&path))?;
            std::os::unix::fs::chown(prep.join(&path), Some(uid), Some(gid))?;
        }
        let pointer = prep
            .join(pointer_dir.trim_start_matches('/'))
            .join("oraInst.loc");
        std::fs::write(&pointer, &pointer_text)?;
        std::os::unix::fs::chown(&pointer, Some(uid), Some(gid))?;
        std::fs::create_dir_all(prep.join("etc"))?;
        if let Some(passwd) = &owner.passwd {
            std::fs::write(prep.join("etc/passwd"), passwd)?;
        }
        if let Some(group) = &owner.group_file {
            std::fs::write(prep.join("etc/group"), group)?;
        }
        Ok(())
    };
    setup().map_err(io("preparing the installers' root filesystem"))?;
    let installers = set.installers(version);
    let mut steps = Vec::new();
    let pointer_path = format!("{}/oraInst.loc", pointer_dir.trim_end_matches('/'));
    for (i, ((item, inner), installer)) in items.iter().zip(&installers).enumerate() {
        let staged = dir.path().join("oui-installers").join(installer);
        stage_installer(
            item,
            inner,
            installer,
            set,
            options.response_files.get(i),
            &staged,
        )?;
        let mut step = Step::shell("");
        step.args = command(installer, inner, &pointer_path);
        step.env = vec![
            format!("JAVA_HOME={}", super::create::JAVA_HOME),
            format!("ORACLE_HOME={}", super::create::ORACLE_HOME),
            "HOME=/u01/oracle".into(),
            "OPATCH_NO_FUSER=true".into(),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ];
        step.cwd = "/u01/oracle".into();
        (step.uid, step.gid) = (uid, gid);
        step.time_limit = INSTALL_LIMIT;
        step.network = network;
        step.inputs.push(Input {
            host: staged,
            dest: format!("{TEMP_DIR}/{installer}"),
        });
        steps.push((item.entry.key.clone(), step));
    }
    let mut sandbox = engine
        .sandbox(&[vec![prep.clone()], lowers].concat(), dir.path())
        .map_err(|e| {
            RecipeError::input(format!("installer {}", items[0].0.entry.key), e.to_string())
        })?;
    // WIT runs [before-fmw-install] in the installers' own stage, just before them: they see
    // what it changed, and what it wrote in the Oracle Home goes with the home.
    if let Some((commands, mut config)) = before_fmw {
        let directives = commands.stage(super::steps::BEFORE_FMW);
        if !directives.is_empty() {
            config.set_user(&format!("{uid}:{gid}"));
            config.set_working_dir("/");
            let section = (super::steps::BEFORE_FMW, directives);
            super::steps::run_directives(&mut sandbox, config, commands, section, network).await?;
        }
    }
    for (key, step) in &steps {
        let mut print =
            |l: &str| tracing::info!(target: "patchfarm::step", installer = %key, "{l}");
        sandbox
            .run(step, &mut print)
            .await
            .map_err(|e| RecipeError::input(format!("installer {key}"), e.to_string()))?;
    }
    let upper = sandbox
        .finish()
        .map_err(|e| RecipeError::input("installers", e.to_string()))?;
    let written = upper.join("u01/oracle");
    if !written.join("inventory/registry.xml").is_file() {
        return Err(RecipeError::input(
            format!("installer {}", items[0].0.entry.key),
            "it ended without writing an Oracle Home (no /u01/oracle/inventory/registry.xml)",
        ));
    }
    std::fs::create_dir_all(dest.parent().unwrap_or(dest))
        .map_err(io("keeping the Oracle Home"))?;
    std::fs::rename(&written, dest).map_err(io("keeping the Oracle Home"))?;
    // A custom inventory outside the Oracle Home is kept too (WIT's image has it).
    let mut extras = Vec::new();
    if let Some(at) = inventory.filter(|i| !i.starts_with("/u01/oracle/") && i != "/u01/oracle") {
        let tree = upper.join(at.trim_start_matches('/'));
        if tree.is_dir() {
            let kept = dir.path().join("oui-inventory");
            std::fs::rename(&tree, &kept).map_err(io("keeping the inventory"))?;
            extras.push((kept, at));
        }
    }
    drop(sandbox);
    let first = &items[0].0.entry;
    let home = installer::installed_home(dest.to_path_buf(), &first.key, &first.file_name)?;
    Ok((home, extras))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheEntry;
    use std::io::Write;

    fn item(dir: &Path, name: &str, entries: &[&str]) -> CachedItem {
        let path = dir.join(name);
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for entry in entries {
            zip.start_file(*entry, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(b"x").unwrap();
        }
        zip.finish().unwrap();
        CachedItem {
            entry: CacheEntry {
                key: "wls_14.1.1.0.0".into(),
                digest: crate::digest::Digest::of_bytes(b""),
                size: 1,
                file_name: name.into(),
            },
            path,
        }
    }

    #[test]
    fn an_installer_is_told_from_an_installed_home() {
        let dir = tempfile::tempdir().unwrap();
        let oui = item(
            dir.path(),
            "fmw_wls_Disk1_1of1.zip",
            &["fmw_wls_generic.jar"],
        );
        assert_eq!(
            installer_in(&oui.path, &oui.entry.file_name).as_deref(),
            Some("fmw_wls_generic.jar")
        );
        let bin = item(
            dir.path(),
            "ohs.zip",
            &["fmw_ohs_linux64.bin", "readme.txt"],
        );
        assert_eq!(
            installer_in(&bin.path, &bin.entry.file_name).as_deref(),
            Some("fmw_ohs_linux64.bin")
        );
        let home = item(
            dir.path(),
            "home.zip",
            &[
                "oracle/inventory/registry.xml",
                "oracle/tool.jar",
                "extra.jar",
            ],
        );
        assert_eq!(
            installer_in(&home.path, &home.entry.file_name),
            None,
            "an installed home with a jar beside it"
        );
        let plain = item(
            dir.path(),
            "home2.zip",
            &["inventory/registry.xml", "x.jar"],
        );
        assert_eq!(installer_in(&plain.path, &plain.entry.file_name), None);
    }
}
