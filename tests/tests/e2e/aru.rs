//! Oracle's patch service (ARU) through a stand-in speaking its XML: `--user` with a password
//! resolves `--recommendedPatches` (PSU overlays included, ADR patches left out as in WIT),
//! `--latestPSU` and `--patches`, downloads and verifies each zip against the published SHA-256,
//! and the password is found nowhere: not in output, logs, image layers or config, the cache, or
//! a coordinator's data dir. A wrong password, a lying digest, an unknown bug and an
//! unreachable service each fail clearly with nothing pushed.

use patchfarm_e2e::aru::AruServer;
use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::weblogic::{self, Act, WLS_VERSION};
use patchfarm_e2e::wls::{assert_not_pushed, unpack, Wls};
use std::io::Read;
use std::path::Path;
use std::process::Command;

const USER: &str = "ops@example.com";
const PASSWORD: &str = "Quarterly-Secret-8d1f0c";
const PSU_VERSION: &str = "12.2.1.4.260120";
const WLS_RELEASE: &str = "600000000100001";
const PSU_RELEASE: &str = "600000000100002";
const WLS_PRODUCT: &str = "15991";
/// Patches only the service has (not in the fixture cache).
const PSU_BUG: &str = "38000001";
const OVERLAY_BUG: &str = "38000002";
const ADR_BUG: &str = "38000003";
const ONE_OFF_BUG: &str = "38000004";
const LYING_BUG: &str = "38000005";

