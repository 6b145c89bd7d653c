//! Signed images, checked without patchfarm's code (skopeo fetches the attachments, openssl
//! verifies the signatures; skopeo's own `sigstoreSigned` policy too where its build has it): what
//! `--sign-key` signed verifies, the same image without its signature or signed by another key
//! does not; `patchfarm verify` agrees; copies are signed where they
//! land; a farm agent signs with a key the coordinators never see.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::sign::{
    attachment, independently_verified, key_pair, sha256_file, signature_layers,
};
use patchfarm_e2e::tools::{contains, files_under};
use patchfarm_e2e::wls::{self, PSU};
use patchfarm_e2e::{run, AuxFixture, Registry};
use std::process::Command;

#[test]
fn what_patchfarm_signed_verifies_and_the_rest_does_not() {
    let fx = AuxFixture::new();
    let host = fx.registry.host();
    let keys = tempfile::tempdir().unwrap();
    let (key_a, pub_a) = key_pair(keys.path(), "farm");
    let (key_b, pub_b) = key_pair(keys.path(), "other");
    let signed = format!("{host}/aux/signed:1");
    let key_flag = key_a.display().to_string();
    let aux = |tag: &str, key: &str| {
        fx.pf.ok(&[
            "--sign-key",
            key,
            "createAuxImage",
            "--tag",
            tag,
            "--fromImage",
            &fx.base,
            "--wdtModel",
            &fx.model(),
        ])
    };
    let out = aux(&signed, &key_flag);
    assert!(out.contains(".sig"), "the push names its signature: {out}");
    let work = tempfile::tempdir().unwrap();
    independently_verified(work.path(), &host, &pub_a, &signed).unwrap();
    let verified = fx.pf.ok(&[
        "verify",
        "--image",
        &signed,
        "--key",
        &pub_a.display().to_string(),
    ]);
    assert!(verified.contains("verified: 1 signature"), "{verified}");

    // The same image elsewhere without its signature, and signed by another key: refused.
    let bare = format!("{host}/aux/bare:1");
    patchfarm_e2e::tools::registry_copy(&signed, &bare);
    let refused = independently_verified(work.path(), &host, &pub_a, &bare).unwrap_err();
    assert!(refused.contains("no signature"), "{refused}");
    let stranger = format!("{host}/aux/stranger:1");
    aux(&stranger, &key_b.display().to_string());
    assert!(independently_verified(work.path(), &host, &pub_a, &stranger).is_err());
    independently_verified(work.path(), &host, &pub_b, &stranger).unwrap();
    let error = fx.pf.fails(&[
        "verify",
        "--image",
        &stranger,
        "--key",
        &pub_a.display().to_string(),
    ]);
    assert!(error.contains("none by this key"), "{error}");
    let error = fx.pf.fails(&[
        "verify",
        "--image",
        &bare,
        "--key",
        &pub_a.display().to_string(),
    ]);
    assert!(error.contains("no signature"), "{error}");

    // Signing again with the same key replaces its signature; another key's stays beside it.
    // The referrers index is rewritten the same way: patchfarm's entries replaced, another
    // tool's entry kept.
    let index_tag = format!(
        "{}:{}",
        signed.rsplit_once(':').unwrap().0,
        wls::raw_digest(&signed).replace("sha256:", "sha256-")
    );
    let mut index = wls::raw(&index_tag);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3, "{index}");
    let foreign = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": wls::raw_digest(&signed),
        "size": 1,
        "artifactType": "application/vnd.example.scan+json",
    });
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(foreign.clone());
    let (repo_host, rest) = index_tag.split_once('/').unwrap();
    let (repo, tag) = rest.rsplit_once(':').unwrap();
    run(Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg("Content-Type: application/vnd.oci.image.index.v1+json")
        .arg("--data-binary")
        .arg(index.to_string())
        .arg(format!("http://{repo_host}/v2/{repo}/manifests/{tag}")));
    aux(&signed, &key_flag);
    let after = wls::raw(&index_tag);
    let entries = after["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{after}");
    assert!(
        entries.contains(&foreign),
        "another tool's referrer stays: {after}"
    );
    let listed_sig: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json")
        .collect();
    assert_eq!(listed_sig.len(), 1, "{after}");
    assert_eq!(
        listed_sig[0]["digest"].as_str().unwrap(),
        wls::raw_digest(&format!("{index_tag}.sig")),
        "the index lists the signature manifest now at the tag"
    );
    assert_eq!(signature_layers(&signed), 1);
    aux(&signed, &key_b.display().to_string());
    assert_eq!(signature_layers(&signed), 2);
    independently_verified(work.path(), &host, &pub_a, &signed).unwrap();

    // A copy to another registry is signed where it lands.
    let mirror = Registry::start();
    let copied = format!("{}/aux/signed:1", mirror.host());
    fx.pf
        .ok(&["--sign-key", &key_flag, "copy", &signed, &copied]);
    independently_verified(work.path(), &mirror.host(), &pub_a, &copied).unwrap();

    // Building on an image requires its signature when asked to.
    let pub_flag = pub_a.display().to_string();
    let error = fx.pf.fails(&[
        "--require-signed-base",
        &pub_flag,
        "createAuxImage",
        "--tag",
        &format!("{host}/aux/on-unsigned:1"),
        "--fromImage",
        &fx.base,
        "--wdtModel",
        &fx.model(),
    ]);
    assert!(error.contains("is not signed by a required key"), "{error}");
    fx.pf.ok(&[
        "--require-signed-base",
        &pub_flag,
        "createAuxImage",
        "--tag",
        &format!("{host}/aux/on-signed:1"),
        "--fromImage",
        &signed,
        "--wdtModel",
        &fx.model(),
    ]);

    // A bad key is refused before anything is pushed.
    std::fs::write(
        keys.path().join("rsa.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = fx.pf.fails(&[
        "--sign-key",
        &keys.path().join("rsa.key").display().to_string(),
        "createAuxImage",
        "--tag",
        &format!("{host}/aux/never:1"),
        "--fromImage",
        &fx.base,
        "--wdtModel",
        &fx.model(),
    ]);
    assert!(
        error.contains("--sign-key") && error.contains("rsa.key"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farm_agent_signs_with_a_key_the_coordinators_never_see() {
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = key_pair(keys.path(), "farm");
    farm.start_agent("agent-1", &[&format!("--sign-key={}", private.display())]);
    let model = farm.dir.path().join("model.yaml");
    std::fs::write(&model, "topology: {}\n").unwrap();
    let tag = format!("{}/aux/farm:1", farm.registry.host());
    farm.ok(&[
        "--wait",
        "createAuxImage",
        "--tag",
        &tag,
        "--fromImage",
        &farm.base,
        "--wdtModel",
        &model.display().to_string(),
        "--wdtVersion",
        "none",
    ]);
    let work = tempfile::tempdir().unwrap();
    independently_verified(work.path(), &farm.registry.host(), &public, &tag).unwrap();

    // A WebLogic image with a patch: its SBOM (valid SPDX, as spdx-tools reads it) lists the
    // patch inspect lists, with its zip's sha256; the provenance, signed over DSSE, names the
    // image by digest and the job's inputs by theirs.
    farm.upload_weblogic();
    let host = farm.registry.host();
    let wls_tag = format!("{host}/wls/signed:1");
    let id = farm.submit(&[
        "create",
        "--tag",
        &wls_tag,
        "--fromImage",
        &farm.base,
        "--jdkVersion",
        "17",
        "--patches",
        &wls::key(PSU),
    ]);
    let job = farm
        .wait_done(&[id], std::time::Duration::from_secs(120))
        .await
        .remove(0);
    assert_eq!(job.error, "", "{job:?}");
    independently_verified(work.path(), &farm.registry.host(), &public, &wls_tag).unwrap();
    let digest = patchfarm_e2e::wls::raw_digest(&wls_tag);
    let sbom = attachment(work.path(), &wls_tag, "sbom");
    assert_eq!(sbom[0].0["mediaType"], "text/spdx+json");
    let sbom_file = work.path().join("sbom.spdx.json");
    std::fs::write(&sbom_file, &sbom[0].1).unwrap();
    patchfarm_e2e::tools::require_tool("pyspdxtools");
    run(Command::new("pyspdxtools").arg("-i").arg(&sbom_file));
    let document: serde_json::Value = serde_json::from_slice(&sbom[0].1).unwrap();
    let inspected: serde_json::Value =
        serde_json::from_str(&farm.ok(&["inspect", "--image", &wls_tag, "--patches"])).unwrap();
    let psu_zip = files_under(farm.dir.path())
        .into_iter()
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("p{PSU}")) && name.ends_with(".zip")
        })
        .expect("the PSU fixture zip");
    for patch in inspected["oraclePatches"].as_array().unwrap() {
        let listed = document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["versionInfo"] == patch["patch"])
            .unwrap_or_else(|| panic!("{patch} not in the SBOM"));
        assert_eq!(
            listed["checksums"][0]["checksumValue"],
            sha256_file(&psu_zip)
        );
    }
    assert!(document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "JDK"));

    referrers_listed(&wls_tag, &digest).await;

    let provenance = attachment(work.path(), &wls_tag, "att");
    let envelope: serde_json::Value = serde_json::from_slice(&provenance[0].1).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let payload_type = envelope["payloadType"].as_str().unwrap();
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    pae.extend_from_slice(&body);
    std::fs::write(work.path().join("pae"), &pae).unwrap();
    std::fs::write(
        work.path().join("pae.sig"),
        b64.decode(envelope["signatures"][0]["sig"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(work.path().join("pae.sig"))
        .arg(work.path().join("pae")));
    let statement: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        format!(
            "sha256:{}",
            statement["subject"][0]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        digest
    );
    let mut named: Vec<String> = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] != "base image")
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    let mut inputs = job.spec.as_ref().unwrap().inputs.clone();
    named.sort();
    inputs.sort();
    assert_eq!(
        named, inputs,
        "the provenance names every input the job read"
    );
    assert_eq!(
        statement["predicate"]["runDetails"]["builder"]["id"],
        "https://patchfarm.dev/builder/agent-1"
    );

    // A campaign that requires signed bases: refused on an unsigned fromImage, naming it; run
    // once the base is signed (the farm's agent signs the copy it makes).
    std::fs::copy(&public, farm.dir.path().join("farm.pub")).unwrap();
    let campaign = |name: &str, from: &str| {
        let file = farm.dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                "name: {name}\nregistries: [\"{host}\"]\nrequireSignedBases: [farm.pub]\nbases:\n  - {{name: wls14, version: 12.2.1.4.0, jdkVersion: \"17\", fromImage: \"{from}\", tag: \"wls/base:{name}\"}}\ndomains:\n  - {{name: reports, namespace: ops, domainHomeSourceType: PersistentVolume, image: \"{host}/wls/signed:1\", base: wls14}}\n"
            ),
        )
        .unwrap();
        file.display().to_string()
    };
    let refused = farm.cli(&[
        "campaign",
        "submit",
        &campaign("unsigned", &farm.base),
        "--wait",
    ]);
    assert!(!refused.status.success());
    let status = farm.ok(&["--json", "campaign", "status", "unsigned"]);
    assert!(
        status.contains("is not signed by a required key"),
        "{status}"
    );
    let signed_base = format!("{host}/os/signed:1");
    farm.ok(&["--wait", "copy", &farm.base, &signed_base]);
    farm.ok(&[
        "campaign",
        "submit",
        &campaign("signed", &signed_base),
        "--wait",
    ]);

    // The report and inspect say where each image's signature, SBOM and provenance are.
    let out = farm.dir.path().join("report-signed");
    farm.ok(&[
        "campaign",
        "report",
        "signed",
        "--out",
        &out.display().to_string(),
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let base_job = &report["jobs"][0];
    for (field, suffix) in [
        ("signature", ".sig"),
        ("sbom", ".sbom"),
        ("provenance", ".att"),
    ] {
        assert!(
            base_job[field].as_str().unwrap().ends_with(suffix),
            "{base_job}"
        );
    }
    let inspected: serde_json::Value =
        serde_json::from_str(&farm.ok(&["inspect", "--image", &wls_tag])).unwrap();
    let attachments = &inspected["attachments"];
    assert!(
        attachments["signature"].as_str().unwrap().ends_with(".sig"),
        "{inspected}"
    );
    assert!(attachments["sbom"].as_str().unwrap().ends_with(".sbom"));
    assert!(attachments["provenance"]
        .as_str()
        .unwrap()
        .ends_with(".att"));
    let referrers_tag = format!(":{}", digest.replace("sha256:", "sha256-"));
    assert!(attachments["referrers"]
        .as_str()
        .unwrap()
        .ends_with(&referrers_tag));
    assert!(
        base_job["referrers"].as_str().unwrap().contains(":sha256-"),
        "{base_job}"
    );
    let plain: serde_json::Value =
        serde_json::from_str(&farm.ok(&["inspect", "--image", &farm.base])).unwrap();
    assert!(plain.get("attachments").is_none(), "{plain}");

    // The key's bytes are in no coordinator data dir, log or job record, nor in the agent's log.
    let pem = std::fs::read_to_string(&private).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    // Past PKCS#8's fixed header for P-256 (the same in every such key): the private scalar.
    let secret = &body[48..88];
    let jobs = farm.ok(&["--json", "jobs", "list"]);
    assert!(!jobs.contains(secret));
    for file in files_under(farm.cluster.dir.path())
        .into_iter()
        .chain(files_under(farm.dir.path()))
    {
        if file.starts_with(keys.path()) {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !contains(&bytes, secret),
            "{} holds the signing key",
            file.display()
        );
    }
}

/// The image's signature, SBOM and provenance are its OCI 1.1 referrers: each attachment
/// manifest names the image as its subject, and a client of the referrers API (oci-client,
/// which falls back to the tag schema on this registry, as the spec says) lists all three by
/// artifact type; skopeo reads the same index from the `sha256-<hex>` tag.
async fn referrers_listed(tag: &str, digest: &str) {
    let repository = tag.rsplit_once(':').unwrap().0;
    let index: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{repository}:{}",
            digest.replace("sha256:", "sha256-")
        ))))
    .unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let mut listed: Vec<String> = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        let manifest: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!(
                "docker://{repository}@{}",
                entry["digest"].as_str().unwrap()
            ))))
        .unwrap();
        assert_eq!(manifest["subject"]["digest"], digest, "{manifest}");
        assert_eq!(manifest["artifactType"], entry["artifactType"]);
        listed.push(entry["artifactType"].as_str().unwrap().to_string());
    }
    listed.sort();
    let expected = [
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dsse.envelope.v1+json",
        "text/spdx+json",
    ];
    assert_eq!(listed, expected, "{index}");

    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let (registry, path) = repository.split_once('/').unwrap();
    let subject = oci_client::Reference::with_digest(registry.into(), path.into(), digest.into());
    let referrers = client.pull_referrers(&subject, None).await.unwrap();
    let mut types: Vec<String> = referrers
        .manifests
        .iter()
        .filter_map(|m| m.artifact_type.clone())
        .collect();
    types.sort();
    assert_eq!(types, expected, "oci-client's view: {referrers:?}");
    let sboms = client
        .pull_referrers(&subject, Some("text/spdx+json"))
        .await
        .unwrap();
    assert_eq!(sboms.manifests.len(), 1, "filtered by artifact type");
}
