//! External tools the tests drive (skopeo, umoci, docker) and the `patchfarm` binary under test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// True when running under CI (`CI=true`): missing tools are failures, never skips.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Panics with an install hint when `tool` is not on PATH (tests/run.sh installs them all).
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "'{tool}' is not installed; run tests/run.sh, which installs the test dependencies"
    );
}

/// Whether the Docker engine answers; in CI its absence fails the test, elsewhere it skips.
pub fn docker_available(test: &str) -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !in_ci(),
            "{test}: the Docker engine is required in CI but `docker info` failed"
        );
        eprintln!("SKIP {test}: the Docker engine is not available (`docker info` failed)");
    }
    ok
}

/// Whether build steps can run (root and runc); in CI their absence fails the test, elsewhere it
/// skips.
pub fn steps_available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let runc = Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && runc) {
        assert!(!in_ci(), "{test}: build steps need root and runc in CI");
        eprintln!("SKIP {test}: build steps need root and runc");
    }
    root && runc
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `patchfarm` binary: `$PATCHFARM_BIN`, else next to the test executable's target dir.
/// Copies an image between (plain-HTTP) registries with skopeo, unchanged.
pub fn registry_copy(from: &str, to: &str) {
    run(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}")));
}

pub fn patchfarm_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PATCHFARM_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/patchfarm
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("patchfarm");
    assert!(
        bin.is_file(),
        "{} not found: build it first (`cargo build --bins`; tests/run.sh does)",
        bin.display()
    );
    bin
}

/// Makes `layout:tag` with umoci: one layer holding what `populate` writes into the rootfs,
/// and the config set by umoci's `config` arguments (e.g. `--config.env K=V`).
pub fn umoci_image(
    work: &Path,
    tag: &str,
    populate: impl FnOnce(&Path),
    config: &[&str],
) -> PathBuf {
    require_tool("umoci");
    let layout = work.join("layout");
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = work.join(format!("bundle-{tag}"));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    populate(&bundle.join("rootfs"));
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    run(Command::new("umoci")
        .args([
            "config",
            "--image",
            &image,
            "--os",
            "linux",
            "--architecture",
            "amd64",
        ])
        .args(config));
    layout
}

/// The busybox base as an OCI layout made by umoci (built once per test process).
fn busybox_layout() -> &'static Path {
    static LAYOUT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &LAYOUT
        .get_or_init(|| {
            let busybox = Path::new("/bin/busybox");
            assert!(
                busybox.is_file(),
                "/bin/busybox missing: install Debian's busybox-static (tests/run.sh does)"
            );
            let dir = tempfile::tempdir().unwrap();
            let layout = umoci_image(
                dir.path(),
                "base",
                populate_busybox,
                &["--config.cmd", "/bin/sh"],
            );
            (dir, layout)
        })
        .1
}

/// A busybox root filesystem: the static binary, a few applets, root's account files.
fn populate_busybox(rootfs: &Path) {
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "id", "stat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(
        rootfs.join("etc/os-release"),
        "ID=busybox\nNAME=\"BusyBox\"\nVERSION_ID=1.35\n",
    )
    .unwrap();
}

/// Pushes a two-platform busybox index (linux/amd64 and, relabelled, linux/arm64 — no code runs
/// on it) to `registry` as `busybox:multi`; returns its reference.
pub fn busybox_multiarch(registry: &crate::Registry) -> String {
    use sha2::Digest as _;
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), "amd64", populate_busybox, &[]);
    run(Command::new("umoci")
        .args(["config", "--image"])
        .arg(format!("{}:amd64", layout.display()))
        .args(["--tag", "arm64", "--architecture", "arm64"]));
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entries: Vec<serde_json::Value> = ["amd64", "arm64"]
        .iter()
        .map(|arch| {
            let mut d = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == *arch)
                .unwrap()
                .clone();
            d.as_object_mut().unwrap().remove("annotations");
            d["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
            d
        })
        .collect();
    let multi = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})).unwrap();
    let digest = hex::encode(sha2::Sha256::digest(&multi));
    std::fs::write(layout.join("blobs/sha256").join(&digest), &multi).unwrap();
    index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{digest}"), "size": multi.len(),
        "annotations": {"org.opencontainers.image.ref.name": "multi"}
    }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let reference = format!("{}/busybox:multi", registry.host());
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "-q", "--all"])
        .args(registry.skopeo_flags("dest-"))
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{reference}"));
    run(&mut cmd);
    reference
}

/// Pushes the busybox base to `registry` as `busybox:1`; returns its reference.
pub fn busybox_base(registry: &crate::Registry) -> String {
    require_tool("skopeo");
    let reference = format!("{}/busybox:1", registry.host());
    let mut cmd = Command::new("skopeo");
    cmd.arg("copy")
        .args(registry.skopeo_flags("dest-"))
        .arg(format!("oci:{}:base", busybox_layout().display()))
        .arg(format!("docker://{reference}"));
    run(&mut cmd);
    reference
}

