//! `--target OpenShift`, as WIT: group root unless `--chown` says otherwise, and the group gets
//! the owner's permissions where the server writes (the domains' parent, WDT); `Default` and no
//! flag leave modes alone.

use patchfarm_e2e::wls::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn mode_and_gid(path: &std::path::Path) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.permissions().mode() & 0o7777, meta.gid())
}

#[test]
fn openshift_gives_group_root_the_owners_permissions_where_the_server_writes() {
    let wls = Wls::new();
    wls.fake_jdk();
    let model = wls.dir.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let model = model.display().to_string();
    let files = [
        "--wdtModel",
        &model,
        "--wdtModelOnly",
        "--wdtVersion",
        "none",
    ];

    let plain = wls.tag("plain:1");
    let mut args = files.to_vec();
    args.extend(["--target", "Default"]);
    wls.create(&plain, &args);
    let (_w1, root) = unpack(&plain);
    let (domains, oracle_gid) = mode_and_gid(&root.join("u01/domains"));
    assert_eq!(domains, 0o750);
    assert_ne!(oracle_gid, 0, "oracle:oracle by default");
    assert_eq!(
        mode_and_gid(&root.join("u01/wdt/models/model.yaml")).0,
        0o640
    );

    let openshift = wls.tag("openshift:1");
    let mut args = files.to_vec();
    args.extend(["--target", "openshift"]);
    wls.create(&openshift, &args);
    let (_w2, root) = unpack(&openshift);
    assert_eq!(mode_and_gid(&root.join("u01/domains")), (0o770, 0));
    assert_eq!(
        mode_and_gid(&root.join("u01/wdt/models/model.yaml")),
        (0o660, 0)
    );
    // Outside the places WIT opens up, modes stay as installed.
    let readme = root.join("u01/oracle/wlserver/server/lib/readme.txt");
    assert_eq!(mode_and_gid(&readme), (0o644, 0));

    // --chown still wins over the target's default group.
    let owned = wls.tag("owned:1");
    let mut args = files.to_vec();
    args.extend(["--target", "OpenShift", "--chown", "oracle:oracle"]);
    wls.create(&owned, &args);
    let (_w3, root) = unpack(&owned);
    let (mode, gid) = mode_and_gid(&root.join("u01/domains"));
    assert_eq!(mode, 0o770);
    assert_ne!(gid, 0);

    let err = wls.create_fails(&wls.tag("k8s:1"), &["--target", "Kubernetes"]);
    assert!(
        err.contains("Kubernetes") && err.contains("OpenShift"),
        "{err}"
    );
}
