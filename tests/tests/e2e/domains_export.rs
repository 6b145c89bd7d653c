//! A campaign fed the cluster's own Domains (`kubectl get domains -A -o yaml`: 8 Domains of all
//! three source types, one with two auxiliary images, one pulling from the mirror, three the
//! campaign cannot handle) on a farm, moving to a new PSU and a new WDT release. The report's
//! images resolve where each domain pulls from; the refreshed auxiliary images hold the same
//! models; the report's JSON patch, applied by an independent library (Python's jsonpatch), gives
//! the `--gitops-out` manifest, validates against the shipped v9 Domain schema, and refuses a
//! Domain whose auxiliary image changed meanwhile.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::wls::{self, raw_digest, unpack, PSU};
use patchfarm_e2e::{write_wdt_zip, Patchfarm, Registry};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The two auxiliary images `catalog` runs with today, built with WDT 4.2.1.
fn aux_images(farm: &Farm) -> (String, String) {
    let host = farm.registry.host();
    let pf = Patchfarm::new();
    let dir = farm.dir.path().join("aux-inputs");
    std::fs::create_dir_all(&dir).unwrap();
    write_wdt_zip(&dir.join("wdt-4.2.1.zip"), "4.2.1");
    pf.add_installer("wdt", "4.2.1", &dir.join("wdt-4.2.1.zip"));
    std::fs::write(dir.join("catalog.yaml"), "topology:\n  Name: catalog\n").unwrap();
    std::fs::write(dir.join("apps.properties"), "Apps=3\n").unwrap();
    let images = (
        format!("{host}/aux/catalog:5"),
        format!("{host}/aux/catalog-apps:1"),
    );
    for (tag, flag, file) in [
        (&images.0, "--wdtModel", "catalog.yaml"),
        (&images.1, "--wdtVariables", "apps.properties"),
    ] {
        pf.ok(&[
            "createAuxImage",
            "--tag",
            tag,
            "--fromImage",
            &farm.base,
            "--wdtVersion",
            "4.2.1",
            flag,
            &dir.join(file).display().to_string(),
        ]);
    }
    images
}

fn export(host: &str, mirror: &str, aux: &(String, String)) -> String {
    format!(
        r#"apiVersion: v1
kind: List
items:
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: payments, namespace: prod, labels: {{tier: web}}}}
  spec: {{domainHomeSourceType: Image, image: "{host}/domains/payments:1", imagePullSecrets: [{{name: eu-pull}}]}}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: billing, namespace: prod}}
  spec: {{image: "{mirror}/mirror/domains/billing:1", imagePullSecrets: [{{name: us-pull}}]}}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: orders, namespace: shop}}
  spec: {{image: "{host}/mii/orders:1", configuration: {{model: {{domainType: WLS}}}}}}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: catalog, namespace: shop}}
  spec:
    domainHomeSourceType: FromModel
    image: "{host}/wls/base:1"
    restartVersion: "2"
    configuration:
      model:
        domainType: WLS
        auxiliaryImages:
        - {{image: "{aux0}", sourceModelHome: /auxiliary/models}}
        - {{image: "{aux1}", imagePullPolicy: IfNotPresent}}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: reports, namespace: ops}}
  spec: {{domainHomeSourceType: PersistentVolume, image: "{host}/wls/base:1"}}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: partner, namespace: ops}}
  spec: {{domainHomeSourceType: Image, image: "quay.partner.example/wls/partner:1"}}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: imageless, namespace: ops}}
  spec: {{domainHomeSourceType: PersistentVolume}}
- apiVersion: weblogic.oracle/v9
  kind: Domain
  metadata: {{name: odd, namespace: shop}}
  spec: {{domainHomeSourceType: Sideways, image: "{host}/domains/odd:1"}}
"#,
        aux0 = aux.0,
        aux1 = aux.1,
    )
}