fn readme(content: &'static [u8]) -> Act<'static> {
    Act::Copy {
        dir: "wlserver/server/lib",
        name: "readme.txt",
        content,
    }
}

/// The service's quarter: a PSU on WLS 12.2.1.4.0, an overlay on the PSU's release, an ADR
/// patch, a one-off with two versions, and a patch whose published digest lies.
fn quarter(aru: &AruServer, dir: &Path) {
    aru.releases(&[
        (
            WLS_RELEASE,
            WLS_VERSION,
            "Oracle WebLogic Server 12.2.1.4.0",
        ),
        (
            PSU_RELEASE,
            PSU_VERSION,
            &format!("Oracle WebLogic Server {PSU_VERSION}"),
        ),
        (
            "600000000100003",
            "12.2.1.4.0",
            "Oracle Coherence 12.2.1.4.0",
        ),
    ]);
    let zip = |bug: &'static str, content: &'static [u8]| {
        weblogic::patch_zip(dir, bug, WLS_VERSION, &[], &[readme(content)])
    };
    let psu = aru.patch(
        PSU_BUG,
        WLS_VERSION,
        WLS_RELEASE,
        WLS_PRODUCT,
        &format!("WLS PATCH SET UPDATE {PSU_VERSION}"),
        &format!("Oracle WebLogic Server {PSU_VERSION}"),
        &zip(PSU_BUG, b"PSU from ARU\n"),
    );
    let adr = aru.patch(
        ADR_BUG,
        WLS_VERSION,
        WLS_RELEASE,
        WLS_PRODUCT,
        "ADR FOR WEBLOGIC SERVER 12.2.1.4.0",
        "",
        &zip(ADR_BUG, b"ADR\n"),
    );
    let overlay = aru.patch(
        OVERLAY_BUG,
        PSU_VERSION,
        PSU_RELEASE,
        WLS_PRODUCT,
        "OVERLAY ON THE PSU",
        "",
        &weblogic::patch_zip(
            dir,
            OVERLAY_BUG,
            WLS_VERSION,
            &[],
            &[Act::Copy {
                dir: "wlserver/server/lib",
                name: "overlay.txt",
                content: b"overlay from ARU\n",
            }],
        ),
    );
    aru.recommended(WLS_PRODUCT, WLS_RELEASE, &[&psu, &adr]);
    aru.recommended(WLS_PRODUCT, PSU_RELEASE, &[&overlay]);
    let one_off = |version: &str, release: &str| {
        aru.patch(
            ONE_OFF_BUG,
            version,
            release,
            WLS_PRODUCT,
            "ONE-OFF FIX",
            "",
            &weblogic::patch_zip(
                dir,
                ONE_OFF_BUG,
                WLS_VERSION,
                &[],
                &[Act::Copy {
                    dir: "wlserver/server/lib",
                    name: "oneoff.txt",
                    content: b"one-off\n",
                }],
            ),
        )
    };
    aru.bug(
        ONE_OFF_BUG,
        &[
            &one_off(WLS_VERSION, WLS_RELEASE),
            &one_off(PSU_VERSION, PSU_RELEASE),
        ],
    );
    let mut lying = aru.patch(
        LYING_BUG,
        WLS_VERSION,
        WLS_RELEASE,
        WLS_PRODUCT,
        "A FILE THAT WAS TAMPERED WITH",
        "",
        &zip(LYING_BUG, b"tampered\n"),
    );
    lying.sha256 = "AB".repeat(32);
    aru.bug(LYING_BUG, &[&lying]);
}

fn online(wls: &mut Wls, aru: &AruServer) {
    for (k, v) in [
        ("PATCHFARM_ARU_URL", aru.url()),
        ("ARU_PASSWORD", PASSWORD.to_string()),
        ("RUST_LOG", "debug".to_string()),
    ] {
        wls.pf.extra_env.push((k.into(), v));
    }
}

fn patches_of(wls: &Wls, image: &str) -> String {
    wls.pf
        .ok(&["inspect", "--image", image, "--patches", "--format", "JSON"])
}

/// Every blob of `image` (layers decompressed, the config, the manifest) searched for `needle`.
fn image_holds(image: &str, needle: &[u8]) -> bool {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("l");
    patchfarm_e2e::run(
        Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:x", layout.display())),
    );
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .any(|blob| {
            let bytes = std::fs::read(blob.unwrap().path()).unwrap();
            let mut plain = Vec::new();
            let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
                flate2::read::MultiGzDecoder::new(bytes.as_slice())
                    .read_to_end(&mut plain)
                    .unwrap();
                plain
            } else {
                bytes
            };
            contains(&bytes, needle)
        })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Any file under `dir` holding `needle`.
fn dir_holds(dir: &Path, needle: &[u8]) -> Option<std::path::PathBuf> {
    walk(dir)
        .into_iter()
        .find(|file| std::fs::read(file).is_ok_and(|b| contains(&b, needle)))
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                files.extend(walk(&path));
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn patches_come_from_oracles_patch_service_verified_and_the_password_goes_nowhere() {
    let mut wls = Wls::new();
    wls.fake_jdk();
    let aru = AruServer::start(USER, PASSWORD);
    quarter(&aru, wls.dir.path());
    online(&mut wls, &aru);
    let account = ["--user", USER, "--passwordEnv", "ARU_PASSWORD"];

    // --recommendedPatches: the PSU, its overlay (from the PSU's release), not the ADR patch.
    let recommended = wls.tag("aru:rec");
    let mut args = vec!["--recommendedPatches", "--latestPSU", "-vv"];
    args.extend(account);
    let out = wls
        .pf
        .command(&create_args(&wls, &recommended, &args))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ADR"),
        "the ADR patch is named as left out: {stderr}"
    );
    let patches = patches_of(&wls, &recommended);
    assert!(
        patches.contains(PSU_BUG) && patches.contains(OVERLAY_BUG),
        "{patches}"
    );
    assert!(!patches.contains(ADR_BUG), "{patches}");
    // WIT's conflict check saw the candidates, each with its release, before any download.
    let checked = aru.conflict_request();
    assert!(
        checked.contains(&format!(">{PSU_BUG}</patch_group>"))
            && checked.contains(&format!(">{OVERLAY_BUG}</patch_group>")),
        "{checked}"
    );
    let (_work, rootfs) = unpack(&recommended);
    assert_eq!(
        std::fs::read(rootfs.join("u01/oracle/wlserver/server/lib/overlay.txt")).unwrap(),
        b"overlay from ARU\n"
    );
    let listed = wls.pf.ok(&["cache", "listItems"]);
    assert!(
        listed.contains(&format!("{OVERLAY_BUG}_{PSU_VERSION}")),
        "{listed}"
    );

    // --latestPSU on update: the image's version is read from the image; only the PSU comes.
    let plain = wls.tag("aru:plain");
    wls.create(&plain, &[]);
    let password_file = wls.dir.path().join("password.txt");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let psu_only = wls.tag("aru:psu");
    wls.pf.ok(&[
        "update",
        "--fromImage",
        &plain,
        "--tag",
        &psu_only,
        "--latestPSU",
        "--user",
        USER,
        "--passwordFile",
        &password_file.display().to_string(),
    ]);
    let patches = patches_of(&wls, &psu_only);
    assert!(
        patches.contains(PSU_BUG) && !patches.contains(OVERLAY_BUG),
        "{patches}"
    );

    // Updated again with one more patch: the conflict check weighs it against the patch the
    // image already has, named by its unique patch id (WIT's target_patch_list).
    let psu_and_one_off = wls.tag("aru:psu-oneoff");
    wls.pf.ok(&[
        "update",
        "--fromImage",
        &psu_only,
        "--tag",
        &psu_and_one_off,
        "--patches",
        ONE_OFF_BUG,
        "--user",
        USER,
        "--passwordFile",
        &password_file.display().to_string(),
    ]);
    let checked = aru.conflict_request();
    assert!(
        checked.contains(&format!("<installed_patch upi=\"{PSU_BUG}9\"/>")),
        "{checked}"
    );

    // --patches with a bare bug number takes the version of the PSU in the same list.
    let one_off = wls.tag("aru:oneoff");
    let mut args = vec!["--latestPSU", "--patches", ONE_OFF_BUG];
    args.extend(account);
    wls.pf.ok(&create_args(&wls, &one_off, &args));
    let listed = wls.pf.ok(&["cache", "listItems"]);
    assert!(
        listed.contains(&format!("{ONE_OFF_BUG}_{PSU_VERSION}")),
        "{listed}"
    );
    assert!(patches_of(&wls, &one_off).contains(ONE_OFF_BUG));

    // The password: not in what was printed, the images, the cache.
    let needle = PASSWORD.as_bytes();
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "printed"
    );
    for image in [&recommended, &psu_only, &one_off] {
        assert!(!image_holds(image, needle), "{image} holds the password");
    }
    assert_eq!(
        dir_holds(&wls.pf.cache_dir(), needle),
        None,
        "the cache holds it"
    );
    assert!(aru.requests().contains("credentials=yes"));
}

