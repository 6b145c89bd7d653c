//! The `patchfarm` command: WIT's verbs, run here with the native image engine or on the farm.

fn main() -> std::process::ExitCode {
    patchfarm_cli::main()
}
