//! Every option of every command appears in that command's `--help`, with words saying what it
//! does: read from the clap definition itself, so a new flag cannot be added undocumented.

use clap::CommandFactory;

fn check(command: &mut clap::Command, path: &str, missing: &mut Vec<String>) {
    let help = command.render_long_help().to_string();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        if matches!(long, "help" | "version") {
            continue;
        }
        if !help.contains(&format!("--{long}")) {
            missing.push(format!("{path} --{long}: not in --help"));
        } else if arg.get_help().is_none() && arg.get_long_help().is_none() {
            missing.push(format!("{path} --{long}: no description"));
        }
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let sub = command.find_subcommand_mut(&name).expect("listed");
        check(sub, &format!("{path} {name}"), missing);
    }
}

#[test]
fn every_option_is_in_help_with_a_description() {
    let mut command = crate::Cli::command();
    command.build();
    let mut missing = Vec::new();
    check(&mut command, "patchfarm", &mut missing);
    assert!(
        missing.is_empty(),
        "{} options:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::Bash,
        &mut command,
        "patchfarm",
        &mut script,
    );
    let script = String::from_utf8(script).unwrap();
    let mut man = Vec::new();
    clap_mangen::Man::new(crate::Cli::command())
        .render(&mut man)
        .unwrap();
    let man = String::from_utf8(man).unwrap();
    assert!(man.contains(".TH patchfarm 1"), "{man}");
    for sub in crate::Cli::command().get_subcommands() {
        let name = sub.get_name();
        assert!(script.contains(name), "completion lacks {name}");
        assert!(man.contains(name), "man page lacks {name}");
    }
    // The script is valid bash.
    // (From a file: the script outgrew what one argument may hold.)
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("patchfarm.bash");
    std::fs::write(&file, &script).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .unwrap();
    assert!(checked.success());
}
