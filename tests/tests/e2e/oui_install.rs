//! Oracle's installers as Oracle ships them: `cache addInstaller` takes the installer zip and
//! `create --type wls` runs it silently with WIT's command line, through the executor, on a
//! Debian base with the real JDK — the Oracle Home is what the installer wrote, owned by
//! `oracle`, recording `/u01/jdk` as its JDK; `docker run` runs its tool and the JDK; the same
//! inputs give the same digest; a broken installer fails with its last lines, pushing nothing.

use patchfarm_e2e::oui::{installer_zip, zip_holding};
use patchfarm_e2e::tools::{docker_available, run, steps_available};
use patchfarm_e2e::weblogic;
use patchfarm_e2e::wls::{assert_not_pushed, layer_history, raw_digest, unpack, Wls};
use patchfarm_e2e::Registry;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

const VERSION: &str = "14.1.1.0.0";

#[test]
fn an_oracle_installer_zip_is_installed_silently_as_wit_installs_it() {
    if !steps_available("an_oracle_installer_zip_is_installed_silently") {
        return;
    }
    let registry = Registry::start();
    let base = weblogic::debian_base(&registry);
    let wls = Wls::with(registry, base);
    let (jdk_tgz, java_version, _) = weblogic::real_jdk_tgz();
    wls.add_installer("jdk", "17", jdk_tgz);
    let zip = installer_zip(wls.dir.path(), VERSION);
    wls.add_installer("wls", VERSION, &zip);

    let (first, second) = (wls.tag("oui:1"), wls.tag("oui:2"));
    let args = ["--type", "WLS", "--version", VERSION, "-v"];
    let out = wls
        .pf
        .command(
            &[
                &[
                    "create",
                    "--tag",
                    &first,
                    "--fromImage",
                    &wls.base,
                    "--jdkVersion",
                    "17",
                ][..],
                &args[..],
            ]
            .concat(),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("completed successfully"),
        "the installer's output is streamed: {stderr}"
    );
    wls.create(&second, &args[..4]);
    assert_eq!(
        raw_digest(&first),
        raw_digest(&second),
        "same inputs, same digest"
    );

    let (_work, rootfs) = unpack(&first);
    let home = rootfs.join("u01/oracle");
    let registry_xml = std::fs::read_to_string(home.join("inventory/registry.xml")).unwrap();
    assert!(
        registry_xml.contains(&format!("version=\"{VERSION}\"")),
        "{registry_xml}"
    );
    let owner = std::fs::metadata(home.join("inventory/registry.xml"))
        .unwrap()
        .uid();
    assert_eq!(owner, std::fs::metadata(&home).unwrap().uid());
    assert_ne!(owner, 0, "owned by oracle");
    assert_eq!(
        std::fs::read_to_string(home.join("oracle_common/common/bin/commEnv.sh")).unwrap(),
        "JAVA_HOME=\"/u01/jdk\"\nexport JAVA_HOME\n",
        "the installer ran with the image's JDK"
    );
    assert!(home
        .join("oraInventory/ContentsXML/inventory.xml")
        .is_file());
    assert!(
        !rootfs.join("tmp/imagetool").exists(),
        "installers never land in a layer"
    );

    // WIT runs [before-fmw-install] in the installers' stage, just before them: the installer
    // reads the inventory pointer the section rewrote, and the section leaves no layer of its own.
    let commands = wls.dir.path().join("before-fmw.txt");
    std::fs::write(
        &commands,
        "[before-fmw-install]\nRUN echo inventory_loc=/u01/oracle/inv-by-section > /u01/oracle/oraInst.loc \\\n    && echo inst_group=oracle >> /u01/oracle/oraInst.loc\n",
    )
    .unwrap();
    let sectioned = wls.tag("oui:before-fmw");
    wls.create(
        &sectioned,
        &[
            "--version",
            VERSION,
            "--additionalBuildCommands",
            &commands.display().to_string(),
        ],
    );
    let (_sectioned_work, sectioned_root) = unpack(&sectioned);
    assert!(
        sectioned_root
            .join("u01/oracle/inv-by-section/ContentsXML/inventory.xml")
            .is_file(),
        "the installer saw the section's pointer"
    );
    assert!(
        !layer_history(&sectioned)
            .iter()
            .any(|h| h.contains("[before-fmw-install]")),
        "{:#?}",
        layer_history(&sectioned)
    );

    // WIT's installer options: a response file of the user's, an inventory pointer of theirs,
    // placed where they say; the inventory it names is kept in the image.
    let response = wls.dir.path().join("custom.rsp");
    std::fs::write(
        &response,
        "[ENGINE]\nResponse File Version=1.0.0.0.0\n[GENERIC]\nINSTALL_TYPE=Fusion Middleware Infrastructure\n",
    )
    .unwrap();
    let pointer = wls.dir.path().join("oraInst.loc");
    std::fs::write(
        &pointer,
        "inventory_loc=/u01/inventory\ninst_group=oracle\n",
    )
    .unwrap();
    let custom = wls.tag("oui:custom");
    wls.create(
        &custom,
        &[
            "--version",
            VERSION,
            "--installerResponseFile",
            &response.display().to_string(),
            "--inventoryPointerFile",
            &pointer.display().to_string(),
            "--inventoryPointerInstallLoc",
            "/u01/pointer",
        ],
    );
    let (_custom_work, custom_root) = unpack(&custom);
    assert!(
        std::fs::read_to_string(custom_root.join("u01/oracle/wlserver/server/bin/hello.sh"))
            .unwrap()
            .contains("Fusion Middleware Infrastructure"),
        "the response file given was used"
    );
    assert_eq!(
        std::fs::read_to_string(custom_root.join("u01/pointer/oraInst.loc")).unwrap(),
        "inventory_loc=/u01/inventory\ninst_group=oracle\n"
    );
    assert!(custom_root
        .join("u01/inventory/ContentsXML/inventory.xml")
        .is_file());

    if docker_available("an_oracle_installer_zip_is_installed_silently") {
        run(Command::new("docker").args(["pull", "-q", &first]));
        let out = Command::new("docker")
            .args([
                "run",
                "--rm",
                &first,
                "sh",
                "-c",
                "$ORACLE_HOME/wlserver/server/bin/hello.sh && java -version 2>&1 && id -un",
            ])
            .output()
            .unwrap();
        let _ = Command::new("docker").args(["rmi", "-f", &first]).output();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("hello from WebLogic Server {VERSION}"))
                && text.contains(java_version.as_str())
                && text.trim_end().ends_with("oracle"),
            "{text}"
        );
    }
}

