//! Domain-in-Image builds against the anchor a WIT user has today: `patchfarm create --wdtModel`
//! (WDT — the stand-in — run as a build step, only the domain kept; push included) next to
//! `create --wdtModelOnly` (no WDT run) and next to `docker build` of WIT's multi-stage
//! Dockerfile doing the same (JDK and Oracle Home copied in, WDT run in a stage, the domain
//! copied into the final stage), on the same debootstrap Debian base, real JDK, in one run.

use patchfarm_e2e::tools::Patchfarm;
use patchfarm_e2e::wdt::{model, write_wdt_standin_zip};
use patchfarm_e2e::{require_tool, run, weblogic, Registry};
use std::process::Command;
use std::time::Instant;

const VERSION: &str = "12.2.1.4.0";

fn seconds(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

pub fn wdt_bench() {
    for tool in ["docker", "runc", "debootstrap", "skopeo", "umoci", "unzip"] {
        require_tool(tool);
    }
    let registry = Registry::start();
    let base = weblogic::debian_base(&registry);
    let work = tempfile::tempdir().unwrap();
    let (jdk_tgz, _, jdk_dir) = weblogic::real_jdk_tgz();
    let home = work.path().join("wls.zip");
    weblogic::oracle_home_zip(&home, VERSION);
    let wdt = work.path().join("weblogic-deploy.zip");
    write_wdt_standin_zip(&wdt, "4.3.0");
    let model_file = work.path().join("model.yaml");
    std::fs::write(&model_file, model("bench", &["admin", "ms1", "ms2"])).unwrap();
    let pf = Patchfarm::new();
    for args in [
        patchfarm_e2e::tools::add_installer_args("jdk", "17", jdk_tgz),
        patchfarm_e2e::tools::add_installer_args("wls", VERSION, &home),
        patchfarm_e2e::tools::add_installer_args("wdt", "latest", &wdt),
    ] {
        pf.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    run(Command::new("docker").args(["pull", "-q", &base]));

    // WIT's Dockerfile for `create --wdtModel`, its unzip steps done in the context.
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(ctx.join("oracle")).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(jdk_tgz)
        .arg("-C")
        .arg(&ctx));
    std::fs::rename(ctx.join(jdk_dir.file_name().unwrap()), ctx.join("jdk")).unwrap();
    run(Command::new("unzip")
        .arg("-q")
        .arg(&home)
        .arg("-d")
        .arg(ctx.join("oracle")));
    run(Command::new("unzip")
        .arg("-q")
        .arg(&wdt)
        .arg("-d")
        .arg(&ctx));
    std::fs::copy(&model_file, ctx.join("model.yaml")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            r#"FROM {base} AS os_update
RUN groupadd -g 1000 oracle && useradd -u 1000 -g oracle -d /u01/oracle oracle && mkdir -p /u01 && chown oracle:oracle /u01
FROM os_update AS wls_build
COPY --chown=oracle:oracle jdk /u01/jdk
COPY --chown=oracle:oracle oracle /u01/oracle
FROM wls_build AS wdt_build
ENV WLSDEPLOY_PROPERTIES="-Djava.security.egd=file:/dev/./urandom" DOMAIN_HOME=/u01/domains/base_domain JAVA_HOME=/u01/jdk
USER oracle
RUN mkdir -p /u01/wdt/models /u01/domains
COPY --chown=oracle:oracle weblogic-deploy /u01/wdt/weblogic-deploy
COPY --chown=oracle:oracle model.yaml /u01/wdt/models/
RUN cd /u01/wdt/weblogic-deploy/bin && ./createDomain.sh -oracle_home /u01/oracle -domain_home /u01/domains/base_domain -domain_type WLS -model_file /u01/wdt/models/model.yaml
FROM os_update AS final_build
ENV JAVA_HOME=/u01/jdk ORACLE_HOME=/u01/oracle DOMAIN_HOME=/u01/domains/base_domain
COPY --from=wls_build --chown=oracle:oracle /u01/jdk /u01/jdk
COPY --from=wls_build --chown=oracle:oracle /u01/oracle /u01/oracle
COPY --from=wdt_build --chown=oracle:oracle /u01/domains/base_domain /u01/domains/base_domain/
USER oracle
WORKDIR /u01/domains/base_domain
"#
        ),
    )
    .unwrap();
    let docker_tag = format!("{}/bench/docker-domain:1", registry.host());
    let start = Instant::now();
    run(Command::new("docker")
        .args(["build", "-q", "--no-cache", "-t", &docker_tag])
        .arg(&ctx));
    let docker_build = seconds(start);
    run(Command::new("docker").args(["push", "-q", &docker_tag]));
    let docker_push = seconds(start);
    let _ = Command::new("docker")
        .args(["rmi", "-f", &docker_tag])
        .output();

    let model = model_file.display().to_string();
    let create = |name: &str, extra: &[&str]| {
        let tag = format!("{}/bench/{name}:1", registry.host());
        let mut args = vec![
            "create",
            "--tag",
            &tag,
            "--fromImage",
            &base,
            "--jdkVersion",
            "17",
            "--wdtModel",
            &model,
        ];
        args.extend_from_slice(extra);
        let start = Instant::now();
        pf.ok(&args);
        seconds(start)
    };
    // The first create caches the JDK's and the Oracle Home's layers; both then reuse them,
    // as every build after the first does.
    let warm = create("warm", &["--wdtModelOnly"]);
    let model_only = create("model-only", &["--wdtModelOnly"]);
    let domain = create("domain", &[]);
    println!("\nDomain in Image: patchfarm create --wdtModel (WDT stand-in run as a build step, push included) vs --wdtModelOnly vs docker build of WIT's Dockerfile, Debian base, real JDK");
    println!("| build | seconds | / docker build | / docker build+push |");
    println!("|---|---|---|---|");
    println!("| docker build (WIT's Dockerfile) | {docker_build:.1} | 1.00 | |");
    println!("| docker build + push | {docker_push:.1} | | 1.00 |");
    println!(
        "| patchfarm create, first (layers built) --wdtModelOnly | {warm:.1} | {:.2} | {:.2} |",
        warm / docker_build,
        warm / docker_push
    );
    println!(
        "| patchfarm create --wdtModelOnly | {model_only:.1} | {:.2} | {:.2} |",
        model_only / docker_build,
        model_only / docker_push
    );
    println!(
        "| patchfarm create --wdtModel (domain by WDT) | {domain:.1} | {:.2} | {:.2} |",
        domain / docker_build,
        domain / docker_push
    );
}
