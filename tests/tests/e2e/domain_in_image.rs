//! Domain-in-Image built by WDT (a stand-in that checks its arguments like WDT and writes a
//! domain, installed with `cache addInstaller --type wdt`): `create --wdtModel` runs
//! createDomain.sh in the image and keeps only the domain, `update --wdtOperation DEPLOY`
//! adds an application as one layer, the domain's layers move onto a newer patched base by
//! rebase's fast path, a passphrase never lands anywhere, and what WDT rejects pushes nothing.

use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::tools::{contains, files_under};
use patchfarm_e2e::wdt::{model, write_archive, write_wdt_standin_zip};
use patchfarm_e2e::wls::image_bytes;
use patchfarm_e2e::wls::{assert_not_pushed, key, layer_entries, raw, raw_config, unpack, Wls};
use patchfarm_e2e::wls::{PSU, REC};
use patchfarm_e2e::{docker_available, run};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

const HOME: &str = "/u01/domains/payments";

struct Fixture {
    wls: Wls,
    model: PathBuf,
}

fn setup(test: &str) -> Option<Fixture> {
    if !steps_available(test) {
        return None;
    }
    let wls = Wls::new();
    wls.fake_jdk();
    let wdt = wls.dir.path().join("weblogic-deploy.zip");
    write_wdt_standin_zip(&wdt, "4.3.0");
    wls.pf.add_wdt(&wdt);
    let model_file = wls.dir.path().join("payments.yaml");
    std::fs::write(&model_file, model("payments", &["admin", "ms1", "ms2"])).unwrap();
    Some(Fixture {
        wls,
        model: model_file,
    })
}

impl Fixture {
    fn path(&self, name: &str) -> String {
        self.wls.dir.path().join(name).display().to_string()
    }

    /// `create` with the payments domain built by WDT, on `patches`.
    fn create_domain(&self, tag: &str, patches: &str, extra: &[&str]) -> serde_json::Value {
        let model = self.model.display().to_string();
        let mut args = vec![
            "--wdtModel",
            &model,
            "--wdtDomainHome",
            HOME,
            "--patches",
            patches,
        ];
        args.extend_from_slice(extra);
        self.wls.create(tag, &args)
    }
}

fn top_layer(reference: &str) -> (String, usize) {
    let manifest = raw(reference);
    let layers = manifest["layers"].as_array().unwrap();
    (
        layers.last().unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string(),
        layers.len(),
    )
}

