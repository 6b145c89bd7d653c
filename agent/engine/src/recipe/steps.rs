//! WIT's `--additionalBuildCommands FILE`: sections of Dockerfile directives. A section runs
//! through the executor: RUN steps in a sandbox over the image's unpacked layers, COPY from
//! `--additionalBuildFiles`, ENV/LABEL/USER/WORKDIR/EXPOSE into the config; everything it
//! changed on disk becomes one layer. `[final-build-commands]` runs on top of the built image;
//! the build-stage sections where WIT's stages run them (`sections`);
//! `[package-manager-packages]` names packages (`packages`).

use super::build::BuildDir;
use super::{Engine, RecipeError};
use crate::image::ImageConfig;
use crate::layer::LayerBlob;
use crate::transport::push::OutBlob;
use patchfarm_executor::Step;
use std::path::{Path, PathBuf};

/// WIT's sections, in the order its Dockerfile runs them.
pub const SECTIONS: &[&str] = &[
    "initial-build-commands",
    "package-manager-packages",
    "before-jdk-install",
    "after-jdk-install",
    "before-fmw-install",
    "after-fmw-install",
    "before-wdt-command",
    "after-wdt-command",
    "final-build-commands",
];

/// The section that runs on the built image.
pub const FINAL: &str = "final-build-commands";
/// The section that names OS packages (not directives) for `--packageManager`.
pub const PACKAGES: &str = "package-manager-packages";
/// The section WIT runs first, as root on the base, before the OS packages: all it changes,
/// ENV and LABEL included, lands in the image.
pub const INITIAL: &str = "initial-build-commands";
/// Sections of WIT's build stages (the JDK's, the Oracle Home's, WDT's), whose only trace in
/// the image is what they change where that stage installs (`sections`).
pub const BEFORE_JDK: &str = "before-jdk-install";
pub const AFTER_JDK: &str = "after-jdk-install";
pub const BEFORE_FMW: &str = "before-fmw-install";
pub const AFTER_FMW: &str = "after-fmw-install";
pub const BEFORE_WDT: &str = "before-wdt-command";
pub const AFTER_WDT: &str = "after-wdt-command";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Directive {
    /// Shell form (`/bin/sh -c`) or exec form (JSON array).
    Run(Vec<String>),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    User(String),
    Workdir(String),
    Expose(Vec<String>),
    Copy {
        chown: Option<String>,
        sources: Vec<String>,
        dest: String,
    },
}

impl BuildCommands {
    /// The directives of build-stage section `name` (empty when the file has none).
    pub fn stage(&self, name: &str) -> &[(usize, Directive)] {
        self.stages.get(name).map_or(&[], Vec::as_slice)
    }

    /// `FILE:LINE`, as errors name a place in the file.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.file.display())
    }

    /// Refuses, by file and line, the first build-stage section (in file order) a verb does
    /// not run — `runs` are the ones it does — saying `why` for it.
    pub fn only_stages(
        &self,
        runs: &[&str],
        why: impl Fn(&str) -> String,
    ) -> Result<(), RecipeError> {
        let first = self
            .stages
            .iter()
            .filter(|(name, _)| !runs.contains(&name.as_str()))
            .filter_map(|(name, section)| section.first().map(|(line, _)| (*line, name)))
            .min();
        match first {
            Some((line, name)) => Err(RecipeError::input(self.at(line), why(name))),
            None => Ok(()),
        }
    }
}

/// A parsed `--additionalBuildCommands` file with the `--additionalBuildFiles` COPY reads from.
#[derive(Clone, Debug, Default)]
pub struct BuildCommands {
    pub file: PathBuf,
    /// `[final-build-commands]`' directives with their line numbers.
    pub final_commands: Vec<(usize, Directive)>,
    /// The build stages' sections (`[before-jdk-install]` …), by name.
    pub stages: std::collections::BTreeMap<String, Vec<(usize, Directive)>>,
    /// `[package-manager-packages]`: more OS packages for `--packageManager` to install, and
    /// the line that first named one.
    pub packages: Vec<String>,
    pub packages_line: usize,
    pub files: Vec<PathBuf>,
}

fn pairs(file: &str, line: usize, text: &str) -> Result<Vec<(String, String)>, RecipeError> {
    let unquote = |s: &str| s.trim_matches('"').to_string();
    if !text.contains('=') {
        // Legacy `ENV NAME VALUE`.
        let (name, value) = text
            .split_once(char::is_whitespace)
            .ok_or_else(|| RecipeError::input(format!("{file}:{line}"), "expected NAME=VALUE"))?;
        return Ok(vec![(name.into(), unquote(value.trim()))]);
    }
    text.split_whitespace()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (unquote(k), unquote(v)))
                .ok_or_else(|| {
                    RecipeError::input(
                        format!("{file}:{line}"),
                        format!("{pair:?}: expected NAME=VALUE"),
                    )
                })
        })
        .collect()
}

