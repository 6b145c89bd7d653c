//! Rebasing Domain-in-Image domains: fast path vs copy path vs a full `create`, for one domain
//! (CLI) and 100 in a row (in one process, as an agent runs them). Times are taken directly
//! against the registry; bytes are counted in identical passes through a proxy, whose
//! one-request-per-connection forwarding would distort the timing.

use patchfarm_e2e::faults::FaultProxy;
use patchfarm_e2e::{patchfarm_bin, run, Registry};
use patchfarm_engine::cache::Cache;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::layer::{LayerSpec, Owner};
use patchfarm_engine::recipe::{build, rebase, Engine};
use patchfarm_engine::transport::Registries;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const DOMAINS: usize = 100;
/// Rebases one agent runs at once in the concurrent pass.
const AT_ONCE: usize = 32;
const PATCHES: &str = "37000001_12.2.1.4.0,37000002_12.2.1.4.0";

/// Runs after the create/update section, reusing its patchfarm home (JDK `jdk_bench`, the fixture
/// Oracle Home and patches in the cache).
pub fn rebase_bench(registry: &Registry, home: &Path, busybox: &str) {
    println!("\n## rebase (timed against the registry, bytes counted by a proxy; target: fast path <= 20 ms and <= 16 KiB per domain)");
    let proxy = FaultProxy::start(registry.addr, vec![]);
    let (direct, counted) = (registry.host(), proxy.host());
    let pf = |args: &[&str]| -> (f64, usize) {
        let before = proxy.bytes_sent();
        let mut cmd = Command::new(patchfarm_bin());
        cmd.env("PATCHFARM_CACHE", home.join("cache"))
            .env("HOME", home)
            .arg("--json")
            .args(args);
        let start = Instant::now();
        run(&mut cmd);
        (start.elapsed().as_secs_f64(), proxy.bytes_sent() - before)
    };
    let at = |host: &str, path: &str| format!("{host}/{path}");
    pf(&[
        "create",
        "--tag",
        &at(&direct, "wls/old:1"),
        "--fromImage",
        busybox,
        "--jdkVersion",
        "bench",
    ]);
    pf(&[
        "create",
        "--tag",
        &at(&direct, "wls/new:1"),
        "--fromImage",
        busybox,
        "--jdkVersion",
        "bench",
        "--patches",
        PATCHES,
    ]);
    let base_counted = busybox.replace(&direct, &counted);
    let (create_s, create_bytes) = pf(&[
        "create",
        "--tag",
        &at(&counted, "wls/full:1"),
        "--fromImage",
        &base_counted,
        "--jdkVersion",
        "bench",
        "--patches",
        PATCHES,
    ]);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let engine = Engine {
        cache: Cache::new(home.join("cache")),
        registries: Registries::default(),
        source_date_epoch: 0,
        compression: Default::default(),
        steps_refused: None,
        step_network_refused: None,
        signer: None,
        builder: "test".into(),
        base_keys: Vec::new(),
    };
    let platform = Platform::default();
    runtime.block_on(make_domains(
        &engine,
        &at(&direct, "wls/old:1"),
        &direct,
        &platform,
    ));

    let cli = |host: &str, extra: &[&str], tag: &str| {
        let mut args = vec!["rebase", "--sourceImage"];
        let (source, target, tag) = (
            at(host, "domains/d0:1"),
            at(host, "wls/new:1"),
            at(host, &format!("domains/d0:{tag}")),
        );
        args.extend_from_slice(&[&source, "--targetImage", &target, "--tag", &tag]);
        args.extend_from_slice(extra);
        pf(&args)
    };
    let (fast_1, _) = cli(&direct, &[], "cli-fast");
    let (_, fast_1_bytes) = cli(&counted, &[], "cli-fast-counted");
    let (copy_1, _) = cli(&direct, &["--copyDomain"], "cli-copy");
    let (_, copy_1_bytes) = cli(&counted, &["--copyDomain"], "cli-copy-counted");

    // `at_once` rebases run concurrently (1: one after another, as one agent slot runs them).
    let in_process =
        |copy_domain: bool, suffix: &str, host: &str, at_once: usize| -> (f64, usize) {
            runtime.block_on(async {
                // An agent rebasing a fleet onto one target fetches the target once.
                let target_ref: ImageRef = at(host, "wls/new:1").parse().unwrap();
                let target = rebase::Target::pushed(
                    &build::fetch_base(&engine, &target_ref, &platform)
                        .await
                        .unwrap(),
                );
                let before = proxy.bytes_sent();
                let start = Instant::now();
                let one = |i: usize| {
                    let request = rebase::RebaseRequest {
                        source: at(host, &format!("domains/d{i}:1")).parse().unwrap(),
                        tag: at(host, &format!("domains/d{i}:{suffix}")).parse().unwrap(),
                        old_base: None,
                        force: false,
                        copy_domain,
                        platform: platform.clone(),
                        build_commands: None,
                        step_network: false,
                    };
                    let (engine, target) = (&engine, target.clone());
                    async move {
                        rebase::run(engine, &request, target).await.unwrap();
                    }
                };
                use futures_util::StreamExt as _;
                futures_util::stream::iter((0..DOMAINS).map(one))
                    .buffer_unordered(at_once)
                    .collect::<Vec<()>>()
                    .await;
                (start.elapsed().as_secs_f64(), proxy.bytes_sent() - before)
            })
        };
    let (fast_n, _) = in_process(false, "fast", &direct, 1);
    let (_, fast_n_bytes) = in_process(false, "fast-counted", &counted, 1);
    let (fast_32, _) = in_process(false, "fast-32", &direct, AT_ONCE);
    let (copy_n, _) = in_process(true, "copy", &direct, 1);
    let (_, copy_n_bytes) = in_process(true, "copy-counted", &counted, 1);

    println!(
        "{:<46} {:>8} {:>10} {:>11} {:>13}",
        "path", "domains", "total s", "ms/domain", "bytes/domain"
    );
    let row = |name: &str, n: usize, secs: f64, bytes: usize| {
        println!(
            "{name:<46} {n:>8} {secs:>10.3} {:>11.1} {:>13}",
            secs * 1000.0 / n as f64,
            bytes / n
        )
    };
    row(
        "fast path, CLI (one process per domain)",
        1,
        fast_1,
        fast_1_bytes,
    );
    row("copy path, CLI", 1, copy_1, copy_1_bytes);
    row(
        "fast path, in one process (as an agent)",
        DOMAINS,
        fast_n,
        fast_n_bytes,
    );
    row(
        &format!("fast path, in one process, {AT_ONCE} at once"),
        DOMAINS,
        fast_32,
        fast_n_bytes,
    );
    println!(
        "fast path in one process: {:.0} domains/s one after another, {:.0} domains/s {AT_ONCE} at once (target >= 200)",
        DOMAINS as f64 / fast_n,
        DOMAINS as f64 / fast_32
    );
    row("copy path, in one process", DOMAINS, copy_n, copy_n_bytes);
    row(
        "full create of the target (real JDK)",
        1,
        create_s,
        create_bytes,
    );
}

