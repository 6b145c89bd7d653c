//! WIT's `--additionalBuildCommands FILE` read: its sections of Dockerfile directives (RUN,
//! COPY, ENV, LABEL, USER, WORKDIR, EXPOSE) with their line numbers, and the OS packages of
//! `[package-manager-packages]`. Which sections a verb runs, and how, is `steps`' and the verbs'.

use super::RecipeError;
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

/// Reads the file into its sections; an unknown section or directive is refused with file and
/// line (which sections a verb runs is the verb's to say).
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
