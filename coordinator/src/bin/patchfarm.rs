//! The `patchfarm` command: WIT's verbs, run locally with the native image engine.

fn main() -> std::process::ExitCode {
    patchfarm_coordinator::cli::main()
}
