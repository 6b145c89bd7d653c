//! WIT's `--packageManager APTGET` on `create`: WIT's package list (and the
//! `[package-manager-packages]` section's) installed with WIT's apt-get command line from a local
//! repository the test serves on loopback, as root on the base, before anything else: the
//! image's first new layer, without apt's lists and caches. Offline (no `--buildNetwork`) the
//! install fails with apt's last lines and nothing is pushed; a section with no package manager
//! to install it is refused by file and line.

use patchfarm_e2e::apt::AptRepo;
use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::weblogic;
use patchfarm_e2e::wls::{assert_not_pushed, derive, layer_entries, layer_history, raw, Wls};

/// WIT's default OS packages, and one the build commands file adds.
const PACKAGES: &[&str] = &[
    "gzip",
    "tar",
    "unzip",
    "libaio",
    "libnsl",
    "jq",
    "findutils",
    "diffutils",
    "make",
    "fontconfig",
    "freetype",
    "extra-tool",
];

#[test]
fn aptget_installs_wits_packages_first_from_the_images_repositories() {
    if !steps_available("aptget_installs_wits_packages_first_from_the_images_repositories") {
        return;
    }
    let repo = AptRepo::serve(PACKAGES);
    let registry = patchfarm_e2e::Registry::start();
    let debian = weblogic::debian_base(&registry);
    let base = format!("{}/debian:local-apt", registry.host());
    derive(&debian, &base, |rootfs| repo.use_in(rootfs), &[]);
    let wls = Wls::with(registry, base.clone());
    wls.fake_jdk();
    let commands = wls.dir.path().join("commands.txt");
    std::fs::write(&commands, "[package-manager-packages]\nextra-tool\n").unwrap();
    let commands = commands.display().to_string();

    let tag = wls.tag("packages:1");
    wls.create(
        &tag,
        &[
            "--packageManager",
            "APTGET",
            "--buildNetwork",
            "host",
            "--additionalBuildCommands",
            &commands,
        ],
    );
    let base_layers = raw(&base)["layers"].as_array().unwrap().len();
    let layer = layer_entries(&wls.registry, &tag, base_layers);
    let has = |path: &str| layer.iter().any(|(name, _)| name == path);
    for package in ["jq", "unzip", "libaio", "extra-tool"] {
        assert!(
            has(&format!("usr/share/patchfarm-fake/{package}")),
            "{package} installed in the first new layer"
        );
    }
    assert!(
        !has("usr/share/patchfarm-fake/gzip"),
        "the base's own gzip is newer than the stand-in: kept"
    );
    let status = layer
        .iter()
        .find(|(name, _)| name == "var/lib/dpkg/status")
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .expect("dpkg's status changed");
    assert!(status.contains("Package: jq\n"), "{status}");
    assert!(
        !layer
            .iter()
            .any(|(name, _)| name.starts_with("var/lib/apt/lists/") && name.len() > 18),
        "apt's lists are left out"
    );
    let layer_history = layer_history(&tag);
    let created_by = &layer_history[base_layers];
    assert!(
        created_by.contains("--packageManager APTGET [gzip tar unzip")
            && created_by.ends_with("extra-tool]"),
        "{created_by}"
    );

    // Offline, apt cannot reach the repository: apt's own words, nothing pushed.
    let offline = wls.tag("packages:offline");
    let error = wls.create_fails(&offline, &["--packageManager", "aptget"]);
    assert!(error.contains("--packageManager APTGET"), "{error}");
    assert!(error.contains("last lines"), "{error}");
    assert_not_pushed(&offline);

    // A packages section with nothing to install it is refused by file and line.
    let refused = wls.tag("packages:refused");
    let error = wls.create_fails(&refused, &["--additionalBuildCommands", &commands]);
    assert!(
        error.contains(&format!("{commands}:2")) && error.contains("--packageManager"),
        "{error}"
    );
    assert_not_pushed(&refused);
}
