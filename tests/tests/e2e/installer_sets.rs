//! `--type` takes WIT's installer sets: the Oracle Home is each installer of the set, installed
//! in WIT's order over the ones before (SOA: fmw, then soa), each read from its own cache key.

use patchfarm_e2e::run;
use patchfarm_e2e::weblogic::{self, WLS_VERSION};
use patchfarm_e2e::wls::*;
use std::process::Command;

#[test]
fn an_installer_set_installs_each_installer_in_wits_order() {
    let wls = Wls::new();
    wls.fake_jdk();
    let d = wls.dir.path();
    let fmw = d.join("fmw.zip");
    weblogic::oracle_home_zip(&fmw, WLS_VERSION);
    wls.add_installer("fmw", WLS_VERSION, &fmw);
    let soa = d.join("soa.zip");
    weblogic::product_home_zip(
        &soa,
        WLS_VERSION,
        "SOA Suite",
        &[
            ("soa/bin/", b""),
            ("soa/bin/soa-infra.sh", b"#!/bin/sh\n"),
            ("wlserver/server/lib/readme.txt", b"readme as SOA left it\n"),
        ],
    );
    wls.add_installer("soa", WLS_VERSION, &soa);

    // WIT's spelling and any case; keys, products and files show both installers, SOA's last.
    let tag = wls.tag("soa:1");
    let out = wls.create(&tag, &["--type", "Soa", "--dryRun"]);
    let home = &out["images"][0]["oracleHome"];
    assert_eq!(
        home["keys"],
        serde_json::json!([format!("fmw_{WLS_VERSION}"), format!("soa_{WLS_VERSION}")]),
        "{out}"
    );
    let products = home["products"].to_string();
    assert!(
        products.contains("WLS") && products.contains("SOA"),
        "{out}"
    );
    wls.create(&tag, &["--type", "SOA"]);
    let (_work, root) = unpack(&tag);
    let oracle = root.join("u01/oracle");
    assert!(oracle.join("soa/bin/soa-infra.sh").is_file());
    assert!(oracle.join(weblogic::JAR).is_file());
    assert_eq!(
        std::fs::read_to_string(oracle.join("wlserver/server/lib/readme.txt")).unwrap(),
        "readme as SOA left it\n"
    );
    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))))
    .unwrap();
    assert_eq!(
        config["config"]["Labels"]["org.patchfarm.product.type"],
        "soa"
    );

    // A set whose installer is not cached names the key; an unknown type names WIT's types.
    let err = wls.create_fails(&wls.tag("osb:1"), &["--type", "SOA_OSB"]);
    assert!(err.contains(&format!("osb_{WLS_VERSION}")), "{err}");
    let err = wls.create_fails(&wls.tag("x:1"), &["--type", "weblogic"]);
    assert!(
        err.contains("weblogic") && err.contains("SOA_OSB_B2B"),
        "{err}"
    );
}
