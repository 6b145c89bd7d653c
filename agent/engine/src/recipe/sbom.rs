//! An SPDX 2.3 document for a pushed image, read from the image itself as `inspect` reads it: the
//! OS packages (dpkg's status file, or the rpm database), the JDK, the Oracle Home's products,
//! every one-off patch (with the sha256 of the zip it came from, when the build used one), WDT,
//! and the base image by digest.

use super::inspect::{self, Inspection};
use super::{build, Engine, RecipeError};
use crate::digest::Digest;
use crate::transport::ResolvedImage;
use serde_json::{json, Value};

/// An input the build used: its cache key and sha256.
#[derive(Clone, Debug)]
pub struct Material {
    pub key: String,
    pub sha256: String,
}

/// One OS package: name, version, architecture, and the purl type (`deb` or `rpm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub kind: &'static str,
}

/// Installed packages from dpkg's `status` file.
pub fn dpkg_packages(status: &str) -> Vec<OsPackage> {
    status
        .split("\n\n")
        .filter_map(|paragraph| {
            let field = |name: &str| {
                paragraph.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix(':'))
                        .map(|v| v.trim().to_string())
                })
            };
            field("Status")
                .filter(|s| s.ends_with(" installed"))
                .and_then(|_| {
                    Some(OsPackage {
                        name: field("Package")?,
                        version: field("Version")?,
                        arch: field("Architecture").unwrap_or_default(),
                        kind: "deb",
                    })
                })
        })
        .collect()
}

/// The OS packages `image` holds, from whichever package database it has.
async fn os_packages(
    engine: &Engine,
    image: &ResolvedImage,
) -> Result<Vec<OsPackage>, RecipeError> {
    let tree = build::tree_of(engine, image);
    let paths: Vec<String> = std::iter::once("var/lib/dpkg/status".to_string())
        .chain(inspect::rpm_database_paths())
        .collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let files = tree.read_files(&refs).await?;
    if let Some(status) = files
        .get("var/lib/dpkg/status")
        .and_then(|e| e.content.as_ref())
    {
        return Ok(dpkg_packages(&String::from_utf8_lossy(status)));
    }
    Ok(inspect::rpm_database(&files)
        .await
        .map(|db| {
            db.packages()
                .iter()
                .map(|p| OsPackage {
                    name: p.name.clone(),
                    version: format!("{}-{}", p.version, p.release),
                    arch: p.arch.clone().unwrap_or_default(),
                    kind: "rpm",
                })
                .collect()
        })
        .unwrap_or_default())
}

/// SPDX identifiers allow letters, digits, `.` and `-`.
fn spdx_id(kind: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{kind}-{clean}")
}

fn package(id: String, name: &str, version: &str, comment: Option<String>) -> Value {
    let mut p = json!({
        "SPDXID": id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
    });
    if let Some(comment) = comment {
        p["comment"] = json!(comment);
    }
    p
}

/// The document for `image`, pushed as `repository@digest`, built from `materials`.
pub async fn document(
    engine: &Engine,
    image: &ResolvedImage,
    repository: &str,
    digest: &Digest,
    materials: &[Material],
    created: &str,
) -> Result<Value, RecipeError> {
    let platform = crate::image::Platform {
        os: image.config.os().to_string(),
        architecture: image.config.architecture().to_string(),
        variant: None,
    };
    let found: Inspection = inspect::inspect(engine, &image.reference, &platform, true).await?;
    let subject = "SPDXRef-image".to_string();
    let mut image_package = package(subject.clone(), repository, &digest.to_string(), None);
    image_package["primaryPackagePurpose"] = json!("CONTAINER");
    image_package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": digest.hex()}]);
    let mut packages = vec![image_package];
    let mut contains = Vec::new();
    for p in os_packages(engine, image).await? {
        let id = spdx_id(p.kind, &format!("{}-{}", p.name, p.arch));
        let mut entry = package(id.clone(), &p.name, &p.version, None);
        entry["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:{}/{}@{}?arch={}", p.kind, p.name, p.version, p.arch),
        }]);
        packages.push(entry);
        contains.push(id);
    }
    if let (Some(home), Some(version)) = (&found.java_home, &found.java_version) {
        let id = "SPDXRef-jdk".to_string();
        packages.push(package(
            id.clone(),
            "JDK",
            version,
            Some(format!("JAVA_HOME {home}")),
        ));
        contains.push(id);
    }
    if let Some(version) = &found.wls_version {
        let id = "SPDXRef-oracle-home".to_string();
        let products = found.oracle_installed_products.clone().unwrap_or_default();
        let mut home = package(
            id.clone(),
            "Oracle WebLogic Server",
            version,
            Some(format!(
                "ORACLE_HOME {}; products {products}",
                found.oracle_home.clone().unwrap_or_default()
            )),
        );
        home["supplier"] = json!("Organization: Oracle");
        packages.push(home);
        contains.push(id);
    }
    for patch in found.oracle_patches.iter().flatten() {
        let id = spdx_id("patch", &patch.patch);
        let mut entry = package(
            id.clone(),
            &format!("Oracle patch {}", patch.patch),
            &patch.patch,
            Some(patch.description.clone()),
        );
        entry["supplier"] = json!("Organization: Oracle");
        let prefix = format!("{}_", patch.patch);
        if let Some(m) = materials.iter().find(|m| m.key.starts_with(&prefix)) {
            entry["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": m.sha256}]);
            entry["comment"] = json!(format!("{} (zip {})", patch.description, m.key));
        }
        packages.push(entry);
        contains.push(id);
    }
    if let Some(version) = &found.wdt_version {
        let id = "SPDXRef-wdt".to_string();
        packages.push(package(
            id.clone(),
            "WebLogic Deploy Tooling",
            version,
            None,
        ));
        contains.push(id);
    }
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": subject}),
    ];
    relationships.extend(contains.iter().map(|id| json!({"spdxElementId": subject, "relationshipType": "CONTAINS", "relatedSpdxElement": id})));
    let annotations = &image.manifest.annotations;
    if let (Some(name), Some(base_digest)) = (
        annotations.get(build::ANNOTATION_BASE_NAME),
        annotations.get(build::ANNOTATION_BASE_DIGEST),
    ) {
        let id = "SPDXRef-base".to_string();
        let mut base = package(id.clone(), name, base_digest, Some("the base image".into()));
        if let Some(hex) = base_digest.strip_prefix("sha256:") {
            base["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
        }
        packages.push(base);
        relationships.push(json!({"spdxElementId": subject, "relationshipType": "DESCENDANT_OF", "relatedSpdxElement": id}));
    }
    Ok(json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{repository}@{digest}"),
        "documentNamespace": format!("https://patchfarm.dev/spdx/{}/{}", repository, digest.hex()),
        "creationInfo": {"created": created, "creators": [format!("Tool: patchfarm-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": packages,
        "relationships": relationships,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_dpkg_packages_are_listed_and_removed_ones_are_not() {
        let status = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n";
        let found = dpkg_packages(status);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "bash");
        assert_eq!(found[1].version, "2.36-9");
        assert_eq!(spdx_id("deb", "libc6 amd64"), "SPDXRef-deb-libc6-amd64");
    }
}