fn create_args<'a>(wls: &'a Wls, tag: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "create",
        "--tag",
        tag,
        "--fromImage",
        &wls.base,
        "--jdkVersion",
        "17",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn wrong_password_lying_digest_unknown_bug_and_no_service_fail_clearly_pushing_nothing() {
    let mut wls = Wls::new();
    wls.fake_jdk();
    let aru = AruServer::start(USER, PASSWORD);
    quarter(&aru, wls.dir.path());
    online(&mut wls, &aru);
    let tag = wls.tag("aru:never");
    let attempt = |password: &str, patches: &str, url: Option<String>| {
        let mut cmd = wls.pf.command(&create_args(
            &wls,
            &tag,
            &["--user", USER, "--password", password, "--patches", patches],
        ));
        if let Some(url) = url {
            cmd.env("PATCHFARM_ARU_URL", url);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{patches} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stderr.contains(password),
            "the password is printed: {stderr}"
        );
        stderr
    };
    let err = attempt("not-the-password", ONE_OFF_BUG, None);
    assert!(err.contains("invalid credentials"), "{err}");
    // Patches the conflict check says conflict: refused, naming the set, nothing downloaded.
    aru.conflicts(&[&[ONE_OFF_BUG, LYING_BUG]]);
    let err = attempt(PASSWORD, &format!("{ONE_OFF_BUG},{LYING_BUG}"), None);
    assert!(
        err.contains(&format!(
            "conflicting patches: [{ONE_OFF_BUG}, {LYING_BUG}] conflict"
        )),
        "{err}"
    );
    assert!(
        !aru.requests().contains("/download/"),
        "nothing downloaded: {}",
        aru.requests()
    );
    std::fs::remove_file(aru.dir.path().join("conflicts.xml")).unwrap();
    let err = attempt(PASSWORD, LYING_BUG, None);
    assert!(
        err.contains("does not match the SHA-256") && err.contains(LYING_BUG),
        "{err}"
    );
    let listed = wls.pf.ok(&["cache", "listItems"]);
    assert!(
        !listed.contains(LYING_BUG),
        "a refused zip is not cached: {listed}"
    );
    let err = attempt(PASSWORD, "38000999", None);
    assert!(err.contains("no patch 38000999"), "{err}");
    let closed = patchfarm_e2e::tools::free_port();
    let err = attempt(
        PASSWORD,
        ONE_OFF_BUG,
        Some(format!("http://127.0.0.1:{closed}/Orion/Services")),
    );
    assert!(err.contains("unreachable"), "{err}");
    assert_not_pushed(&tag);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_farm_job_gets_the_resolved_patches_and_never_the_password() {
    let aru = AruServer::start(USER, PASSWORD);
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    farm.upload_weblogic();
    farm.start_agent("agent-1", &[]);
    quarter(&aru, farm.dir.path());
    let tag = format!("{}/wls/aru:farm", farm.registry.host());
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(patchfarm_e2e::patchfarm_bin())
        .arg("--farm")
        .arg(farm.cluster.addresses().join(","))
        .arg("--tls-dir")
        .arg(farm.cluster.certs_dir())
        .args([
            "create",
            "--tag",
            &tag,
            "--fromImage",
            &farm.base,
            "--jdkVersion",
            "17",
        ])
        .args([
            "--recommendedPatches",
            "--user",
            USER,
            "--passwordEnv",
            "ARU_PASSWORD",
        ])
        .env("PATCHFARM_ARU_URL", aru.url())
        .env("ARU_PASSWORD", PASSWORD)
        .env("PATCHFARM_CACHE", home.path().join("cache"))
        .env("HOME", home.path())
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "printed");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let jobs = farm
        .wait_done(
            std::slice::from_ref(&id),
            std::time::Duration::from_secs(120),
        )
        .await;
    assert_eq!(
        jobs[0].state(),
        patchfarm_proto::v1::JobState::Succeeded,
        "{}",
        jobs[0].error
    );
    let shown = farm.ok(&["--json", "jobs", "show", &id]);
    assert!(
        shown.contains(PSU_BUG) && shown.contains(OVERLAY_BUG),
        "{shown}"
    );
    assert!(!shown.contains(PASSWORD));
    for node in farm.cluster.nodes.values() {
        assert_eq!(
            dir_holds(&node.data_dir, PASSWORD.as_bytes()),
            None,
            "a coordinator's data holds it"
        );
    }
    assert_eq!(
        dir_holds(farm.dir.path(), PASSWORD.as_bytes()),
        None,
        "agents, store"
    );
    assert!(!farm.agent_log("agent-1").contains(PASSWORD));
    assert!(!image_holds(&tag, PASSWORD.as_bytes()));
}

