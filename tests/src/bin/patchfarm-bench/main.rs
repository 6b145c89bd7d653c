//! patchfarm's benchmark: layer build of a real JDK tree against `tar | gzip -6` and
//! `tar | pigz -p2 -6`, then pushing the image against `skopeo copy` (new repository, another
//! repository of the same registry, re-push), with peak RSS from `/usr/bin/time -v`.
//! Prints figures and ratios measured in the same run; asserts nothing about speed.
//!
//! Usage: patchfarm-bench [JDK_DIR]   (default: the largest JDK under /usr/lib/jvm)
//!        patchfarm-bench raft            (only the coordinator cluster against etcd)
//!        patchfarm-bench sched           (only scheduling: 10,000 no-op jobs, 100 simulated agents)
//!        patchfarm-bench rebase          (create and update with the default JDK, then rebases:
//!                                         one, 100 in a row, 100 with 32 at once)
//!        patchfarm-bench fleet           (scheduling at fleet scale: the 10,000/100 run, then
//!                                         100,000 jobs and 1,000 agents with 500 cached digests)
//!        patchfarm-bench dashboard       (the scheduling run alone and watched: a campaign page
//!                                         poll and a metrics scrape every second)
//!        patchfarm-bench campaign        (only campaigns: the demo, a 200-domain fleet and a
//!                                         2,000-Domain export over 3 registries)
//!        patchfarm-bench steps           (build steps: OUI installer and RUN steps against
//!                                         docker build + push, same base and JDK)
//!        patchfarm-bench sign            (signing: create and fast-path rebase, plain and
//!                                         signed with SBOM and provenance)
//!        patchfarm-bench safety OLD NEW  (two `patchfarm` binaries: JDK layer and fast-path
//!                                         rebase, then the bombs with NEW; tests/bench/safety.sh)
//!        patchfarm-bench layer DIR OUT   (internal: one layer build, for RSS measurement)

mod campaign;
mod create_update;
mod dashboard;
mod export;
mod raft;
mod rebase;
mod safety;
mod sched;
mod signing;
mod steps;
mod wdt;