#[test]
fn create_builds_the_domain_with_wdt_and_keeps_only_the_domain() {
    let Some(f) = setup("create_builds_the_domain_with_wdt") else {
        return;
    };
    let tag = f.wls.tag("payments:1");
    let template = f.path("domain-resource.yaml");
    std::fs::write(
        &template,
        "image: \"{{{imageName}}}\"\ndomainHome: {{{domainHome}}}\ndomainHomeSourceType: {{{domainHomeSourceType}}}\n",
    )
    .unwrap();
    f.create_domain(
        &tag,
        &key(PSU),
        &[
            "--wdtJavaOptions",
            "-Dwdt.test=1",
            "--resourceTemplates",
            &template,
            "--wdtHome",
            "/opt/wdt",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&template).unwrap(),
        format!("image: \"{tag}\"\ndomainHome: {HOME}\ndomainHomeSourceType: Image\n"),
        "WIT's resource template filled in"
    );

    let config = raw_config(&tag);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"DOMAIN_HOME=/u01/domains/payments"),
        "{env:?}"
    );
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=") && e.ends_with(":/u01/domains/payments/bin")),
        "{env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("WDT_MODEL_HOME=")));
    assert!(env.contains(&"WDT_HOME=/opt/wdt"), "{env:?}");
    assert_eq!(config["config"]["WorkingDir"], HOME);

    let (_work, rootfs) = unpack(&tag);
    let domain = rootfs.join(HOME.trim_start_matches('/'));
    let xml = std::fs::read_to_string(domain.join("config/config.xml")).unwrap();
    for name in [
        "<name>payments</name>",
        "<name>ms1</name>",
        "<name>ms2</name>",
    ] {
        assert!(xml.contains(name), "{name} in {xml}");
    }
    assert_eq!(
        std::fs::read(domain.join("security/SerializedSystemIni.dat"))
            .unwrap()
            .len(),
        48
    );
    assert!(domain.join("servers/ms2/security").is_dir());
    // Owned by the Oracle Home's owner, as WIT's `COPY --chown` leaves it.
    let owner = std::fs::metadata(rootfs.join("u01/oracle")).unwrap().uid();
    assert_ne!(owner, 0);
    for path in ["config/config.xml", "bin/startWebLogic.sh", "security"] {
        assert_eq!(
            std::fs::metadata(domain.join(path)).unwrap().uid(),
            owner,
            "{path}"
        );
    }
    assert!(
        !rootfs.join("opt/wdt").exists() && !rootfs.join("u01/wdt").exists(),
        "WDT and the models stay out of a Domain-in-Image image, as in WIT"
    );

    // One layer holds the domain and nothing else.
    let (_, layers) = top_layer(&tag);
    let entries = layer_entries(&f.wls.registry, &tag, layers - 1);
    assert!(
        entries.iter().all(|(name, _)| {
            let name = name.trim_end_matches('/');
            "u01/domains/payments".starts_with(name) || name.starts_with("u01/domains/payments/")
        }),
        "{:?}",
        entries.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&f.wls.pf.ok(&["inspect", "--image", &tag])).unwrap();
    assert_eq!(inspected["domainHome"], HOME, "{inspected}");
    assert_eq!(inspected["wdtModelOnly"], false, "{inspected}");

    if docker_available("create_builds_the_domain_with_wdt") {
        run(Command::new("docker").args(["pull", "-q", &tag]));
        let listed = run(Command::new("docker").args([
            "run",
            "--rm",
            "--entrypoint",
            "ls",
            &tag,
            "/u01/domains/payments/config",
        ]));
        let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
        assert!(listed.contains("config.xml"), "{listed}");
    }
}

#[test]
fn deployed_apps_are_one_layer_and_the_domain_moves_onto_a_patched_base_by_digest() {
    let Some(f) = setup("deployed_apps_are_one_layer") else {
        return;
    };
    let (domain, target, deployed) = (
        f.wls.tag("payments:1"),
        f.wls.tag("base:2"),
        f.wls.tag("payments:2"),
    );
    f.create_domain(&domain, &key(PSU), &[]);
    f.wls.create(
        &target,
        &["--patches", &format!("{},{}", key(PSU), key(REC))],
    );
    let archive = f.path("shop.zip");
    write_archive(std::path::Path::new(&archive), "shop", "<h1>shop</h1>\n");
    f.wls.pf.ok(&[
        "update",
        "--fromImage",
        &domain,
        "--tag",
        &deployed,
        "--wdtOperation",
        "DEPLOY",
        "--wdtArchive",
        &archive,
        "--wdtDomainHome",
        HOME,
    ]);
    let (domain_layer, domain_layers) = top_layer(&domain);
    let (app_layer, deployed_layers) = top_layer(&deployed);
    assert_eq!(
        deployed_layers,
        domain_layers + 1,
        "the application is one layer"
    );
    let entries = layer_entries(&f.wls.registry, &deployed, deployed_layers - 1);
    let page = entries
        .iter()
        .find(|(name, _)| name.ends_with("wlsdeploy/applications/shop/index.html"))
        .expect("the application in the new layer");
    assert_eq!(page.1, b"<h1>shop</h1>\n");
    let xml = entries
        .iter()
        .find(|(name, _)| name.ends_with("config/config.xml"))
        .expect("config.xml rewritten in the new layer");
    assert!(String::from_utf8_lossy(&xml.1).contains("<app-deployment><name>shop</name>"));

    let (_w, before) = unpack(&deployed);
    let ini = |root: &std::path::Path| {
        std::fs::read(root.join("u01/domains/payments/security/SerializedSystemIni.dat")).unwrap()
    };
    let rebased = f.wls.tag("payments:3");
    let out: serde_json::Value = serde_json::from_str(&f.wls.pf.ok(&[
        "rebase",
        "--json",
        "--sourceImage",
        &deployed,
        "--targetImage",
        &target,
        "--tag",
        &rebased,
    ]))
    .unwrap();
    assert_eq!(out["path"], "fast", "{out}");
    assert_eq!(out["reused_layers"], 2, "{out}");
    let target_layers: Vec<serde_json::Value> = raw(&target)["layers"].as_array().unwrap().clone();
    let rebased_layers = raw(&rebased)["layers"].as_array().unwrap().clone();
    assert_eq!(rebased_layers[..target_layers.len()], target_layers[..]);
    let digests: Vec<&str> = rebased_layers[target_layers.len()..]
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [domain_layer.as_str(), app_layer.as_str()]);
    let (_w2, after) = unpack(&rebased);
    assert_eq!(
        ini(&after),
        ini(&before),
        "SerializedSystemIni.dat unchanged"
    );
    assert!(after
        .join("u01/domains/payments/wlsdeploy/applications/shop/index.html")
        .is_file());

    // WIT's way works on it too: the domain home copied into one new layer.
    let copied = f.wls.tag("payments:4");
    let out: serde_json::Value = serde_json::from_str(&f.wls.pf.ok(&[
        "rebase",
        "--json",
        "--copyDomain",
        "--sourceImage",
        &deployed,
        "--targetImage",
        &target,
        "--tag",
        &copied,
    ]))
    .unwrap();
    assert_eq!(out["path"], "copy", "{out}");
    assert_eq!(
        raw(&copied)["layers"].as_array().unwrap().len(),
        target_layers.len() + 1
    );
    let (_w3, copied_root) = unpack(&copied);
    assert_eq!(ini(&copied_root), ini(&before));
    assert_eq!(
        std::fs::read(copied_root.join("u01/domains/payments/config/config.xml")).unwrap(),
        std::fs::read(before.join("u01/domains/payments/config/config.xml")).unwrap()
    );
}

