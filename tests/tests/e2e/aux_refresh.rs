//! refreshAuxImage: an auxiliary image moved to a new WDT release, its models byte for byte the
//! same — on patchfarm's own auxiliary images and on WIT-shaped ones (WDT and models in layers of
//! their own), checked with skopeo and umoci.

use patchfarm_e2e::wls::{layout, unpack};
use patchfarm_e2e::{run, umoci_image, write_wdt_zip, AuxFixture, Patchfarm, Registry};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

/// A WDT zip for `version` that also holds `lib/only-in-VERSION.jar`, so what is left of an old
/// release shows.
fn wdt_zip(path: &Path, version: &str) {
    write_wdt_zip(path, version);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut zip = zip::ZipWriter::new_append(file).unwrap();
    zip.start_file(
        format!("weblogic-deploy/lib/only-in-{version}.jar"),
        zip::write::SimpleFileOptions::default().unix_permissions(0o644),
    )
    .unwrap();
    zip.write_all(version.as_bytes()).unwrap();
    zip.finish().unwrap();
}

/// Every file under `dir` (relative path, bytes, mode, uid, gid).
fn files(dir: &Path) -> Vec<(String, Vec<u8>, u32, u32, u32)> {
    let mut out: Vec<_> = patchfarm_e2e::tools::files_under(dir)
        .into_iter()
        .map(|p| {
            let meta = std::fs::symlink_metadata(&p).unwrap();
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
            )
        })
        .collect();
    out.sort();
    out
}

fn manifest(reference: &str) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))))
    .unwrap()
}

