//! WIT's cache verbs against the content-addressed store, including two processes at once.

use patchfarm_e2e::Patchfarm;
use std::process::Stdio;

#[test]
fn add_list_delete_with_wit_keys() {
    let pf = Patchfarm::new();
    let dir = tempfile::tempdir().unwrap();
    let jdk = dir.path().join("jdk-8u401-linux-x64.tar.gz");
    std::fs::write(&jdk, b"not really a jdk").unwrap();
    let patch = dir.path().join("p37000001_122140_Generic.zip");
    std::fs::write(&patch, b"not really a patch").unwrap();
    let jdk_s = jdk.display().to_string();
    pf.ok(&[
        "cache",
        "addInstaller",
        "--type",
        "jdk",
        "--version",
        "8u401",
        "--path",
        &jdk_s,
    ]);
    pf.ok(&[
        "cache",
        "add-installer",
        "--type",
        "jdk",
        "--version",
        "8u401",
        "--architecture",
        "aarch64",
        "--path",
        &jdk_s,
    ]);
    pf.ok(&[
        "cache",
        "addPatch",
        "--patchId",
        "37000001_12.2.1.4.0",
        "--path",
        &patch.display().to_string(),
    ]);

    let listing = pf.ok(&["cache", "listItems"]);
    assert!(
        listing.contains("jdk_8u401=jdk-8u401-linux-x64.tar.gz"),
        "{listing}"
    );
    assert!(listing.contains("jdk_8u401_arm64="), "{listing}");
    assert!(listing.contains("37000001_12.2.1.4.0="), "{listing}");
    let only_jdk: serde_json::Value =
        serde_json::from_str(&pf.ok(&["cache", "listItems", "--key", "jdk.*", "--json"])).unwrap();
    assert_eq!(only_jdk.as_array().unwrap().len(), 2);
    // The same through a picocli argument file, as WIT users keep them.
    let args = dir.path().join("list_args");
    std::fs::write(
        &args,
        "# listed by an argument file\ncache listItems\n--key 'jdk.*' --json\n",
    )
    .unwrap();
    let from_file: serde_json::Value =
        serde_json::from_str(&pf.ok(&[&format!("@{}", args.display())])).unwrap();
    assert_eq!(from_file, only_jdk);
    // As WIT (Java's `matches`): the pattern matches whole keys.
    let none: serde_json::Value =
        serde_json::from_str(&pf.ok(&["cache", "listItems", "--key", "jdk", "--json"])).unwrap();
    assert_eq!(none.as_array().unwrap().len(), 0, "{none}");

    let err = pf.fails(&[
        "cache",
        "addInstaller",
        "--type",
        "jdk",
        "--version",
        "8u401",
        "--path",
        &jdk_s,
    ]);
    assert!(
        err.contains("jdk_8u401") && err.contains("--force"),
        "{err}"
    );
    pf.ok(&[
        "cache",
        "addInstaller",
        "--type",
        "jdk",
        "--version",
        "8u401",
        "--path",
        &jdk_s,
        "--force",
    ]);

    let err = pf.fails(&[
        "cache",
        "addPatch",
        "--patchId",
        "not-a-patch",
        "--path",
        &jdk_s,
    ]);
    assert!(err.contains("not-a-patch"), "{err}");
    let err = pf.fails(&[
        "cache",
        "addInstaller",
        "--type",
        "wls",
        "--version",
        "12.2.1.4.0",
        "--path",
        "/no/such/file.zip",
    ]);
    assert!(err.contains("/no/such/file.zip"), "{err}");
    let err = pf.fails(&["cache", "listItems", "--key", "("]);
    assert!(err.contains("--key"), "{err}");

    // Keys are case-insensitive, as WIT's.
    let out = pf.ok(&["cache", "deleteEntry", "--key", "JDK_8U401"]);
    assert!(out.contains("deleted jdk_8u401"), "{out}");
    // A key that is not there is said and is no failure (WIT scripts run with `set -e`).
    let out = pf.ok(&["cache", "deleteEntry", "--key", "jdk_8u401"]);
    assert!(
        out.contains("nothing to delete for key: jdk_8u401"),
        "{out}"
    );
    // The arm64 entry shares the content and keeps it.
    assert!(pf.ok(&["cache", "listItems"]).contains("jdk_8u401_arm64="));
    // WIT's key that empties the cache.
    let out = pf.ok(&["cache", "deleteEntry", "--key", "DELETE_ALL_FOR_SURE"]);
    assert!(out.contains("deleted all 2 entries"), "{out}");
    let left: serde_json::Value =
        serde_json::from_str(&pf.ok(&["cache", "listItems", "--json"])).unwrap();
    assert_eq!(left.as_array().unwrap().len(), 0, "{left}");
    assert_eq!(
        std::fs::read_dir(pf.cache_dir().join("blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "content goes with the entries"
    );
}

#[test]
fn two_processes_adding_at_once_leave_a_consistent_cache() {
    let pf = Patchfarm::new();
    let dir = tempfile::tempdir().unwrap();
    let big_a = dir.path().join("a.zip");
    let big_b = dir.path().join("b.zip");
    std::fs::write(&big_a, vec![b'a'; 8 << 20]).unwrap();
    std::fs::write(&big_b, vec![b'b'; 8 << 20]).unwrap();
    for round in 0..3 {
        let version = format!("1.{round}");
        let children: Vec<_> = [&big_a, &big_b]
            .iter()
            .map(|p| {
                pf.command(&[
                    "cache",
                    "addInstaller",
                    "--type",
                    "wls",
                    "--version",
                    &version,
                    "--path",
                    &p.display().to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        let results: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners = results.iter().filter(|r| r.status.success()).count();
        assert_eq!(winners, 1, "exactly one add of the same key wins");
        let loser = results.iter().find(|r| !r.status.success()).unwrap();
        assert!(String::from_utf8_lossy(&loser.stderr).contains("already exists"));
        // The entry is complete and verifies: using it re-hashes the content.
        let entries: serde_json::Value = serde_json::from_str(&pf.ok(&[
            "cache",
            "listItems",
            "--key",
            &format!("^wls_{version}$"),
            "--json",
        ]))
        .unwrap();
        let digest = entries[0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        let stored = std::fs::read(pf.cache_dir().join("blobs/sha256").join(&digest)).unwrap();
        assert_eq!(stored.len(), 8 << 20);
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&stored)), digest);
    }
    let leftovers: Vec<_> = std::fs::read_dir(pf.cache_dir().join("blobs/sha256"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

/// A WIT user's cache works as it is: `create` takes what `.metadata` names (copied into the
/// verified store on first use), and `cache import` copies the rest.
#[test]
fn an_existing_wit_cache_is_used_unchanged() {
    use patchfarm_e2e::weblogic::{fake_jdk_tgz, oracle_home_zip, WLS_VERSION};
    let registry = patchfarm_e2e::Registry::start();
    let base = patchfarm_e2e::busybox_base(&registry);
    let wit = tempfile::tempdir().unwrap();
    let (jdk, home) = (wit.path().join("jdk.tar.gz"), wit.path().join("wls.zip"));
    fake_jdk_tgz(&jdk, "17.0.99");
    oracle_home_zip(&home, WLS_VERSION);
    let wdt = wit.path().join("weblogic-deploy.zip");
    std::fs::write(&wdt, b"not used by create").unwrap();
    // As WIT writes it: a properties file, keys as typed (WIT lowercases them), escapes allowed.
    std::fs::write(
        wit.path().join(".metadata"),
        format!(
            "#Wed Nov 25 10:00:00 UTC 2026\ncache.dir={}\nJDK_17={}\nwls_12.2.1.4.0={}\nwdt_latest={}\nnot-a-key=/x\n",
            wit.path().display().to_string().replace(':', "\\:"),
            jdk.display(),
            home.display(),
            wdt.display()
        ),
    )
    .unwrap();
    let mut pf = Patchfarm::new();
    pf.extra_env
        .push(("WLSIMG_CACHEDIR".into(), wit.path().display().to_string()));
    let tag = format!("{}/wit/cache:1", registry.host());
    pf.ok(&[
        "create",
        "--tag",
        &tag,
        "--fromImage",
        &base,
        "--jdkVersion",
        "17",
    ]);
    let listed = pf.ok(&["cache", "listItems"]);
    assert!(
        listed.contains("jdk_17=jdk.tar.gz") && listed.contains("wls_12.2.1.4.0=wls.zip"),
        "{listed}"
    );
    assert!(
        !listed.contains("wdt_latest"),
        "only what create used: {listed}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&pf.ok(&["cache", "import", "--json"])).unwrap();
    assert_eq!(report["jdk_17"], "already here", "{report}");
    assert!(
        report["wdt_latest"]
            .as_str()
            .unwrap()
            .starts_with("imported"),
        "{report}"
    );
    assert!(
        report["not-a-key"].as_str().unwrap().starts_with("skipped"),
        "{report}"
    );
    // WIT's cache itself is untouched.
    assert!(jdk.is_file() && home.is_file() && wdt.is_file());
}

/// `patchfarm … | head -1`: a reader that goes away ends patchfarm quietly, never with a panic.
#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let pf = Patchfarm::new();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..200 {
        let file = dir.path().join(format!("i{i}.zip"));
        std::fs::write(&file, format!("item {i}")).unwrap();
        let version = format!("1.{i}");
        pf.ok(&[
            "cache",
            "addInstaller",
            "--type",
            "wls",
            "--version",
            &version,
            "--path",
            &file.display().to_string(),
        ]);
    }
    let mut child = pf
        .command(&["cache", "listItems"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "nothing to say about a closed pipe: {stderr}"
    );
}
