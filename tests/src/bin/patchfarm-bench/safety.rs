//! The cost of safety (issue 13): two `patchfarm` binaries — one from before the hostile-input
//! work, one from this checkout — build the real JDK's layer (`create`: unpack, layer, push) and
//! rebase a domain on the fast path, interleaved run by run against one registry; then the new
//! binary meets the 64 GiB sparse JDK and the 4 GiB overlapping-zip JDK, with its peak RSS.
//! Figures are printed (medians, ratio new/old), never asserted.

use patchfarm_e2e::hostile::{overlapping_zip, sparse};
use patchfarm_e2e::tools::add_installer_args as add;
use patchfarm_e2e::weblogic::{oracle_home_zip, patch_zip, real_jdk_tgz, Act, WLS_VERSION};
use patchfarm_e2e::wls::{add_domain, derive, DOMAIN_CONFIG};
use patchfarm_e2e::{busybox_base, Registry};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 5;

/// Writes a hostile installer at the path.
type WriteBomb = dyn Fn(&Path);

struct Side {
    name: &'static str,
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Side {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("PATCHFARM_CACHE", self.home.path().join("cache"))
            .env("HOME", self.home.path())
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env_remove("RUST_LOG")
            .args(args);
        cmd
    }

    fn add_installer(&self, kind: &str, version: &str, path: &str) {
        let args = add(kind, version, Path::new(path));
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn ok(&self, args: &[&str]) -> f64 {
        let start = Instant::now();
        let out = self.command(args).output().unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{} {args:?}:\n{}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        secs
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn safety_bench(old_bin: &Path, new_bin: &Path) {
    let registry = Registry::start();
    let base = busybox_base(&registry);
    let host = registry.host();
    let inputs = tempfile::tempdir().unwrap();
    let (jdk, java_version, _) = real_jdk_tgz();
    let home = inputs.path().join("wls.zip");
    oracle_home_zip(&home, WLS_VERSION);
    println!("patchfarm safety benchmark — JDK {java_version}, {RUNS} runs each, interleaved");
    let sides = [
        Side {
            name: "old",
            bin: old_bin.into(),
            home: tempfile::tempdir().unwrap(),
        },
        Side {
            name: "new",
            bin: new_bin.into(),
            home: tempfile::tempdir().unwrap(),
        },
    ];
    let (jdk, home) = (jdk.display().to_string(), home.display().to_string());
    for side in &sides {
        side.add_installer("jdk", "17", &jdk);
        side.add_installer("wls", WLS_VERSION, &home);
    }
    let create = |side: &Side, tag: &str| {
        side.ok(&[
            "create",
            "--tag",
            tag,
            "--fromImage",
            &base,
            "--jdkVersion",
            "17",
        ])
    };

    // The JDK layer: every create unpacks the JDK and builds its layer again.
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 0..RUNS {
        for (i, side) in sides.iter().enumerate() {
            let tag = format!("{host}/safety/{}-jdk:{run}", side.name);
            times[i].push(create(side, &tag));
        }
    }
    let (old_create, new_create) = (median(times[0].clone()), median(times[1].clone()));

    // A domain on base 1, rebased onto base 2 by digest (the fast path).
    let (base1, base2) = (
        format!("{host}/safety/base:1"),
        format!("{host}/safety/base:2"),
    );
    create(&sides[1], &base1);
    let psu = patch_zip(
        inputs.path(),
        "37000001",
        WLS_VERSION,
        &[],
        &[Act::Copy {
            dir: "wlserver/server/lib",
            name: "readme.txt",
            content: b"PSU readme\n",
        }],
    );
    let psu_key = format!("37000001_{WLS_VERSION}");
    sides[1].ok(&[
        "cache",
        "addPatch",
        "--patchId",
        &psu_key,
        "--path",
        &psu.display().to_string(),
    ]);
    sides[1].ok(&[
        "create",
        "--tag",
        &base2,
        "--fromImage",
        &base,
        "--jdkVersion",
        "17",
        "--patches",
        &psu_key,
    ]);
    let domain = format!("{host}/safety/domain:1");
    derive(&base1, &domain, add_domain, DOMAIN_CONFIG);
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 0..RUNS {
        for (i, side) in sides.iter().enumerate() {
            let tag = format!("{host}/safety/{}-rebased:{run}", side.name);
            times[i].push(side.ok(&[
                "rebase",
                "--sourceImage",
                &domain,
                "--targetImage",
                &base2,
                "--tag",
                &tag,
            ]));
        }
    }
    let (old_rebase, new_rebase) = (median(times[0].clone()), median(times[1].clone()));
    let out = sides[1]
        .command(&[
            "rebase",
            "--json",
            "--sourceImage",
            &domain,
            "--targetImage",
            &base2,
            "--tag",
            &format!("{host}/safety/check:1"),
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        report["path"], "fast",
        "the rebase measured must take the fast path: {report}"
    );

    println!("\n| figure (median of {RUNS}) | before | after | after / before |");
    println!("|---|---|---|---|");
    println!(
        "| create: real JDK layer, s | {old_create:.3} | {new_create:.3} | {:.3} |",
        new_create / old_create
    );
    println!(
        "| rebase, fast path, s | {old_rebase:.3} | {new_rebase:.3} | {:.3} |",
        new_rebase / old_rebase
    );

    // Bombs, new binary only (the old one unpacks them: 64 GiB of zeros, 4 GiB of copies).
    println!("\n| bomb (new binary) | outcome | wall s | peak RSS MiB |");
    println!("|---|---|---|---|");
    let bombs: [(&str, &WriteBomb); 2] = [
        ("JDK tar.gz declaring a 64 GiB sparse file", &|p: &Path| {
            sparse(p, 64 << 30)
        }),
        (
            "JDK zip of 4 GiB in 4,096 overlapping entries",
            &|p: &Path| overlapping_zip(p, &vec![0u8; 1 << 20], 4096),
        ),
    ];
    for (name, write) in bombs {
        let side = Side {
            name: "new",
            bin: new_bin.into(),
            home: tempfile::tempdir().unwrap(),
        };
        let path = side.home.path().join("bomb.bin");
        write(&path);
        let path = path.display().to_string();
        side.add_installer("jdk", "17", &path);
        side.add_installer("wls", WLS_VERSION, &home);
        let run = super::time_v_any(&side.command(&[
            "create",
            "--tag",
            &format!("{host}/safety/bomb:1"),
            "--fromImage",
            &base,
            "--jdkVersion",
            "17",
        ]));
        let outcome = if run.success { "built" } else { "refused" };
        println!(
            "| {name} | {outcome} | {:.2} | {:.1} |",
            run.secs, run.rss_mib
        );
    }
}
