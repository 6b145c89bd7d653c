//! Generates the tonic/prost code; uses the vendored protoc unless PROTOC names another.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // `patchfarm jobs show --json` prints specs and outcomes as they are on the wire.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .type_attribute(".", "#[serde(rename_all = \"camelCase\")]")
        .compile_protos(&["patchfarm.proto", "state.proto"], &["."])?;
    println!("cargo:rerun-if-changed=patchfarm.proto");
    println!("cargo:rerun-if-changed=state.proto");
    Ok(())
}