/// Reads the file, keeping the `[final-build-commands]` directives; any other WIT section is
/// refused by name (they run between installation steps patchfarm runs natively), as is an
/// unknown section or directive, with file and line.
pub fn parse(file: &Path, files: Vec<PathBuf>) -> Result<BuildCommands, RecipeError> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| {
        RecipeError::input(format!("--additionalBuildCommands {shown}"), e.to_string())
    })?;
    let mut out = BuildCommands {
        file: file.to_path_buf(),
        files,
        ..Default::default()
    };
    let mut section: Option<String> = None;
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = raw.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if pending.is_empty() {
            start = line_no;
        }
        if let Some(rest) = trimmed.strip_suffix('\\') {
            pending.push_str(rest);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let line = std::mem::take(&mut pending);
        let at = format!("{shown}:{start}");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_ascii_lowercase();
            if !SECTIONS.contains(&name.as_str()) {
                return Err(RecipeError::input(
                    at,
                    format!(
                        "unknown section [{name}]; WIT's sections are {}",
                        SECTIONS.join(", ")
                    ),
                ));
            }
            section = Some(name);
            continue;
        }
        if section.is_none() {
            return Err(RecipeError::input(at, "a directive before any [section]"));
        }
        if section.as_deref() == Some(PACKAGES) {
            // Package names, as WIT adds them to its package manager's install line.
            if out.packages.is_empty() {
                out.packages_line = start;
            }
            out.packages
                .extend(line.split_whitespace().map(str::to_owned));
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        let directive = match keyword.to_ascii_uppercase().as_str() {
            "RUN" if rest.starts_with('[') => Directive::Run(
                serde_json::from_str(rest).map_err(|e| RecipeError::input(&at, format!("RUN [...]: {e}")))?,
            ),
            "RUN" => Directive::Run(vec!["/bin/sh".into(), "-c".into(), rest.into()]),
            "ENV" => Directive::Env(pairs(&shown, start, rest)?),
            "LABEL" => Directive::Label(pairs(&shown, start, rest)?),
            "USER" => Directive::User(rest.into()),
            "WORKDIR" => Directive::Workdir(rest.into()),
            "EXPOSE" => Directive::Expose(rest.split_whitespace().map(str::to_owned).collect()),
            "COPY" => {
                let mut words: Vec<&str> = rest.split_whitespace().collect();
                let chown = match words.first().and_then(|w| w.strip_prefix("--chown=")) {
                    Some(owner) => {
                        let owner = owner.to_string();
                        words.remove(0);
                        Some(owner)
                    }
                    None => None,
                };
                let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
                    return Err(RecipeError::input(at, "COPY needs a source and a destination"));
                };
                Directive::Copy {
                    chown,
                    sources: sources.iter().map(|s| s.to_string()).collect(),
                    dest: dest.to_string(),
                }
            }
            other => {
                return Err(RecipeError::input(at, format!("directive {other} is not one WIT's additional build commands take (RUN, COPY, ENV, LABEL, USER, WORKDIR, EXPOSE)")))
            }
        };
        if matches!(&directive, Directive::User(u) | Directive::Workdir(u) if u.is_empty()) {
            return Err(RecipeError::input(at, format!("{keyword} needs a value")));
        }
        match section.as_deref() {
            Some(FINAL) | None => out.final_commands.push((start, directive)),
            Some(stage) => out
                .stages
                .entry(stage.to_string())
                .or_default()
                .push((start, directive)),
        }
    }
    Ok(out)
}

/// `NAME[:GROUP]` (names or ids) as numeric ids, read from the image's account files.
fn resolve_user(root: &Path, user: &str) -> Result<(u32, u32), RecipeError> {
    let (name, group) = user
        .split_once(':')
        .map_or((user, None), |(u, g)| (u, Some(g)));
    let lookup = |file: &str, key: &str| -> Option<(u32, u32)> {
        let text = crate::beneath::read(root, file).ok().flatten()?;
        String::from_utf8_lossy(&text).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == key)
                .then(|| (f[2].parse().ok(), f[3].parse().ok()))
                .and_then(|(a, b)| Some((a?, b.unwrap_or(0))))
        })
    };
    let (uid, primary) = match name.parse::<u32>() {
        Ok(uid) => (uid, lookup("etc/passwd", name).map_or(0, |(_, g)| g)),
        Err(_) => lookup("etc/passwd", name).ok_or_else(|| {
            RecipeError::input(
                "USER",
                format!("{name} is not an account in the image's /etc/passwd"),
            )
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup("etc/group", g).map(|(gid, _)| gid).ok_or_else(|| {
                RecipeError::input(
                    "USER",
                    format!("{g} is not a group in the image's /etc/group"),
                )
            })?,
        },
    };
    Ok((uid, gid))
}