/// 100 Domain-in-Image images on `old`, each with its own small domain layer.
async fn make_domains(engine: &Engine, old: &str, host: &str, platform: &Platform) {
    let old_image = build::fetch_base(engine, &old.parse().unwrap(), platform)
        .await
        .unwrap();
    let owner = Owner {
        uid: 1000,
        gid: 1000,
    };
    for i in 0..DOMAINS {
        let domain = format!("/u01/domains/d{i}");
        let mut spec = LayerSpec::new();
        spec.add_dir(&domain, 0o750, owner).unwrap();
        spec.add_bytes(
            &format!("{domain}/config/config.xml"),
            format!("<domain><name>d{i}</name></domain>").into_bytes(),
            0o640,
            owner,
        )
        .unwrap();
        spec.add_bytes(
            &format!("{domain}/security/SerializedSystemIni.dat"),
            vec![i as u8; 64],
            0o640,
            owner,
        )
        .unwrap();
        let dir = build::BuildDir::new(engine).unwrap();
        let layer = dir.write_layer(engine, spec).await.unwrap();
        let mut config = old_image.config.clone();
        config.set_env("DOMAIN_HOME", &domain);
        let image = build::assemble(
            engine,
            &old_image,
            config,
            &[(layer, format!("domain d{i}"))],
        );
        build::publish(
            engine,
            &image,
            &format!("{host}/domains/d{i}:1").parse().unwrap(),
        )
        .await
        .unwrap();
    }
}
