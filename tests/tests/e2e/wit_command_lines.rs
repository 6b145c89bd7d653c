//! Command lines as WIT's user guide writes them, `imagetool.sh` replaced by `patchfarm` (tags
//! on a local registry, the fixture cache): each runs, or is refused only for what patchfarm
//! does not do yet, saying so.

use patchfarm_e2e::wdt::write_wdt_standin_zip;
use patchfarm_e2e::weblogic::{self, WLS_VERSION};
use patchfarm_e2e::wls::{add_domain, derive, key, Wls, DOMAIN_CONFIG, PSU, REC};

enum Expect {
    Runs,
    /// Runs and prints this note on stderr.
    RunsSaying(&'static str),
    /// Refused, saying this.
    Refused(&'static str),
}

#[test]
fn wit_user_guide_command_lines_run_unchanged() {
    let mut wls = Wls::new();
    // No engine here: the table checks what happens without one (engine_store.rs uses one).
    let no_engine = format!("unix://{}", wls.dir.path().join("no-engine.sock").display());
    wls.pf.extra_env.push(("DOCKER_HOST".into(), no_engine));
    wls.fake_jdk();
    let wdt = wls.dir.path().join("weblogic-deploy.zip");
    write_wdt_standin_zip(&wdt, "4.2.1");
    wls.pf.add_wdt(&wdt);
    let model = wls.dir.path().join("model.yaml");
    std::fs::write(&model, "domainInfo: {}\n").unwrap();
    let model = model.display().to_string();
    let args_file = wls.dir.path().join("build_args");
    let (base, t1, t2, aux) = (
        wls.base.clone(),
        wls.tag("wit:1"),
        wls.tag("wit:2"),
        wls.tag("wit-aux:1"),
    );
    let (t4, t5) = (wls.tag("wit-domain:1"), wls.tag("wit-domain:2"));
    std::fs::write(&args_file, format!("inspect\n--image {t1}\n--patches\n")).unwrap();
    let jdk = wls.dir.path().join("jdk-8u401.tar.gz");
    std::fs::write(&jdk, b"not really a jdk").unwrap();
    let (psu, rec) = (key(PSU), key(REC));
    // A Domain-in-Image image on a base of its own, for WIT's rebase example.
    let (t0, domain, t3) = (
        wls.tag("wit:0"),
        wls.tag("wit-domain:1"),
        wls.tag("wit-domain:2"),
    );
    wls.create(&t0, &[]);
    derive(&t0, &domain, add_domain, DOMAIN_CONFIG);
    let patch_dir = tempfile::tempdir().unwrap();
    let patch = weblogic::patch_zip(patch_dir.path(), "37000009", WLS_VERSION, &[], &[]);
    let (patch, jdk, args_file) = (
        patch.display().to_string(),
        jdk.display().to_string(),
        args_file.display().to_string(),
    );
    // Each line as WIT's guide writes it (words split on spaces; no path here holds one).
    let mut lines: Vec<(String, Expect)> = vec![
        (
            format!("create --tag {t1} --fromImage {base} --jdkVersion 17 --version 12.2.1.4.0 --patches {psu}"),
            Expect::Runs,
        ),
        (
            format!("create --tag {t1} --fromImage {base} --jdkVersion 17 --type wls --dryRun"),
            Expect::Runs,
        ),
        (
            format!("create --tag {t1} --fromImage {base} --jdkVersion 17 --builder podman --pull --build-arg A=B"),
            Expect::RunsSaying("note: --builder: patchfarm assembles the image itself"),
        ),
        (
            format!("create -t {t1} --fromImage {base} --jdkVersion 17 -b docker --skipcleanup --buildNetwork host"),
            Expect::RunsSaying("note: --buildNetwork: build steps"),
        ),
        (
            format!("update --fromImage {t1} --tag {t2} --patches {rec}"),
            Expect::Runs,
        ),
        (
            format!("update --fromImage {t1} --tag {t2} --type WLS --patches {rec}"),
            Expect::Runs,
        ),
        // --type picks the product whose PSU --latestPSU looks up: the catalog has WLS's only.
        (
            format!("update --fromImage {t1} --tag {t2} --type SOA --latestPSU --patchCatalog {}", wls.catalog().display()),
            Expect::Refused("lists no product soa 12.2.1.4.0"),
        ),
        (
            format!("create --tag {t1} --fromImage {base} --jdkVersion 17 --fromImageProperties {args_file} --dryRun"),
            Expect::RunsSaying("note: --fromImageProperties: patchfarm reads --fromImage's own files"),
        ),
        // WIT defaults --fromImage to Docker Hub's busybox, which is not reachable here.
        (
            format!("createAuxImage --tag {aux} --fromImage {base} --wdtModel {model}"),
            Expect::Runs,
        ),
        (
            format!("inspect --image {t2} --patches"),
            Expect::Runs,
        ),
        (
            format!("inspect -i {t2} -p -f json"),
            Expect::Runs,
        ),
        (
            format!("inspect --image {t2} --builder podman"),
            Expect::RunsSaying("note: --builder: patchfarm reads the image's layers"),
        ),
        (
            format!("@{args_file}"),
            Expect::Runs,
        ),
        (
            format!("rebase --tag {t3} --sourceImage {domain} --targetImage {t2}"),
            Expect::Runs,
        ),
        (
            "cache listItems".to_string(),
            Expect::Runs,
        ),
        (
            format!("cache addPatch --patchId 37000009_12.2.1.4.0 --path {patch}"),
            Expect::Runs,
        ),
        (
            format!("cache addInstaller --type jdk --version 8u401 --path {jdk}"),
            Expect::Runs,
        ),
        (
            "cache deleteEntry --key jdk_8u401".to_string(),
            Expect::Runs,
        ),
        (
            "cache deleteEntry --key jdk_8u401".to_string(),
            Expect::Runs,
        ),

        // A Docker Hub short name is read as docker reads it: the engine's (none reachable
        // here), else pulled from Docker Hub (unreachable here).
        (
            "inspect --image busybox".to_string(),
            Expect::Refused("nor from docker.io/library/busybox:latest"),
        ),
        // WIT's own examples tag into the local engine's store (engine_store.rs loads them into
        // a real one); with none reachable the refusal names the two ways out.
        (
            format!("create --tag wls:12.2.1.4.0 --fromImage {base} --jdkVersion 17"),
            Expect::Refused("name a registry (HOST[:PORT]/wls:12.2.1.4.0) or an OCI layout (oci:DIR:12.2.1.4.0)"),
        ),
    ];
    // Domain in Image: WDT (a stand-in here) builds the domain in the image, a build step.
    if patchfarm_e2e::tools::steps_available("wit_user_guide_command_lines_run_unchanged") {
        lines.extend([
            (
                format!("create --tag {t4} --fromImage {base} --jdkVersion 17 --wdtModel {model} --wdtDomainHome /u01/domains/wit --wdtDomainType WLS"),
                Expect::Runs,
            ),
            (
                format!("update --fromImage {t4} --tag {t5} --wdtModel {model} --wdtDomainHome /u01/domains/wit"),
                Expect::Runs,
            ),
            (
                format!("update --fromImage {t1} --tag {t5} --wdtModel {model} --wdtOperation UPDATE"),
                Expect::Refused("IMG-0071"),
            ),
        ]);
    }
    assert!(lines.len() >= 20, "the table shrank to {}", lines.len());
    let mut failures = Vec::new();
    for (args, expect) in &lines {
        let argv: Vec<&str> = args.split_whitespace().collect();
        let out = wls.pf.output(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let fine = match expect {
            Expect::Runs => out.status.success(),
            Expect::RunsSaying(note) => out.status.success() && stderr.contains(note),
            Expect::Refused(why) => !out.status.success() && stderr.contains(why),
        };
        if !fine {
            failures.push(format!("patchfarm {args}\n  -> {:?}: {stderr}", out.status));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} WIT command lines:\n{}",
        failures.len(),
        lines.len(),
        failures.join("\n")
    );
}