/// The patchfarm CLI with its own cache and docker config, as a user would run it.
pub struct Patchfarm {
    pub home: tempfile::TempDir,
    pub extra_env: Vec<(String, String)>,
}

impl Default for Patchfarm {
    fn default() -> Self {
        Self::new()
    }
}

impl Patchfarm {
    pub fn new() -> Self {
        Patchfarm {
            home: tempfile::tempdir().unwrap(),
            extra_env: Vec::new(),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home.path().join("cache")
    }

    pub fn docker_config_dir(&self) -> PathBuf {
        self.home.path().join("docker")
    }

    /// Writes a docker config.json with basic-auth credentials for `registry`.
    pub fn login(&self, registry: &str, user: &str, password: &str) {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        std::fs::create_dir_all(self.docker_config_dir()).unwrap();
        let config = serde_json::json!({"auths": {registry: {"auth": auth}}});
        std::fs::write(
            self.docker_config_dir().join("config.json"),
            config.to_string(),
        )
        .unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(patchfarm_bin());
        cmd.args(args)
            .env("PATCHFARM_CACHE", self.cache_dir())
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("HOME", self.home.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("RUST_LOG");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("patchfarm runs")
    }

    /// Caches `zip` as the WDT installer `wdt_latest`.
    pub fn add_wdt(&self, zip: &Path) {
        self.add_installer("wdt", "latest", zip);
    }

    /// `cache addInstaller` of `path` as KIND_VERSION.
    pub fn add_installer(&self, kind: &str, version: &str, path: &Path) {
        let args = add_installer_args(kind, version, path);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        run(&mut self.command(args))
    }

    /// Runs and expects failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "patchfarm {args:?} should have failed but succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// A WDT-like installer zip (`weblogic-deploy/…` with VERSION.txt and an executable script).
pub fn write_wdt_zip(path: &Path, version: &str) {
    use std::io::Write;
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let dir = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    let text = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    let exec = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.add_directory("weblogic-deploy/", dir).unwrap();
    zip.add_directory("weblogic-deploy/bin/", dir).unwrap();
    zip.start_file("weblogic-deploy/VERSION.txt", text).unwrap();
    zip.write_all(format!("WebLogic Deploy Tooling {version}\n").as_bytes())
        .unwrap();
    zip.start_file("weblogic-deploy/bin/createDomain.sh", exec)
        .unwrap();
    zip.write_all(b"#!/bin/sh\necho createDomain\n").unwrap();
    zip.finish().unwrap();
}

/// A registry with the busybox base pushed, a patchfarm with `wdt_latest` cached, and a model file.
pub struct AuxFixture {
    pub registry: crate::Registry,
    pub base: String,
    pub pf: Patchfarm,
    pub inputs: tempfile::TempDir,
}

impl AuxFixture {
    pub fn new() -> Self {
        Self::on(crate::Registry::start())
    }

    pub fn on(registry: crate::Registry) -> Self {
        let base = busybox_base(&registry);
        let pf = Patchfarm::new();
        let inputs = tempfile::tempdir().unwrap();
        std::fs::write(inputs.path().join("model.yaml"), "topology: {}\n").unwrap();
        write_wdt_zip(&inputs.path().join("wdt.zip"), "4.2.1");
        pf.add_wdt(&inputs.path().join("wdt.zip"));
        AuxFixture {
            registry,
            base,
            pf,
            inputs,
        }
    }

    pub fn model(&self) -> String {
        self.inputs.path().join("model.yaml").display().to_string()
    }
}

impl Default for AuxFixture {
    fn default() -> Self {
        Self::new()
    }
}

/// A free loopback port (the registry, the bench's etcd members).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// Waits (up to 20 s) until something listens on loopback `port`.
pub fn wait_port(port: u16) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `n` distinct free loopback ports (all held open together while choosing, so none repeats).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The arguments of `cache addInstaller` of `path` as KIND_VERSION.
pub fn add_installer_args(kind: &str, version: &str, path: &Path) -> Vec<String> {
    let path = path.display().to_string();
    [
        "cache",
        "addInstaller",
        "--type",
        kind,
        "--version",
        version,
        "--path",
        &path,
    ]
    .map(String::from)
    .to_vec()
}

/// The whole HTTP answer (status line, headers, body) of `address` to `GET path`; empty when
/// nothing listens there yet.
pub fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes());
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// Whether `needle` occurs in `haystack` (secrets searched for in files and images).
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every regular file under `dir`, following no link.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(files_under(&entry.path()));
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    out
}
