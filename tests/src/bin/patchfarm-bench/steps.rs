//! Build steps against the anchor a WIT user has today: `docker build` (then `docker push`) of a
//! Dockerfile doing what WIT's does — the real JDK copied to /u01/jdk, Oracle's installer (the
//! OUI stand-in) run silently — against `patchfarm create` of the same image through the
//! executor (push included), on the same debootstrap Debian base, in the same run. Three cases:
//! the installer alone, plus an empty RUN step, plus a RUN writing ~1 GiB (four copies of the
//! JDK). Prints wall times, bytes of the new layers and whether two builds gave the same digest.

use patchfarm_e2e::oui::installer_zip;
use patchfarm_e2e::tools::Patchfarm;
use patchfarm_e2e::{require_tool, run, weblogic, Registry};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const VERSION: &str = "14.1.1.0.0";

struct Figures {
    seconds: f64,
    bytes: u64,
    digest: String,
}

fn timed(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    run(cmd);
    start.elapsed().as_secs_f64()
}

/// Layer bytes of `image` in the registry (compressed, as pulled) past the base's `skip` layers.
fn new_layer_bytes(image: &str, skip: usize) -> u64 {
    let manifest = patchfarm_e2e::wls::raw(image);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .skip(skip)
        .map(|l| l["size"].as_u64().unwrap_or(0))
        .sum()
}

fn docker_build(ctx: &Path, tag: &str, base_layers: usize) -> (Figures, f64) {
    let build = timed(
        Command::new("docker")
            .args(["build", "-q", "--no-cache", "-t", tag])
            .arg(ctx),
    );
    let push = timed(Command::new("docker").args(["push", "-q", tag]));
    let id = run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", tag]));
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
    (
        Figures {
            seconds: build,
            bytes: new_layer_bytes(tag, base_layers),
            digest: id.trim().to_string(),
        },
        build + push,
    )
}

pub fn steps_bench() {
    for tool in ["docker", "runc", "javac", "debootstrap", "skopeo", "umoci"] {
        require_tool(tool);
    }
    let registry = Registry::start();
    let base = weblogic::debian_base(&registry);
    let base_layers = patchfarm_e2e::wls::raw(&base)["layers"]
        .as_array()
        .unwrap()
        .len();
    let work = tempfile::tempdir().unwrap();
    let (jdk_tgz, _, jdk_dir) = weblogic::real_jdk_tgz();
    let zip = installer_zip(work.path(), VERSION);
    let pf = Patchfarm::new();
    for args in [
        patchfarm_e2e::tools::add_installer_args("jdk", "17", jdk_tgz),
        patchfarm_e2e::tools::add_installer_args("wls", VERSION, &zip),
    ] {
        pf.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    run(Command::new("docker").args(["pull", "-q", &base]));
    // WIT's Dockerfile, reduced to what the installer needs (its own unzip step is done here).
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // The same JDK tree patchfarm gets (the tar.gz it caches), unpacked for COPY.
    run(Command::new("tar")
        .arg("-xzf")
        .arg(jdk_tgz)
        .arg("-C")
        .arg(&ctx));
    std::fs::rename(ctx.join(jdk_dir.file_name().unwrap()), ctx.join("jdk")).unwrap();
    let jar = format!("fmw_{VERSION}_wls_lite_generic.jar");
    std::fs::copy(
        work.path().join(format!("oui-{VERSION}")).join(&jar),
        ctx.join(&jar),
    )
    .unwrap();
    std::fs::write(
        ctx.join("wls.rsp"),
        "[ENGINE]\nResponse File Version=1.0.0.0.0\n[GENERIC]\nINSTALL_TYPE=WebLogic Server\n",
    )
    .unwrap();
    std::fs::write(
        ctx.join("oraInst.loc"),
        "inventory_loc=/u01/oracle/oraInventory\ninst_group=oracle\n",
    )
    .unwrap();
    let cases: [(&str, &str); 3] = [
        ("installer step", ""),
        ("installer + empty RUN", "true"),
        // Four copies of the JDK tree: ~1 GiB of real files, the same bytes every run.
        (
            "installer + RUN writing ~1 GiB",
            "for i in 1 2 3 4; do cp -a /u01/jdk /u01/oracle/jdk-copy-$i; done",
        ),
    ];
    println!("\nbuild steps: patchfarm create (executor, push included) vs docker build (+ push), Debian base, real JDK, OUI stand-in");
    println!("| case | docker build s | docker build+push s | patchfarm s | patchfarm / docker build | patchfarm / docker build+push | new layer bytes docker / patchfarm | same digest twice docker / patchfarm |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, (name, step)) in cases.iter().enumerate() {
        let run_line = if step.is_empty() {
            String::new()
        } else {
            format!("RUN {step}\n")
        };
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM {base}\nRUN groupadd -g 1000 oracle && useradd -u 1000 -g oracle -d /u01/oracle oracle \\\n && mkdir -p /u01/oracle/oraInventory && chown -R oracle:oracle /u01\nCOPY --chown=oracle:oracle jdk /u01/jdk\nCOPY --chown=oracle:oracle {jar} wls.rsp /tmp/imagetool/wls/\nCOPY --chown=oracle:oracle oraInst.loc /u01/oracle/\nUSER oracle\nRUN /u01/jdk/bin/java -Xmx1024m -jar /tmp/imagetool/wls/{jar} -silent ORACLE_HOME=/u01/oracle -responseFile /tmp/imagetool/wls/wls.rsp -invPtrLoc /u01/oracle/oraInst.loc -ignoreSysPrereqs -force -novalidation\n{run_line}"
            ),
        )
        .unwrap();
        let docker: Vec<(Figures, f64)> = (0..2)
            .map(|i| {
                docker_build(
                    &ctx,
                    &format!("{}/bench/docker-{n}:{i}", registry.host()),
                    base_layers,
                )
            })
            .collect();
        let commands = work.path().join(format!("commands-{n}.txt"));
        std::fs::write(
            &commands,
            format!("[final-build-commands]\nUSER oracle\n{run_line}"),
        )
        .unwrap();
        let ours: Vec<Figures> = (0..2)
            .map(|i| {
                let tag = format!("{}/bench/pf-{n}:{i}", registry.host());
                let commands = commands.display().to_string();
                let mut args = vec![
                    "create",
                    "--tag",
                    &tag,
                    "--fromImage",
                    &base,
                    "--jdkVersion",
                    "17",
                    "--version",
                    VERSION,
                ];
                if !step.is_empty() {
                    args.extend(["--additionalBuildCommands", &commands]);
                }
                let start = Instant::now();
                pf.ok(&args);
                let seconds = start.elapsed().as_secs_f64();
                Figures {
                    seconds,
                    bytes: new_layer_bytes(&tag, base_layers),
                    digest: patchfarm_e2e::wls::raw_digest(&tag),
                }
            })
            .collect();
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {} / {} | {} / {} |",
            docker[0].0.seconds,
            docker[0].1,
            ours[0].seconds,
            ours[0].seconds / docker[0].0.seconds,
            ours[0].seconds / docker[0].1,
            docker[0].0.bytes,
            ours[0].bytes,
            if docker[0].0.digest == docker[1].0.digest {
                "yes"
            } else {
                "no"
            },
            if ours[0].digest == ours[1].digest {
                "yes"
            } else {
                "no"
            },
        );
    }
}
