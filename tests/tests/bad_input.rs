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
        "busybox",
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