/// Runs `directives` (section `name` of `commands`) in `sandbox`, an overlay over an image whose
/// config is `config`; returns the config its ENV/LABEL/USER/WORKDIR/EXPOSE made. The sandbox's
/// upper directory holds what they changed.
pub async fn run_directives(
    sandbox: &mut patchfarm_executor::Sandbox,
    mut config: ImageConfig,
    commands: &BuildCommands,
    (name, directives): (&str, &[(usize, Directive)]),
    network: bool,
) -> Result<ImageConfig, RecipeError> {
    let shown = commands.file.display().to_string();
    let mut user = config.user().unwrap_or_default();
    let mut cwd = config.working_dir().unwrap_or_else(|| "/".into());
    for (line, directive) in directives {
        let at = format!("{shown}:{line}");
        match directive {
            Directive::Run(args) => {
                let (uid, gid) = if user.is_empty() {
                    (0, 0)
                } else {
                    resolve_user(&sandbox.merged(), &user)?
                };
                let mut step = Step::shell("");
                step.args = args.clone();
                step.env = config
                    .env()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                step.cwd = cwd.clone();
                step.network = network;
                (step.uid, step.gid) = (uid, gid);
                let mut print =
                    |l: &str| tracing::info!(target: "patchfarm::step", section = name, "{l}");
                sandbox
                    .run(&step, &mut print)
                    .await
                    .map_err(|e| RecipeError::input(at, e.to_string()))?;
            }
            Directive::Env(pairs) => pairs.iter().for_each(|(k, v)| config.set_env(k, v)),
            Directive::Label(pairs) => pairs.iter().for_each(|(k, v)| config.set_label(k, v)),
            Directive::User(u) => {
                user = u.clone();
                config.set_user(u);
            }
            Directive::Workdir(w) => {
                cwd = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{w}", cwd.trim_end_matches('/'))
                };
                config.set_working_dir(&cwd);
            }
            Directive::Expose(ports) => {
                let mut exposed = config
                    .runtime_value("ExposedPorts")
                    .cloned()
                    .unwrap_or(serde_json::json!({}));
                for port in ports {
                    let port = if port.contains('/') {
                        port.clone()
                    } else {
                        format!("{port}/tcp")
                    };
                    exposed[port] = serde_json::json!({});
                }
                config.set_runtime_value("ExposedPorts", exposed);
            }
            Directive::Copy {
                chown,
                sources,
                dest,
            } => {
                let owner = match chown {
                    Some(c) => Some(resolve_user(&sandbox.merged(), c)?),
                    None => None,
                };
                copy_in(&sandbox.merged(), commands, sources, (dest, &cwd), owner)
                    .map_err(|e| RecipeError::input(at, e))?;
            }
        }
    }
    Ok(config)
}

/// Runs `directives` (section `name` of `commands`) on the image made of `layers` with
/// `config`; returns the layer of its changes — only those under `keep`, when given — and the
/// config its ENV/LABEL/USER/WORKDIR/EXPOSE made; no layer when it changed nothing kept.
#[allow(clippy::too_many_arguments)]
pub async fn run_section(
    engine: &Engine,
    dir: &BuildDir,
    layers: &[OutBlob],
    mut config: ImageConfig,
    commands: &BuildCommands,
    (name, directives): (&str, &[(usize, Directive)]),
    network: bool,
    keep: Option<&[&str]>,
) -> Result<(Option<LayerBlob>, ImageConfig), RecipeError> {
    let lowers = dir.trees().lowers(layers).await?;
    let shown = commands.file.display().to_string();
    let mut sandbox = engine.sandbox(&lowers, dir.path()).map_err(|e| {
        RecipeError::input(format!("--additionalBuildCommands {shown}"), e.to_string())
    })?;
    config = run_directives(&mut sandbox, config, commands, (name, directives), network).await?;
    let upper = sandbox.finish().map_err(|e| {
        RecipeError::input(format!("--additionalBuildCommands {shown}"), e.to_string())
    })?;
    let keep: Option<Vec<String>> = keep.map(|k| k.iter().map(|p| p.to_string()).collect());
    let read = upper.clone();
    let spec = tokio::task::spawn_blocking(move || {
        let upper = read;
        if let Some(keep) = &keep {
            super::sections::prune(&upper, keep).map_err(|e| crate::layer::LayerError::Write {
                dir: upper.display().to_string(),
                source: e,
            })?;
        }
        crate::layer::capture::capture(&upper)
    })
    .await
    .expect("capture task")?;
    // A section that changed nothing that is kept (ENV and LABEL only, say) adds no layer.
    if spec.is_empty() {
        return Ok((None, config));
    }
    // The spec reads its files from the upper directory, which then stands for the layer
    // under whatever runs next.
    let blob = dir.write_layer(engine, spec).await?;
    dir.trees().captured(&blob, upper).await?;
    Ok((Some(blob), config))
}

