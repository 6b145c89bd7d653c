//! Bad input: each a clear error naming the input and the problem, and nothing tagged.

use patchfarm_e2e::AuxFixture;

type Setup = AuxFixture;

fn setup() -> Setup {
    AuxFixture::new()
}

trait BadInputChecks {
    fn tag(&self) -> String;
    fn assert_nothing_tagged(&self);
}

impl BadInputChecks for Setup {
    fn tag(&self) -> String {
        format!("{}/aux:bad", self.registry.host())
    }
    fn assert_nothing_tagged(&self) {
        assert!(
            self.registry.tags("aux").is_empty(),
            "a failed build tagged something"
        );
    }
}

#[test]
fn missing_model_file_is_named() {
    let s = setup();
    let missing = s.inputs.path().join("nope.yaml").display().to_string();
    let err = s.pf.fails(&[
        "createAuxImage",
        "--tag",
        &s.tag(),
        "--fromImage",
        &s.base,
        "--wdtModel",
        &missing,
    ]);
    assert!(
        err.contains("--wdtModel") && err.contains(&missing),
        "{err}"
    );
    s.assert_nothing_tagged();
}

#[test]
fn corrupt_cache_entry_is_named_and_nothing_is_pushed() {
    let s = setup();
    let entry: serde_json::Value =
        serde_json::from_str(&s.pf.ok(&["cache", "listItems", "--json"])).unwrap();
    let digest = entry[0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::write(
        s.pf.cache_dir().join("blobs/sha256").join(digest),
        b"tampered",
    )
    .unwrap();
    let err = s.pf.fails(&[
        "createAuxImage",
        "--tag",
        &s.tag(),
        "--fromImage",
        &s.base,
        "--wdtModel",
        &s.model(),
    ]);
    assert!(
        err.contains("wdt_latest") && err.contains("corrupt"),
        "{err}"
    );
    s.assert_nothing_tagged();
}

#[test]
fn unknown_cache_key_says_how_to_add_it() {
    let s = setup();
    let err = s.pf.fails(&[
        "createAuxImage",
        "--tag",
        &s.tag(),
        "--fromImage",
        &s.base,
        "--wdtModel",
        &s.model(),
        "--wdtVersion",
        "9.9.9",
    ]);
    assert!(
        err.contains("wdt_9.9.9")
            && err.contains("not found")
            && err.contains("cache addInstaller"),
        "{err}"
    );
    s.assert_nothing_tagged();
}

#[test]
fn malformed_references_are_named() {
    let s = setup();
    for bad in [
        "Busybox",
        "127.0.0.1:5000/UPPER:x",
        "https://reg.example.com/x:1",
        "127.0.0.1:5000/x@sha256:123",
    ] {
        let err = s.pf.fails(&[
            "createAuxImage",
            "--tag",
            bad,
            "--fromImage",
            &s.base,
            "--wdtModel",
            &s.model(),
        ]);
        assert!(err.contains("--tag") && err.contains(bad), "{bad}: {err}");
        let err = s.pf.fails(&["inspect", "--image", bad]);
        assert!(err.contains("--image") && err.contains(bad), "{bad}: {err}");
    }
    s.assert_nothing_tagged();
}

#[test]
fn unreachable_registry_is_named() {
    let s = setup();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("127.0.0.1:{port}");
    let err = s.pf.fails(&[
        "createAuxImage",
        "--tag",
        &format!("{dead}/aux:1"),
        "--fromImage",
        &s.base,
        "--wdtModel",
        &s.model(),
    ]);
    assert!(
        err.contains(&format!("registry {dead} is unreachable")),
        "{err}"
    );
    let err = s.pf.fails(&["inspect", "--image", &format!("{dead}/x:1")]);
    assert!(
        err.contains(&format!("registry {dead} is unreachable")),
        "{err}"
    );
    // A base that does not exist is named too.
    let err = s.pf.fails(&[
        "createAuxImage",
        "--tag",
        &s.tag(),
        "--fromImage",
        &format!("{}/nothing:here", s.registry.host()),
        "--wdtModel",
        &s.model(),
    ]);
    assert!(
        err.contains("nothing:here") && err.contains("not found"),
        "{err}"
    );
    s.assert_nothing_tagged();
}

#[test]
fn a_campaign_file_gets_every_problem_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cpu.yaml");
    std::fs::write(
        &file,
        r#"
name: cpu-2026-10
registries: [127.0.0.1:5000]
bases:
  - {name: wls14, version: 12.2.1.4.0, jdkVersion: "17", fromImage: "127.0.0.1:5000/os:1", tag: "wls/base:q4"}
domains:
  - {name: payments, domainHomeSourceType: DomainInImage, image: "127.0.0.1:5000/d/payments:1", base: wls15}
  - {name: payments, domainHomeSourceType: ModelInImage, image: "127.0.0.1:5000/d/payments:2", base: wls14}
  - {name: hr, domainHomeSourceType: Imagine, image: "127.0.0.1:5000/d/hr:1", base: wls14}
"#,
    )
    .unwrap();
    let pf = patchfarm_e2e::Patchfarm::new();
    let err = pf.fails(&["campaign", "plan", &file.display().to_string()]);
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(err.contains("unknown base \"wls15\""), "{err}");
    assert!(err.contains("duplicate domain name \"payments\""), "{err}");
    assert!(err.contains("domainHomeSourceType \"Imagine\""), "{err}");
    // Submitting is refused the same way, before anything reaches a farm.
    let err = pf.fails(&["campaign", "submit", &file.display().to_string()]);
    assert!(err.contains("3 problem(s)"), "{err}");
    let fine = std::fs::read_to_string(&file)
        .unwrap()
        .replace("wls15", "wls14")
        .replace(
            "name: payments, domainHomeSourceType: ModelInImage",
            "name: orders, domainHomeSourceType: ModelInImage",
        )
        .replace(
            "Imagine, image: \"127.0.0.1:5000/d/hr",
            "PersistentVolume, image: \"127.0.0.1:5000/d/hr",
        );
    std::fs::write(&file, fine).unwrap();
    let plan: serde_json::Value =
        serde_json::from_str(&pf.ok(&["--json", "campaign", "plan", &file.display().to_string()]))
            .unwrap();
    assert_eq!(plan["jobs"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(plan["domains"][2]["imageFrom"], "base/wls14");
}

/// A WIT flag is never given another meaning: --additionalBuildFiles alone (WIT's build context
/// for --additionalBuildCommands) is refused asking for that file, and a domain passphrase for
/// a model WDT does not run on (--wdtModelOnly) is noted, not silently dropped.
#[test]
fn wit_flags_that_need_build_steps_are_refused_by_name() {
    let s = setup();
    let model = s.model();
    let args = [
        "create",
        "--tag",
        "127.0.0.1:1/wit/x:1",
        "--fromImage",
        &s.base,
        "--additionalBuildFiles",
        model.as_str(),
    ];
    let err = s.pf.fails(&args);
    assert!(
        err.contains("--additionalBuildFiles") && err.contains("give that file too"),
        "{err}"
    );
    let args = [
        "create",
        "--tag",
        "127.0.0.1:1/wit/x:1",
        "--fromImage",
        &s.base,
        "--wdtModel",
        model.as_str(),
        "--wdtModelOnly",
        "--wdtEncryptionKey",
        "pass",
        "--dryRun",
    ];
    let out = s.pf.output(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: --wdtEncryptionKey is for WDT building a domain"),
        "{err}"
    );
    s.assert_nothing_tagged();
}