/// Runs Python's jsonpatch on `domain` with `patch`; Err carries its error.
fn python_apply(dir: &Path, domain: &Value, patch: &Value) -> Result<Value, String> {
    std::fs::write(dir.join("domain.json"), domain.to_string()).unwrap();
    std::fs::write(dir.join("patch.json"), patch.to_string()).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../coordinator/cli/src/campaign/domain-v9.schema.json");
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys, jsonpatch, jsonschema\n\
             domain = json.load(open(sys.argv[1])); patch = json.load(open(sys.argv[2]))\n\
             patched = jsonpatch.apply_patch(domain, patch)\n\
             jsonschema.Draft7Validator(json.load(open(sys.argv[3]))).validate(patched)\n\
             print(json.dumps(patched))",
        )
        .arg(dir.join("domain.json"))
        .arg(dir.join("patch.json"))
        .arg(schema)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn models(reference: &str) -> Vec<(String, Vec<u8>)> {
    let (_work, root) = unpack(reference);
    let dir = root.join("auxiliary/models");
    let mut files: Vec<_> = patchfarm_e2e::tools::files_under(&dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(&dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_from_the_clusters_domains_refreshes_aux_images_and_patches_by_index() {
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    farm.upload_weblogic();
    let wdt = farm.dir.path().join("wdt-4.3.0.zip");
    write_wdt_zip(&wdt, "4.3.0");
    farm.add_installer("wdt", "4.3.0", &wdt);
    farm.start_agent("agent-1", &[]);
    farm.start_agent("agent-2", &[]);
    let mirror = Registry::start();
    let host = farm.registry.host();
    super::campaign::today(&farm);
    // billing pulls from the regional mirror.
    patchfarm_e2e::tools::registry_copy(
        &format!("{host}/domains/billing:1"),
        &format!("{}/mirror/domains/billing:1", mirror.host()),
    );
    let aux = aux_images(&farm);
    let dir = farm.dir.path();
    let exported = export(&host, &mirror.host(), &aux);
    std::fs::write(dir.join("domains.yaml"), &exported).unwrap();
    let file = dir.join("q4.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
name: q4
registries: ["{host}", "{mirror}/mirror"]
wdtVersion: 4.3.0
bases:
  - {{name: wls14, version: 12.2.1.4.0, jdkVersion: "17", fromImage: "{base}",
     patches: ["{psu}"], tag: "wls/base:2026-10"}}
domainsFrom:
  - {{file: domains.yaml, base: wls14}}
"#,
            mirror = mirror.host(),
            base = farm.base,
            psu = wls::key(PSU),
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    farm.ok(&["campaign", "submit", &file, "--wait"]);
    let (out, gitops) = (dir.join("report"), dir.join("gitops"));
    farm.ok(&[
        "campaign",
        "report",
        "q4",
        "--out",
        &out.display().to_string(),
        "--gitops-out",
        &gitops.display().to_string(),
    ]);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["succeeded"], true, "{report:#}");
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["imageless", "odd", "partner"], "{report:#}");
    assert!(report["skipped"][2]["reason"]
        .as_str()
        .unwrap()
        .contains("none of the campaign's registries"));
    let domains = report["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 5);
    let domain = |name: &str| domains.iter().find(|d| d["name"] == name).unwrap();

    // Every new image resolves where its domain pulls from; billing's is the mirror's copy.
    for d in domains {
        let image = d["newImage"].as_str().unwrap();
        assert_eq!(raw_digest(image), image.split_once('@').unwrap().1, "{d}");
    }
    assert!(domain("billing")["newImage"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/mirror/domains/billing@sha256:", mirror.host())));
    assert_eq!(
        domain("billing")["imagePullSecrets"],
        serde_json::json!(["us-pull"])
    );
    assert_eq!(domain("orders")["domainHomeSourceType"], "FromModel");
    assert_eq!(domain("catalog")["restartVersion"], "2");

    // The auxiliary images: rebuilt with WDT 4.3.0, their models byte for byte the same.
    let catalog = domain("catalog");
    let updates = catalog["auxiliaryImageUpdates"].as_array().unwrap();
    assert_eq!(updates.len(), 2);
    for (update, old) in updates.iter().zip([&aux.0, &aux.1]) {
        let new = update["newImage"].as_str().unwrap();
        assert_eq!(update["oldImage"], old.as_str());
        assert_eq!(models(old), models(new), "{new}");
        let (_w, root) = unpack(new);
        assert_eq!(
            std::fs::read_to_string(root.join("auxiliary/weblogic-deploy/VERSION.txt")).unwrap(),
            "WebLogic Deploy Tooling 4.3.0\n"
        );
    }

    // The JSON patch, applied by Python's jsonpatch to the exported Domain, gives the gitops
    // manifest and a valid v9 Domain; applied to a Domain whose aux image changed, it fails.
    let list: Value = serde_norway::from_str(&exported).unwrap();
    let input = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metadata"]["name"] == "catalog")
        .unwrap()
        .clone();
    let patch = &catalog["domainPatch"];
    assert_eq!(patch["type"], "json");
    let work = tempfile::tempdir().unwrap();
    let patched = python_apply(work.path(), &input, &patch["patch"]).unwrap();
    let manifest: Value =
        serde_norway::from_str(&std::fs::read_to_string(gitops.join("shop/catalog.yaml")).unwrap())
            .unwrap();
    assert_eq!(patched, manifest);
    let mut expected = input.clone();
    expected["spec"]["image"] = catalog["newImage"].clone();
    for (i, update) in updates.iter().enumerate() {
        expected["spec"]["configuration"]["model"]["auxiliaryImages"][i]["image"] =
            update["newImage"].clone();
    }
    assert_eq!(manifest, expected, "only the image fields changed");
    let mut moved = input.clone();
    moved["spec"]["configuration"]["model"]["auxiliaryImages"][1]["image"] =
        format!("{host}/aux/catalog-apps:2").into();
    let refused = python_apply(work.path(), &moved, &patch["patch"]).unwrap_err();
    assert!(refused.contains("JsonPatchTestFailed"), "{refused}");

    // Every other handled domain's gitops manifest is its input with only spec.image changed.
    for name in ["payments", "billing", "orders", "reports"] {
        let d = domain(name);
        let mut expected = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == name)
            .unwrap()
            .clone();
        expected["spec"]["image"] = d["newImage"].clone();
        let path = gitops.join(format!("{}/{name}.yaml", d["namespace"].as_str().unwrap()));
        let written: Value =
            serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written, expected, "{name}");
        assert_eq!(d["domainPatch"]["type"], "merge", "{name}");
    }
    let kustomization = std::fs::read_to_string(gitops.join("kustomization.yaml")).unwrap();
    assert!(kustomization.contains("kind: Domain") && kustomization.contains("name: catalog"));
}