fn layer_digests(reference: &str) -> Vec<String> {
    manifest(reference)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Checks `new` is `old` with WDT `version` in place of the old release: models, variables and
/// account files byte for byte (modes and owners too), nothing of the old WDT left.
fn assert_refreshed(old: &str, new: &str, version: &str, old_version: &str) {
    let (_a, before) = unpack(old);
    let (_b, after) = unpack(new);
    let models = |root: &Path| files(&root.join("auxiliary/models"));
    assert!(!models(&before).is_empty());
    assert_eq!(models(&before), models(&after), "models byte for byte");
    assert_eq!(
        std::fs::read(before.join("etc/passwd")).unwrap(),
        std::fs::read(after.join("etc/passwd")).unwrap()
    );
    let deploy = after.join("auxiliary/weblogic-deploy");
    assert_eq!(
        std::fs::read_to_string(deploy.join("VERSION.txt")).unwrap(),
        format!("WebLogic Deploy Tooling {version}\n")
    );
    assert!(deploy.join(format!("lib/only-in-{version}.jar")).is_file());
    assert!(
        !deploy
            .join(format!("lib/only-in-{old_version}.jar"))
            .exists(),
        "the old release is gone"
    );
    let owner = std::fs::metadata(before.join("auxiliary/weblogic-deploy/VERSION.txt")).unwrap();
    let now = std::fs::metadata(deploy.join("VERSION.txt")).unwrap();
    assert_eq!((owner.uid(), owner.gid()), (now.uid(), now.gid()));
}

#[test]
fn a_patchfarm_aux_image_moves_to_a_new_wdt_with_its_models_unchanged() {
    let fx = AuxFixture::new();
    let dir = tempfile::tempdir().unwrap();
    for version in ["4.2.1", "4.3.0"] {
        let zip = dir.path().join(format!("wdt-{version}.zip"));
        wdt_zip(&zip, version);
        fx.pf.add_installer("wdt", version, &zip);
    }
    std::fs::write(dir.path().join("vars.properties"), "Count=2\n").unwrap();
    let old = format!("{}/aux/app:1", fx.registry.host());
    fx.pf.ok(&[
        "createAuxImage",
        "--tag",
        &old,
        "--fromImage",
        &fx.base,
        "--wdtVersion",
        "4.2.1",
        "--wdtModel",
        &fx.model(),
        "--wdtVariables",
        &dir.path().join("vars.properties").display().to_string(),
    ]);
    let new = format!("{}/aux/app:2", fx.registry.host());
    let out = fx.pf.output(&[
        "refreshAuxImage",
        "--fromImage",
        &old,
        "--tag",
        &new,
        "--wdtVersion",
        "4.3.0",
    ]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("WDT 4.2.1 -> 4.3.0"), "{said}");
    assert_refreshed(&old, &new, "4.3.0", "4.2.1");

    // The base's layers are the very same blobs; the auxiliary content is one new layer.
    let (before, after) = (layer_digests(&old), layer_digests(&new));
    assert_eq!(before.len(), after.len());
    assert_eq!(before[..before.len() - 1], after[..after.len() - 1]);
    assert_ne!(before.last(), after.last());
    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{new}"))))
    .unwrap();
    assert_eq!(
        config["config"]["Labels"]["org.patchfarm.wdt.version"],
        "4.3.0"
    );
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        config["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["empty_layer"] != true)
            .count(),
        "one history entry per layer"
    );

    // Refreshing again gives the same image: nothing in it depends on when it was made.
    let again = format!("{}/aux/app:3", fx.registry.host());
    fx.pf.ok(&[
        "refreshAuxImage",
        "--fromImage",
        &old,
        "--tag",
        &again,
        "--wdtVersion",
        "4.3.0",
    ]);
    assert_eq!(layer_digests(&new), layer_digests(&again));
}

/// WIT's auxiliary image: busybox, then WDT, then the models, each a layer of its own.
fn wit_shaped_aux_image(registry: &Registry, wdt: &Path) -> String {
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(
        work.path(),
        "aux",
        |root| {
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(
                root.join("etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\noracle:x:1000:1000::/home/oracle:/bin/sh\n",
            )
            .unwrap();
        },
        &["--config.env", "AUXILIARY_IMAGE_PATH=/auxiliary"],
    );
    let image = format!("{}:aux", layout.display());
    let add_layer = |populate: &dyn Fn(&Path)| {
        let bundle = work.path().join("more");
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        populate(&bundle.join("rootfs"));
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
        std::fs::remove_dir_all(&bundle).unwrap();
    };
    add_layer(&|root| {
        zip::ZipArchive::new(std::fs::File::open(wdt).unwrap())
            .unwrap()
            .extract(root.join("auxiliary"))
            .unwrap();
        run(Command::new("chown")
            .args(["-R", "1000:0"])
            .arg(root.join("auxiliary")));
    });
    add_layer(&|root| {
        let models = root.join("auxiliary/models");
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join("model.yaml"), "topology:\n  Name: wit\n").unwrap();
        std::fs::write(models.join("app.zip"), [0x50, 0x4b, 5, 6, 0, 0, 0, 0]).unwrap();
        std::os::unix::fs::chown(models.join("model.yaml"), Some(1000), Some(0)).unwrap();
    });
    let reference = format!("{}/wit/aux:1", registry.host());
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{reference}")));
    reference
}

#[test]
fn a_wit_shaped_aux_image_is_refreshed_and_what_is_not_one_is_refused() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let pf = Patchfarm::new();
    for version in ["4.2.1", "4.3.0"] {
        wdt_zip(&dir.path().join(format!("{version}.zip")), version);
    }
    pf.add_installer("wdt", "4.3.0", &dir.path().join("4.3.0.zip"));
    let old = wit_shaped_aux_image(&registry, &dir.path().join("4.2.1.zip"));
    assert_eq!(layer_digests(&old).len(), 3);
    let new = format!("{}/wit/aux:2", registry.host());
    pf.ok(&[
        "refreshAuxImage",
        "--fromImage",
        &old,
        "--tag",
        &new,
        "--wdtVersion",
        "4.3.0",
    ]);
    assert_refreshed(&old, &new, "4.3.0", "4.2.1");
    let (before, after) = (layer_digests(&old), layer_digests(&new));
    assert_eq!(
        after.len(),
        2,
        "busybox kept, WDT and models in one new layer"
    );
    assert_eq!(before[0], after[0]);
    let (_l, oci) = layout(&new);
    assert!(oci.join("index.json").is_file());

    // Not an auxiliary image; a WDT release not cached.
    let plain = format!("{}/plain:1", registry.host());
    pf.ok(&["copy", &patchfarm_e2e::busybox_base(&registry), &plain]);
    let error = pf.fails(&[
        "refreshAuxImage",
        "--fromImage",
        &plain,
        "--tag",
        &new,
        "--wdtVersion",
        "4.3.0",
    ]);
    assert!(error.contains("not an auxiliary image"), "{error}");
    let error = pf.fails(&[
        "refreshAuxImage",
        "--fromImage",
        &old,
        "--tag",
        &new,
        "--wdtVersion",
        "9.9.9",
    ]);
    assert!(error.contains("wdt_9.9.9"), "{error}");
    assert_eq!(
        layer_digests(&new),
        after,
        "a refused refresh pushed nothing"
    );
}