/// With an account, WIT takes OPatch itself from Oracle's patch service: the newest version it
/// has unless one is named, cached like the patches, and the one the build upgrades OPatch to.
#[test]
fn opatch_comes_from_oracles_patch_service_newest_unless_named() {
    let mut wls = Wls::new();
    wls.fake_jdk();
    let aru = AruServer::start(USER, PASSWORD);
    quarter(&aru, wls.dir.path());
    online(&mut wls, &aru);
    let opatch = |version: &str| {
        let zip = patchfarm_e2e::opatch::opatch_patch_zip(wls.dir.path(), version);
        aru.patch(
            "28186730",
            version,
            "600000000100010",
            "31944",
            &format!("OPATCH {version} FOR FMW/WLS 12.2.1.4.0"),
            "",
            &zip,
        )
    };
    let (older, newer) = (opatch("13.9.4.2.16"), opatch("13.9.4.2.17"));
    aru.bug("28186730", &[&newer, &older]);
    let tag = wls.tag("aru:opatch");
    let plan = |opatch_bug: &str| {
        let args = create_args(
            &wls,
            &tag,
            &[
                "--dryRun",
                "--user",
                USER,
                "--passwordEnv",
                "ARU_PASSWORD",
                "--patches",
                ONE_OFF_BUG,
                "--opatchBugNumber",
                opatch_bug,
            ],
        );
        wls.pf.ok(&args)
    };
    let newest = plan("28186730");
    assert!(
        newest.contains("\"opatchUpgrade\": \"28186730_13.9.4.2.17\""),
        "{newest}"
    );
    let named = plan("28186730_13.9.4.2.16");
    assert!(
        named.contains("\"opatchUpgrade\": \"28186730_13.9.4.2.16\""),
        "{named}"
    );
    let listed = wls.pf.ok(&["cache", "listItems"]);
    for key in ["28186730_13.9.4.2.17", "28186730_13.9.4.2.16"] {
        assert!(listed.contains(key), "{key} cached: {listed}");
    }
    assert!(!aru.requests().contains(PASSWORD));
}