#[test]
fn the_models_passphrase_reaches_wdt_and_nothing_else() {
    let Some(mut f) = setup("the_models_passphrase_reaches_wdt") else {
        return;
    };
    const PASSPHRASE: &str = "s3cret-Passphrase-4711";
    f.wls
        .pf
        .extra_env
        .push(("WDT_PASSPHRASE".into(), PASSPHRASE.into()));
    let encrypted = f.path("encrypted.yaml");
    std::fs::write(
        &encrypted,
        format!(
            "{}resources:\n  JDBCSystemResource:\n    ds:\n      PasswordEncrypted: '{{AES256}}c2VjcmV0'\n",
            model("payments", &["admin"])
        ),
    )
    .unwrap();
    let tag = f.wls.tag("encrypted:1");
    // Without the passphrase WDT refuses the model, with its own lines, and nothing is pushed.
    let refused = f
        .wls
        .create_fails(&tag, &["--wdtModel", &encrypted, "--wdtDomainHome", HOME]);
    assert!(refused.contains("WLSDPLY-04200"), "{refused}");
    assert_not_pushed(&tag);

    let args = vec![
        "create",
        "--tag",
        &tag,
        "--fromImage",
        &f.wls.base,
        "--jdkVersion",
        "17",
        "--wdtModel",
        &encrypted,
        "--wdtDomainHome",
        HOME,
        "--wdtEncryptionKeyEnv",
        "WDT_PASSPHRASE",
    ];
    let mut command = f.wls.pf.command(&args);
    command.env("RUST_LOG", "debug");
    let out = command.output().unwrap();
    let logs = [out.stdout.clone(), out.stderr.clone()].concat();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&logs));
    let (_work, rootfs) = unpack(&tag);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("u01/domains/payments/config/encryption.txt")).unwrap(),
        format!(
            "model decrypted with a passphrase of {} characters\n",
            PASSPHRASE.len()
        ),
        "WDT read the passphrase on its standard input"
    );
    assert!(
        !contains(&image_bytes(&tag), PASSPHRASE),
        "in a layer or the config"
    );
    assert!(!contains(&logs, PASSPHRASE), "in the logs");
    let mut leftovers = Vec::new();
    for entry in files_under(f.wls.pf.home.path()) {
        if std::fs::read(&entry).is_ok_and(|bytes| contains(&bytes, PASSPHRASE)) {
            leftovers.push(entry);
        }
    }
    assert!(leftovers.is_empty(), "left on disk: {leftovers:?}");

    // A farm job never carries it: refused before anything is sent.
    let mut farm = args.clone();
    farm.splice(0..0, ["--farm", "127.0.0.1:9"]);
    let refused = f.wls.pf.fails(&farm);
    assert!(refused.contains("--wdtEncryptionKey"), "{refused}");
    assert!(refused.contains("never carries a secret"), "{refused}");
}