/// `image` (assembled from `base` and the build's new `layers`) with `commands`' final section
/// run on it: the section's changes are one more layer on top, its ENV/LABEL/… in the config.
pub async fn on_top(
    engine: &Engine,
    dir: &BuildDir,
    base: &crate::transport::ResolvedImage,
    mut layers: Vec<(LayerBlob, String)>,
    image: crate::transport::PushedImage,
    commands: &BuildCommands,
    network: bool,
) -> Result<crate::transport::PushedImage, RecipeError> {
    let built = ImageConfig::parse(&image.config_bytes, "built config")
        .expect("a config this build wrote parses");
    let (layer, mut config) = run_section(
        engine,
        dir,
        &image.layers,
        built,
        commands,
        (FINAL, &commands.final_commands),
        network,
        None,
    )
    .await?;
    if let Some(layer) = layer {
        layers.push((
            layer,
            format!(
                "patchfarm: additionalBuildCommands [{FINAL}] {}",
                commands.file.display()
            ),
        ));
    }
    // Assembled again from the base's layers, now with the section's layer on top.
    config.set_layers(&base.config.diff_ids(), base.config.history());
    Ok(super::build::assemble(engine, base, config, &layers))
}

/// WIT's COPY: sources are `files/NAME` (or `NAME`) of an `--additionalBuildFiles` entry.
/// A relative destination is under the WORKDIR `cwd`, as Docker's COPY takes it; it names a
/// directory to copy into when it ends in `/` (or is `.`), takes several sources or already is
/// one in the image.
fn copy_in(
    merged: &Path,
    commands: &BuildCommands,
    sources: &[String],
    (dest, cwd): (&str, &str),
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let absolute = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", cwd.trim_end_matches('/'))
    };
    let plain: Vec<&str> = absolute
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let dest = if plain.is_empty() {
        String::new()
    } else {
        crate::layer::writer::image_path(&plain.join("/")).map_err(|e| e.to_string())?
    };
    let into_dir = absolute.ends_with('/')
        || absolute.ends_with("/.")
        || sources.len() > 1
        || dest.is_empty()
        || crate::beneath::is_dir(merged, &dest);
    for source in sources {
        let name = source.strip_prefix("files/").unwrap_or(source);
        let host = commands
            .files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == name))
            .ok_or_else(|| {
                format!("COPY {source}: no --additionalBuildFiles entry is named {name}")
            })?;
        let target = if dest.is_empty() {
            name.to_string()
        } else if into_dir {
            format!("{dest}/{name}")
        } else {
            dest.clone()
        };
        let mut file = crate::beneath::create(merged, &target)
            .map_err(|e| format!("COPY {source} {target}: {e}"))?;
        std::io::copy(
            &mut std::fs::File::open(host).map_err(|e| format!("COPY {}: {e}", host.display()))?,
            &mut file,
        )
        .map_err(|e| format!("COPY {source}: {e}"))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(merged.join(&target), Some(uid), Some(gid))
                .map_err(|e| format!("COPY --chown: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wits_file_parses_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cmds.txt");
        std::fs::write(&file, "# comment\n[final-build-commands]\nRUN echo a \\\n  && echo b\nENV A=1 B=\"two\"\nLABEL team=ops\nUSER oracle\nCOPY --chown=oracle:root files/x.sh /u01/\n").unwrap();
        let parsed = parse(&file, vec![]).unwrap();
        assert_eq!(parsed.final_commands.len(), 5);
        assert_eq!(parsed.final_commands[0].0, 3);
        assert_eq!(
            parsed.final_commands[0].1,
            Directive::Run(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo a  && echo b".into()
            ])
        );
        assert_eq!(
            parsed.final_commands[1].1,
            Directive::Env(vec![("A".into(), "1".into()), ("B".into(), "two".into())])
        );
        for (body, needle) in [
            (
                "[final-build-commands]\nADD x /y\n",
                "cmds.txt:2: directive ADD",
            ),
            ("[nonsense]\n", "cmds.txt:1: unknown section"),
            (
                "[before-fmw-install]\nFROM scratch\n",
                "cmds.txt:2: directive FROM",
            ),
            ("RUN true\n", "cmds.txt:1: a directive before any"),
        ] {
            std::fs::write(&file, body).unwrap();
            let err = parse(&file, vec![]).unwrap_err().to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }
}
