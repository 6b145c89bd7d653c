//! What signing costs: `create` of an image with the real JDK, and a fast-path `rebase`, each
//! pushed plain and with `--sign-key` (signature, SPDX SBOM and signed provenance attached), in
//! the same run against the same loopback registry. Targets: <= 10 % added on create, <= 15 ms
//! added per rebase. Prints medians; asserts nothing about speed.

use patchfarm_e2e::weblogic::{self, WLS_VERSION};
use patchfarm_e2e::wls::{self, derive, DOMAIN_CONFIG};
use patchfarm_e2e::{busybox_base, patchfarm_bin, run, Registry};
use std::process::Command;
use std::time::Instant;

const ROUNDS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

pub fn signing_bench() {
    println!("\n## signing (plain push against --sign-key: signature + SBOM + provenance), medians of {ROUNDS}");
    let registry = Registry::start();
    let busybox = busybox_base(&registry);
    let home = tempfile::tempdir().unwrap();
    let (key, _) = patchfarm_e2e::sign::key_pair(home.path(), "farm");
    let pf = |args: &[&str]| -> f64 {
        let mut cmd = Command::new(patchfarm_bin());
        cmd.env("PATCHFARM_CACHE", home.path().join("cache"))
            .env("HOME", home.path())
            .args(args);
        let start = Instant::now();
        run(&mut cmd);
        start.elapsed().as_secs_f64()
    };
    let (jdk_tgz, _, _) = weblogic::real_jdk_tgz();
    let wls_zip = home.path().join("wls.zip");
    weblogic::oracle_home_zip(&wls_zip, WLS_VERSION);
    for args in [
        patchfarm_e2e::tools::add_installer_args("jdk", "17", jdk_tgz),
        patchfarm_e2e::tools::add_installer_args("wls", WLS_VERSION, &wls_zip),
    ] {
        pf(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let host = registry.host();
    let key_arg = key.display().to_string();
    let create = |tag: &str, signed: bool| {
        let mut args = vec![];
        if signed {
            args.extend(["--sign-key", key_arg.as_str()]);
        }
        args.extend([
            "create",
            "--tag",
            tag,
            "--fromImage",
            &busybox,
            "--jdkVersion",
            "17",
        ]);
        pf(&args)
    };
    // Warm: layers built and blobs in the repository, as in a farm's steady state.
    create(&format!("{host}/jdk/warm:1"), false);
    let (mut plain, mut signed) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        plain.push(create(&format!("{host}/jdk/plain:{round}"), false));
        signed.push(create(&format!("{host}/jdk/signed:{round}"), true));
    }
    report(
        "create (real JDK + WLS)",
        median(plain),
        median(signed),
        "<= 10 %",
    );

    // Fast-path rebase: a domain image on an old base moved onto a new one.
    let old = format!("{host}/wls/old:1");
    let new = format!("{host}/wls/new:1");
    create(&old, false);
    pf(&[
        "create",
        "--tag",
        &new,
        "--fromImage",
        &busybox,
        "--jdkVersion",
        "17",
        "--version",
        WLS_VERSION,
    ]);
    let domain = format!("{host}/domains/d:1");
    derive(&old, &domain, wls::add_domain, DOMAIN_CONFIG);
    let rebase = |tag: &str, signed: bool| {
        let mut args = vec![];
        if signed {
            args.extend(["--sign-key", key_arg.as_str()]);
        }
        args.extend([
            "rebase",
            "--sourceImage",
            &domain,
            "--targetImage",
            &new,
            "--tag",
            tag,
        ]);
        pf(&args)
    };
    rebase(&format!("{host}/domains/warm:1"), false);
    let (mut plain, mut signed) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        plain.push(rebase(&format!("{host}/domains/plain:{round}"), false));
        signed.push(rebase(&format!("{host}/domains/signed:{round}"), true));
    }
    report(
        "rebase (fast path)",
        median(plain),
        median(signed),
        "<= 15 ms added",
    );
}

fn report(what: &str, plain: f64, signed: f64, target: &str) {
    println!(
        "{what:<28} plain {:>8.1} ms   signed {:>8.1} ms   added {:>7.1} ms ({:+.1} %)   target {target}",
        plain * 1000.0,
        signed * 1000.0,
        (signed - plain) * 1000.0,
        (signed / plain - 1.0) * 100.0
    );
}
