//! The files a job reads from its submitter (WDT models, archives and variables, additional
//! build files, the patch catalog) and how a farm job names them: never as a path on the agent,
//! always as content in the farm's artifact store, `artifact:sha256:<hex>/<file name>`. The CLI
//! uploads and rewrites ([`Job::input_files_mut`]), the coordinator refuses anything else, and
//! the agent fetches each into the job's own directory before it runs.

use crate::{Job, RebaseTarget};
use patchfarm_engine::digest::Digest;
use patchfarm_engine::recipe::create::{CreateRequest, WdtRequest};
use patchfarm_engine::recipe::patching::PatchRequest;
use patchfarm_engine::recipe::steps::BuildCommands;
use std::fmt;
use std::path::{Path, PathBuf};

const SCHEME: &str = "artifact:";

/// One input file held in the artifact store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactFile {
    pub digest: Digest,
    /// The name the file had (WDT and the image see it by this name).
    pub name: String,
}

impl ArtifactFile {
    /// `Ok(None)` for anything not written as an artifact reference; an error for a reference
    /// that is malformed.
    pub fn parse(path: &Path) -> Result<Option<Self>, String> {
        let Some(text) = path.to_str().and_then(|t| t.strip_prefix(SCHEME)) else {
            return Ok(None);
        };
        let (digest, name) = text
            .split_once('/')
            .ok_or_else(|| format!("{path:?}: expected artifact:sha256:<hex>/<file name>"))?;
        let digest: Digest = digest
            .parse()
            .map_err(|e| format!("{path:?}: the digest: {e}"))?;
        valid_name(name).map_err(|e| format!("{path:?}: the file name {e}"))?;
        Ok(Some(ArtifactFile {
            digest,
            name: name.to_string(),
        }))
    }

    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(self.to_string())
    }
}

impl fmt::Display for ArtifactFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.digest, self.name)
    }
}

/// A file name that is one plain path component: it is joined under the job's directory.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.len() > 255 {
        return Err(format!("{name:?} is not a file name"));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!("{name:?} holds a slash or a control character"));
    }
    Ok(())
}

/// WDT's three file lists under `field` (`….models[0]`, `….archives[0]`, `….variables[0]`).
fn wdt_lists<'a>(
    field: &str,
    lists: [(&str, &'a mut Vec<PathBuf>); 3],
    out: &mut Vec<(String, &'a mut PathBuf)>,
) {
    for (list, paths) in lists {
        for (i, path) in paths.iter_mut().enumerate() {
            out.push((format!("{field}.{list}[{i}]"), path));
        }
    }
}

fn wdt_files<'a>(field: &str, wdt: &'a mut WdtRequest, out: &mut Vec<(String, &'a mut PathBuf)>) {
    let lists = [
        ("models", &mut wdt.models),
        ("archives", &mut wdt.archives),
        ("variables", &mut wdt.variables),
    ];
    wdt_lists(field, lists, out);
}

fn catalog<'a>(
    field: &str,
    patches: &'a mut PatchRequest,
    out: &mut Vec<(String, &'a mut PathBuf)>,
) {
    if let Some((path, _)) = &mut patches.catalog {
        out.push((format!("{field}.catalog_path"), path));
    }
}

fn install_files<'a>(
    field: &str,
    create: &'a mut CreateRequest,
    out: &mut Vec<(String, &'a mut PathBuf)>,
) {
    catalog(&format!("{field}.patches"), &mut create.patches, out);
    wdt_files(&format!("{field}.wdt"), &mut create.wdt, out);
    for (i, (source, _)) in create.additional_files.iter_mut().enumerate() {
        out.push((format!("create.additional_files[{i}].source"), source));
    }
    build_commands_files("create.build_commands", &mut create.build_commands, out);
    let options = &mut create.installer_options;
    for (i, file) in options.response_files.iter_mut().enumerate() {
        out.push((
            format!("{field}.installer_options.response_files[{i}]"),
            file,
        ));
    }
    if let Some(pointer) = &mut options.inventory_pointer {
        out.push((
            format!("{field}.installer_options.inventory_pointer"),
            pointer,
        ));
    }
}

fn build_commands_files<'a>(
    field: &str,
    commands: &'a mut Option<BuildCommands>,
    out: &mut Vec<(String, &'a mut PathBuf)>,
) {
    if let Some(commands) = commands {
        out.push((format!("{field}.file"), &mut commands.file));
        for (i, file) in commands.files.iter_mut().enumerate() {
            out.push((format!("{field}.files[{i}]"), file));
        }
    }
}

impl Job {
    /// Every file the job reads from its submitter, by the spec field that names it.
    pub fn input_files_mut(&mut self) -> Vec<(String, &mut PathBuf)> {
        let mut files = Vec::new();
        match self {
            Job::Create(create) => install_files("create.install", create, &mut files),
            Job::Update(update) => {
                catalog("update.patches", &mut update.patches, &mut files);
                wdt_files("update.wdt", &mut update.wdt, &mut files);
                build_commands_files(
                    "update.build_commands",
                    &mut update.build_commands,
                    &mut files,
                );
            }
            Job::Rebase(rebase) => {
                if let RebaseTarget::Build(create) = &mut rebase.target {
                    install_files("rebase.build_target.install", create, &mut files);
                }
                build_commands_files(
                    "rebase.build_commands",
                    &mut rebase.request.build_commands,
                    &mut files,
                );
            }
            Job::CreateAuxImage(aux) => {
                let lists = [
                    ("models", &mut aux.wdt_models),
                    ("archives", &mut aux.wdt_archives),
                    ("variables", &mut aux.wdt_variables),
                ];
                wdt_lists("create_aux_image.wdt", lists, &mut files);
                build_commands_files(
                    "create_aux_image.build_commands",
                    &mut aux.build_commands,
                    &mut files,
                );
            }
            Job::Copy(_) | Job::RefreshAuxImage(_) | Job::Noop => {}
        }
        files
    }

    /// Reads the sections of the job's `--additionalBuildCommands` file where it now is (an
    /// agent fetched it; a spec carries only the file). Blocking.
    pub fn read_build_commands(&mut self) -> Result<(), patchfarm_engine::recipe::RecipeError> {
        let commands = match self {
            Job::Create(create) => &mut create.build_commands,
            Job::Update(update) => &mut update.build_commands,
            Job::CreateAuxImage(aux) => &mut aux.build_commands,
            Job::Rebase(rebase) => &mut rebase.request.build_commands,
            _ => return Ok(()),
        };
        if let Some(given) = commands {
            *given = patchfarm_engine::recipe::steps::parse(&given.file, given.files.clone())?;
        }
        Ok(())
    }

    /// A farm job's input files, each read as an artifact reference: the first field that
    /// names a path (on whichever machine) or a malformed reference is the error.
    pub fn artifact_files(&mut self) -> Result<Vec<(String, ArtifactFile)>, (String, String)> {
        let mut found = Vec::new();
        for (field, path) in self.input_files_mut() {
            match ArtifactFile::parse(path) {
                Ok(Some(file)) => found.push((field, file)),
                Ok(None) => {
                    return Err((
                        field,
                        format!(
                            "{} is a path on the agents; a farm job names its files by their content in the farm's artifact store (the patchfarm CLI uploads them with --farm)",
                            path.display()
                        ),
                    ))
                }
                Err(e) => return Err((field, e)),
            }
        }
        Ok(found)
    }
}