#[test]
fn what_wdt_rejects_fails_with_its_own_lines_and_pushes_nothing() {
    let Some(f) = setup("what_wdt_rejects_fails_with_its_own_lines") else {
        return;
    };
    let tag = f.wls.tag("rejected:1");
    let model = f.model.display().to_string();
    let bad_model = f.path("bad.yaml");
    std::fs::write(&bad_model, "topology:\n  Name: x\nclusters:\n  c1: {}\n").unwrap();
    let missing = f.path("missing.zip");
    for (extra, says) in [
        (
            vec!["--wdtModel", bad_model.as_str()],
            "<WLSDPLY-05027> <model file /u01/wdt/models/bad.yaml",
        ),
        (
            vec!["--wdtModel", &model, "--wdtDomainType", "Exotic"],
            "<WLSDPLY-12300> <the domain type Exotic",
        ),
        (
            vec!["--wdtModel", &model, "--wdtArchive", missing.as_str()],
            "missing.zip",
        ),
        (
            vec!["--wdtModel", &model, "--wdtVersion", "none"],
            "--wdtVersion none",
        ),
    ] {
        let err = f.wls.create_fails(&tag, &extra);
        assert!(err.contains(says), "{extra:?}: {err}");
        assert_not_pushed(&tag);
    }
    let err = f.wls.create_fails(&tag, &["--wdtModel", &bad_model]);
    assert!(
        err.contains("the model section clusters is not recognized"),
        "WDT's own message: {err}"
    );
    // update DEPLOY needs a domain to deploy to.
    let plain = f.wls.tag("plain:1");
    f.wls.create(&plain, &[]);
    let err = f.wls.pf.fails(&[
        "update",
        "--fromImage",
        &plain,
        "--tag",
        &tag,
        "--wdtOperation",
        "DEPLOY",
        "--wdtModel",
        &model,
    ]);
    assert!(err.contains("IMG-0071"), "{err}");
    assert_not_pushed(&tag);
}

#[test]
fn model_only_places_wdt_and_the_models_where_wdt_home_and_model_home_say() {
    let wls = Wls::new();
    wls.fake_jdk();
    let wdt = wls.dir.path().join("weblogic-deploy.zip");
    write_wdt_standin_zip(&wdt, "4.3.0");
    wls.pf.add_wdt(&wdt);
    let model_file = wls.dir.path().join("orders.yaml");
    std::fs::write(&model_file, model("orders", &["admin"])).unwrap();
    let tag = wls.tag("mii:1");
    wls.create(
        &tag,
        &[
            "--wdtModel",
            &model_file.display().to_string(),
            "--wdtModelOnly",
            "--wdtHome",
            "/opt/wdt",
            "--wdtModelHome",
            "/opt/models",
        ],
    );
    let (_work, rootfs) = unpack(&tag);
    assert!(rootfs.join("opt/wdt/weblogic-deploy/VERSION.txt").is_file());
    assert!(rootfs.join("opt/models/orders.yaml").is_file());
    assert!(!rootfs.join("u01/wdt").exists());
    let inspected: serde_json::Value =
        serde_json::from_str(&wls.pf.ok(&["inspect", "--image", &tag])).unwrap();
    assert_eq!(inspected["wdtHome"], "/opt/wdt", "{inspected}");
    assert_eq!(inspected["wdtModelHome"], "/opt/models", "{inspected}");
    assert_eq!(inspected["wdtModelOnly"], true, "{inspected}");
    let err = wls.create_fails(
        &tag,
        &[
            "--wdtModel",
            &model_file.display().to_string(),
            "--wdtModelOnly",
            "--wdtModelHome",
            "models",
        ],
    );
    assert!(err.contains("--wdtModelHome models"), "{err}");
}