#[test]
fn a_broken_installer_fails_with_its_last_lines_and_pushes_nothing() {
    if !steps_available("a_broken_installer_fails_with_its_last_lines") {
        return;
    }
    let registry = Registry::start();
    let base = weblogic::debian_base(&registry);
    let wls = Wls::with(registry, base);
    let (jdk_tgz, _, _) = weblogic::real_jdk_tgz();
    wls.add_installer("jdk", "17", jdk_tgz);
    let zip = wls
        .dir
        .path()
        .join("fmw_14.1.1.0.0_wls_lite_Disk1_1of1.zip");
    zip_holding(
        &zip,
        "fmw_14.1.1.0.0_wls_lite_generic.jar",
        b"not a jar at all",
    );
    wls.add_installer("wls", VERSION, &zip);
    let tag = wls.tag("oui:broken");
    let err = wls.create_fails(&tag, &["--version", VERSION]);
    assert!(
        err.contains("installer wls_14.1.1.0.0") && err.contains("jarfile"),
        "{err}"
    );
    assert_not_pushed(&tag);
    // The installer options configure Oracle's installer: with an installed Oracle Home archive
    // (no installer runs) they are refused, not ignored.
    let err = wls.create_fails(&tag, &["--installerResponseFile", "/nonexistent.rsp"]);
    assert!(err.contains("installed Oracle Home archive"), "{err}");
    let builds = wls.pf.cache_dir().join("build");
    let left: Vec<_> = std::fs::read_dir(&builds)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no root filesystem left behind: {left:?}");
}