use patchfarm_e2e::{patchfarm_bin, require_tool, run, Registry};
use patchfarm_engine::digest::Digest;
use patchfarm_engine::image::manifest::Descriptor;
use patchfarm_engine::image::{media, ImageConfig, Manifest};
use patchfarm_engine::layer::compress::GZIP_LEVEL;
use patchfarm_engine::layer::{LayerSpec, Owner, WriteOptions};
use patchfarm_engine::transport::layout;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("raft") {
        raft::raft_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("rebase") {
        // create and update with the default JDK, then the rebase section (it reuses their home).
        require_tool("pigz");
        let work = tempfile::tempdir().unwrap();
        let registry = Registry::start();
        create_update::create_and_update(&registry, &default_jdk(), work.path());
        return;
    }
    if args.get(1).map(String::as_str) == Some("fleet") {
        sched::fleet_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("dashboard") {
        dashboard::dashboard_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("campaign") {
        campaign::campaign_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("sched") {
        sched::sched_bench();
        campaign::campaign_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("steps") {
        steps::steps_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("sign") {
        signing::signing_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("wdt") {
        wdt::wdt_bench();
        return;
    }
    if args.get(1).map(String::as_str) == Some("safety") {
        safety::safety_bench(Path::new(&args[2]), Path::new(&args[3]));
        return;
    }
    if args.get(1).map(String::as_str) == Some("layer") {
        let compression = args
            .get(4)
            .map_or(Default::default(), |c| c.parse().unwrap());
        let blob = build_layer(Path::new(&args[2]), Path::new(&args[3]), compression);
        println!(
            "{}",
            serde_json::json!({"digest": blob.digest.to_string(), "diff_id": blob.diff_id.to_string(), "size": blob.size, "tar_size": blob.tar_size, "path": blob.path})
        );
        return;
    }
    for tool in ["tar", "gzip", "pigz", "zstd", "skopeo", "docker-registry"] {
        require_tool(tool);
    }
    assert!(
        Path::new("/usr/bin/time").is_file(),
        "/usr/bin/time missing: apt-get install time"
    );
    let jdk = args.get(1).map(PathBuf::from).unwrap_or_else(default_jdk);
    let work = tempfile::tempdir().unwrap();
    println!("patchfarm benchmark — JDK tree {}", jdk.display());

    // Warm the page cache so every contender reads from memory.
    run(Command::new("tar")
        .arg("-cf")
        .arg("/dev/null")
        .arg("-C")
        .arg(jdk.parent().unwrap())
        .arg(jdk.file_name().unwrap()));

    println!("\n## Layer build (tar + gzip + sha256 of both)");
    let (pf_secs, pf_rss, blob) = timed_layer(&jdk, &work.path().join("pf1"), "gzip");
    let (_, _, again) = timed_layer(&jdk, &work.path().join("pf2"), "gzip");
    let (zstd_secs, zstd_rss, zstd_blob) = timed_layer(&jdk, &work.path().join("pfz"), "zstd");
    let zstd_cli = shell_pipeline(&jdk, "zstd -q -3 -T2", &work.path().join("zstd.tar.zst"));
    let tar_mb = blob["tar_size"].as_u64().unwrap() as f64 / 1e6;
    let deterministic = blob["digest"] == again["digest"];
    let gzip = shell_pipeline(&jdk, "gzip -6", &work.path().join("gzip.tgz"));
    let pigz = shell_pipeline(&jdk, "pigz -p2 -6", &work.path().join("pigz.tgz"));
    println!(
        "{:<28} {:>9} {:>10} {:>12} {:>10}",
        "contender", "seconds", "MB/s", "blob MB", "RSS MiB"
    );
    println!(
        "{:<28} {:>9.2} {:>10.1} {:>12.1} {:>10.1}",
        &format!("patchfarm (zlib-rs -{GZIP_LEVEL})"),
        pf_secs,
        tar_mb / pf_secs,
        blob["size"].as_u64().unwrap() as f64 / 1e6,
        pf_rss
    );
    println!(
        "{:<28} {:>9.2} {:>10.1} {:>12.1} {:>10.1}",
        "patchfarm --compression zstd",
        zstd_secs,
        tar_mb / zstd_secs,
        zstd_blob["size"].as_u64().unwrap() as f64 / 1e6,
        zstd_rss
    );
    for (name, (secs, size, rss)) in [
        ("tar | gzip -6", gzip),
        ("tar | pigz -p2 -6", pigz),
        ("tar | zstd -3 -T2", zstd_cli),
    ] {
        println!(
            "{:<28} {:>9.2} {:>10.1} {:>12.1} {:>10.1}",
            name,
            secs,
            tar_mb / secs,
            size as f64 / 1e6,
            rss
        );
    }
    println!(
        "speed vs pigz -p2 -6: {:.2}x (target >= 0.9x); vs gzip -6: {:.2}x",
        pigz.0 / pf_secs,
        gzip.0 / pf_secs
    );
    println!(
        "size vs pigz -6: {:.2}x; digest deterministic across two builds: {deterministic}",
        blob["size"].as_u64().unwrap() as f64 / pigz.1 as f64
    );
    println!(
        "zstd: speed vs pigz -p2 -6 {:.2}x at {:.2}x its size; vs zstd -3 -T2 {:.2}x at {:.2}x its size",
        pigz.0 / zstd_secs,
        zstd_blob["size"].as_u64().unwrap() as f64 / pigz.1 as f64,
        zstd_cli.0 / zstd_secs,
        zstd_blob["size"].as_u64().unwrap() as f64 / zstd_cli.1 as f64
    );

    println!(
        "\n## Push to a loopback registry ({:.0} MB image)",
        blob["size"].as_u64().unwrap() as f64 / 1e6
    );
    let image = work.path().join("layout");
    write_layout(&image, Path::new(blob["path"].as_str().unwrap()), &blob);
    let registry = Registry::start();
    let src = format!("oci:{}:jdk", image.display());
    let home = work.path().join("home");
    let cases = [
        ("new repository", "a", "b"),
        ("another repository, same registry", "a2", "b2"),
        ("re-push", "a2", "b2"),
    ];
    println!(
        "{:<36} {:>12} {:>12} {:>7} {:>12} {:>12} {:>9} {:>9}",
        "case", "patchfarm s", "skopeo s", "ratio", "pf uploads", "sk uploads", "pf MiB", "sk MiB"
    );
    for (case, pf_repo, sk_repo) in cases {
        let before = registry.upload_sessions();
        let (pf_s, pf_rss, _) = time_v(
            Command::new(patchfarm_bin())
                .env("PATCHFARM_CACHE", home.join("cache"))
                .env("HOME", &home)
                .args([
                    "copy",
                    &src,
                    &format!("{}/bench/{pf_repo}:1", registry.host()),
                ]),
        );
        let pf_uploads = registry.upload_sessions() - before;
        let before = registry.upload_sessions();
        let (sk_s, sk_rss, _) = time_v(Command::new("skopeo").env("HOME", &home).args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &src,
            &format!("docker://{}/bench/{sk_repo}:1", registry.host()),
        ]));
        let sk_uploads = registry.upload_sessions() - before;
        println!("{case:<36} {pf_s:>12.2} {sk_s:>12.2} {:>7.2} {pf_uploads:>12} {sk_uploads:>12} {pf_rss:>9.1} {sk_rss:>9.1}", pf_s / sk_s);
    }
    println!("(ratio = patchfarm time / skopeo time, target <= 1.0; uploads = blob upload sessions the registry logged)");

    create_update::create_and_update(&registry, &jdk, work.path());
    raft::raft_bench();
    sched::sched_bench();
}

fn default_jdk() -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir("/usr/lib/jvm")
        .expect("/usr/lib/jvm exists (install a JDK or pass a directory)")
        .flatten()
    {
        let path = entry.path();
        if path.is_symlink() || !path.is_dir() {
            continue;
        }
        let out = Command::new("du").arg("-sb").arg(&path).output().unwrap();
        let size: u64 = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if best.as_ref().is_none_or(|(s, _)| size > *s) {
            best = Some((size, path));
        }
    }
    best.expect("a JDK under /usr/lib/jvm").1
}

fn build_layer(
    dir: &Path,
    out: &Path,
    compression: patchfarm_engine::layer::Compression,
) -> patchfarm_engine::layer::LayerBlob {
    let mut spec = LayerSpec::new();
    spec.add_host_tree(
        dir,
        "/u01/jdk",
        Owner {
            uid: 1000,
            gid: 1000,
        },
    )
    .unwrap();
    spec.write(
        out,
        WriteOptions {
            compression,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Peak RSS in MiB from `/usr/bin/time -v` output.
fn peak_rss_mib(time_output: &str) -> f64 {
    let kb: f64 = time_output
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// A finished command under `/usr/bin/time -v`.
struct TimedRun {
    secs: f64,
    rss_mib: f64,
    stdout: String,
    stderr: String,
    success: bool,
}

/// Runs a command under `/usr/bin/time -v`, whatever its exit status.
fn time_v_any(cmd: &Command) -> TimedRun {
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-v").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let start = Instant::now();
    let out = timed.output().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    TimedRun {
        secs,
        rss_mib: peak_rss_mib(&stderr),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        success: out.status.success(),
    }
}

/// Runs a command under `/usr/bin/time -v`: (wall seconds, peak RSS MiB, stdout); it must succeed.
fn time_v(cmd: &mut Command) -> (f64, f64, String) {
    let run = time_v_any(cmd);
    assert!(run.success, "{cmd:?} failed:\n{}", run.stderr);
    (run.secs, run.rss_mib, run.stdout)
}

fn timed_layer(dir: &Path, out: &Path, compression: &str) -> (f64, f64, serde_json::Value) {
    let me = std::env::current_exe().unwrap();
    let (secs, rss, stdout) = time_v(
        Command::new(me)
            .arg("layer")
            .arg(dir)
            .arg(out)
            .arg(compression),
    );
    (secs, rss, serde_json::from_str(&stdout).unwrap())
}

/// `tar -c DIR | COMPRESSOR > out` timed as a whole: (seconds, compressed bytes, peak RSS MiB of the compressor).
fn shell_pipeline(dir: &Path, compressor: &str, out: &Path) -> (f64, u64, f64) {
    let script = format!(
        "tar -C '{}' -cf - '{}' | /usr/bin/time -v -o '{}.time' {compressor} > '{}'",
        dir.parent().unwrap().display(),
        dir.file_name().unwrap().to_string_lossy(),
        out.display(),
        out.display()
    );
    let start = Instant::now();
    run(Command::new("bash")
        .arg("-o")
        .arg("pipefail")
        .arg("-c")
        .arg(&script));
    let secs = start.elapsed().as_secs_f64();
    let time_out = std::fs::read_to_string(format!("{}.time", out.display())).unwrap_or_default();
    (
        secs,
        std::fs::metadata(out).unwrap().len(),
        peak_rss_mib(&time_out),
    )
}

/// An OCI layout holding one image: the JDK layer, a minimal config, a manifest tagged `jdk`.
fn write_layout(dir: &Path, layer_path: &Path, blob: &serde_json::Value) {
    layout::init(dir).unwrap();
    let digest: Digest = blob["digest"].as_str().unwrap().parse().unwrap();
    let diff_id: Digest = blob["diff_id"].as_str().unwrap().parse().unwrap();
    layout::put_blob_file(dir, &digest, layer_path).unwrap();
    let mut config = ImageConfig::empty("linux", "amd64");
    config.set_env("JAVA_HOME", "/u01/jdk");
    config.append_layer(&diff_id, "1970-01-01T00:00:00Z", "patchfarm-bench", "JDK");
    let config_bytes = config.to_bytes();
    let config_digest = Digest::of_bytes(&config_bytes);
    layout::put_blob_bytes(dir, &config_digest, &config_bytes).unwrap();
    let manifest = Manifest {
        media_type: media::OCI_MANIFEST.into(),
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
        layers: vec![Descriptor::new(
            media::OCI_LAYER_GZIP,
            digest,
            blob["size"].as_u64().unwrap(),
        )],
        annotations: BTreeMap::new(),
    };
    let bytes = manifest.to_oci_bytes();
    let manifest_digest = Digest::of_bytes(&bytes);
    layout::put_blob_bytes(dir, &manifest_digest, &bytes).unwrap();
    layout::tag(
        dir,
        Some("jdk"),
        &Descriptor::new(media::OCI_MANIFEST, manifest_digest, bytes.len() as u64),
        None,
    )
    .unwrap();
}
