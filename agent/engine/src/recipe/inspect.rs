//! `inspect`: what is inside any image — OS, JDK, Oracle Home, WDT, patches — read from its
//! config and layers without running a container. Field names follow WIT's `inspect` output.

use super::build::{fetch_base, tree_of};
use super::owner::name_of;
use super::{Engine, RecipeError};
use crate::image::{ImageRef, Platform};
use crate::rpmdb;
use crate::tree::{EntryKind, TreeEntry, TreeQuery};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// As WIT prints it (`uname -m`): x86_64, aarch64.
    pub architecture: String,
    /// The package owning /etc/os-release, as `rpm -qf` names it (WIT's probe runs exactly
    /// that); read from the image's rpm database, so only on rpm-based images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_package: Option<String>,
}

/// The OCI architecture as `uname -m` names it, which is what WIT's inspect prints.
fn uname_machine(oci: &str) -> String {
    match oci {
        "amd64" => "x86_64".into(),
        "arm64" => "aarch64".into(),
        other => other.into(),
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PatchInfo {
    pub patch: String,
    pub description: String,
    /// OPatch's unique patch id (what Oracle's conflict check names installed patches by);
    /// not one of WIT's inspect fields.
    #[serde(skip_serializing)]
    pub unique_patch_id: Option<String>,
}

/// WIT's inspect fields; what cannot be determined is left out.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub os: OsInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_manager: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub java_home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub java_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_home_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_home_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_installed_products: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opatch_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_home: Option<String>,
    /// As WIT: true when DOMAIN_HOME is set but missing or empty in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wdt_model_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wdt_home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wdt_model_home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wdt_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_patches: Option<Vec<PatchInfo>>,
    /// Where the image's signature, SBOM and provenance are, if it has any (not a WIT key;
    /// looked up by the `inspect` verb, not by every reader of an image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<crate::sign::attach::Attachments>,
}

/// Package managers in WIT's order and spelling, with the binary that betrays each.
const PACKAGE_MANAGERS: &[(&str, &str)] = &[
    ("MICRODNF", "usr/bin/microdnf"),
    ("DNF", "usr/bin/dnf"),
    ("YUM", "usr/bin/yum"),
    ("APTGET", "usr/bin/apt-get"),
    ("APK", "sbin/apk"),
    ("ZYPPER", "usr/bin/zypper"),
];

fn join(dir: &str, rel: &str) -> String {
    format!("{}/{rel}", dir.trim_end_matches('/'))
}

use crate::installer::{key_values, parse_registry};

/// Bug number and description from a one-off patch's `inventory.xml`.
fn parse_oneoff(xml: &str) -> Option<PatchInfo> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut patch, mut description, mut current) = (None, String::new(), Vec::new());
    let mut unique_patch_id = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if e.local_name().as_ref() == b"patch_id" {
                    if let Some(n) = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"number")
                    {
                        patch = n.unescape_value().ok().map(|v| v.into_owned());
                    }
                }
                current = e.local_name().as_ref().to_vec();
            }
            Ok(Event::Empty(e)) if e.local_name().as_ref() == b"patch_id" => {
                if let Some(n) = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"number")
                {
                    patch = n.unescape_value().ok().map(|v| v.into_owned());
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map(|s| s.trim().to_string()).unwrap_or_default();
                match current.as_slice() {
                    b"patch_id" if patch.is_none() && !text.is_empty() => patch = Some(text),
                    b"patch_description" | b"description" if description.is_empty() => {
                        description = text
                    }
                    b"unique_patch_id" if !text.is_empty() => unique_patch_id = Some(text),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => current.clear(),
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    patch.map(|patch| PatchInfo {
        patch,
        description,
        unique_patch_id,
    })
}

/// The image paths an rpm database may be read from: each database file and its write-ahead log.
pub(super) fn rpm_database_paths() -> impl Iterator<Item = String> {
    rpmdb::DATABASE_FILES
        .into_iter()
        .flat_map(|(path, _)| [path.to_string(), format!("{path}-wal")])
}

/// The first rpm database among `files` (read at `rpm_database_paths`), if there is one and it
/// reads; one that cannot be read is left out with the reason in the log, as WIT's probe prints
/// nothing when rpm fails.
pub(super) async fn rpm_database(files: &BTreeMap<String, TreeEntry>) -> Option<rpmdb::RpmDb> {
    let (path, format) = rpmdb::DATABASE_FILES
        .into_iter()
        .find(|(path, _)| files.contains_key(*path))?;
    let content = |p: &str| files.get(p).and_then(|e| e.content.clone());
    let database = content(path)?;
    let wal = content(&format!("{path}-wal"));
    let read = crate::spawn_blocking(move || rpmdb::RpmDb::read(format, &database, wal.as_deref()))
        .await
        .expect("rpm database task");
    read.map_err(|e| tracing::warn!(database = %path, error = %e, "the image's rpm database could not be read; what it would say is left out"))
        .ok()
}

/// The owner of /etc/os-release in the image's rpm database (or, as `rpm -qf` falls back, of
/// the file that link resolves to).
async fn release_package(files: &BTreeMap<String, TreeEntry>) -> Option<String> {
    let db = rpm_database(files).await?;
    let link_target = files
        .get("etc/os-release")
        .map(|entry| format!("/{}", entry.path))
        .filter(|resolved| resolved != "/etc/os-release");
    std::iter::once("/etc/os-release".to_string())
        .chain(link_target)
        .find_map(|file| db.owner_of(&file).map(rpmdb::Header::nvra))
}

/// Inspects `image` for `platform`; with `patches`, lists the Oracle Home's one-off patches.
pub async fn inspect(
    engine: &Engine,
    image: &ImageRef,
    platform: &Platform,
    patches: bool,
) -> Result<Inspection, RecipeError> {
    let resolved = fetch_base(engine, image, platform).await?;
    let config = &resolved.config;
    let env = |k: &str| config.env_var(k).filter(|v| !v.is_empty());
    let mut out = Inspection {
        java_home: env("JAVA_HOME"),
        oracle_home: env("ORACLE_HOME"),
        domain_home: env("DOMAIN_HOME"),
        wdt_home: env("WDT_HOME"),
        wdt_model_home: env("WDT_MODEL_HOME"),
        os: OsInfo {
            architecture: uname_machine(config.architecture()),
            ..Default::default()
        },
        ..Default::default()
    };
    let tree = tree_of(engine, &resolved);

    let mut reads = vec![
        "etc/os-release".to_string(),
        "etc/passwd".into(),
        "etc/group".into(),
    ];
    if let Some(j) = &out.java_home {
        reads.push(join(j, "release"));
    }
    if let Some(o) = &out.oracle_home {
        reads.push(join(o, "inventory/registry.xml"));
        reads.push(join(o, "OPatch/version.txt"));
    }
    if let Some(w) = &out.wdt_home {
        reads.push(join(w, "weblogic-deploy/VERSION.txt"));
    }
    reads.extend(rpm_database_paths());
    let read_refs: Vec<&str> = reads.iter().map(String::as_str).collect();
    let files = tree.read_files(&read_refs).await?;
    let text = |p: &str| {
        files
            .get(crate::layer::reader::normalize(p).as_str())
            .and_then(|e| e.content.as_ref())
            .map(|c| String::from_utf8_lossy(c).into_owned())
    };

    if let Some(os) = text("etc/os-release") {
        let kv = key_values(&os);
        out.os.id = kv.get("ID").cloned();
        out.os.name = kv.get("NAME").cloned();
        out.os.version = kv.get("VERSION_ID").cloned();
    }
    out.os.release_package = release_package(&files).await;
    if let Some(release) = out
        .java_home
        .as_deref()
        .and_then(|j| text(&join(j, "release")))
    {
        out.java_version = key_values(&release).get("JAVA_VERSION").cloned();
    }
    if let Some(xml) = out
        .oracle_home
        .as_deref()
        .and_then(|o| text(&join(o, "inventory/registry.xml")))
    {
        let (version, products) = parse_registry(&xml);
        out.wls_version = version;
        if !products.is_empty() {
            out.oracle_installed_products = Some(products.join(","));
        }
    }
    // OPatch's version.txt: `OPATCH_VERSION:13.9.4.2.17`.
    out.opatch_version = out
        .oracle_home
        .as_deref()
        .and_then(|o| text(&join(o, "OPatch/version.txt")))
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("OPATCH_VERSION:"))
                .map(|v| v.trim().to_string())
        });
    if let Some(v) = out
        .wdt_home
        .as_deref()
        .and_then(|w| text(&join(w, "weblogic-deploy/VERSION.txt")))
    {
        out.wdt_version = v.split_whitespace().last().map(str::to_owned);
    }

    let mut query = TreeQuery::default();
    for (_, binary) in PACKAGE_MANAGERS {
        query = query.stat(binary).stat(&binary.replacen("usr/", "", 1));
    }
    if let Some(d) = &out.domain_home {
        query = query.list(d);
    }
    if let Some(o) = &out.oracle_home {
        query = query.stat(o);
        if patches {
            query = query.list(&join(o, "inventory/oneoffs"));
        }
    }
    let answer = tree.lookup(&query).await?;
    out.package_manager = Some(
        PACKAGE_MANAGERS
            .iter()
            .find(|(_, b)| {
                answer.get(b).is_some() || answer.get(&b.replacen("usr/", "", 1)).is_some()
            })
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| "NONE".into()),
    );
    if let Some(d) = &out.domain_home {
        let listed = answer.listed.get(&crate::layer::reader::normalize(d));
        // WIT prints only `true`; `false` says as plainly that the image holds its domain.
        out.wdt_model_only = Some(listed.is_none_or(|entries| entries.is_empty()));
    }
    if let Some(home) = out.oracle_home.as_deref().and_then(|o| answer.get(o)) {
        out.oracle_home_user = Some(name_of(text("etc/passwd").as_deref(), home.uid));
        out.oracle_home_group = Some(name_of(text("etc/group").as_deref(), home.gid));
    }
    if patches {
        if let Some(o) = &out.oracle_home {
            let oneoffs = answer
                .listed
                .get(&crate::layer::reader::normalize(&join(
                    o,
                    "inventory/oneoffs",
                )))
                .cloned()
                .unwrap_or_default();
            let inventories: Vec<String> = oneoffs
                .iter()
                .filter(|e| {
                    e.kind == EntryKind::File && e.path.ends_with("/etc/config/inventory.xml")
                })
                .map(|e| e.path.clone())
                .collect();
            let refs: Vec<&str> = inventories.iter().map(String::as_str).collect();
            let contents = tree.read_files(&refs).await?;
            let mut list: Vec<PatchInfo> = contents
                .values()
                .filter_map(|e| e.content.as_ref())
                .filter_map(|c| parse_oneoff(&String::from_utf8_lossy(c)))
                .collect();
            list.sort_by(|a, b| a.patch.cmp(&b.patch));
            out.oracle_patches = Some(list);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oracle_inventory_files() {
        let registry = r#"<?xml version="1.0"?><registry><distributions>
            <distribution status="installed" name="WebLogic Server" version="12.2.1.4.0"><features/></distribution>
            <distribution status="installed" name="Coherence" version="12.2.1.4.0"/></distributions></registry>"#;
        let (version, products) = parse_registry(registry);
        assert_eq!(version.as_deref(), Some("12.2.1.4.0"));
        assert_eq!(products, vec!["WLS", "COH"]);
        let oneoff = r#"<oneoff_inventory><patch_id number="37000001"/><unique_patch_id>1</unique_patch_id><patch_description>WLS PATCH SET UPDATE 12.2.1.4.241001</patch_description></oneoff_inventory>"#;
        assert_eq!(
            parse_oneoff(oneoff).unwrap(),
            PatchInfo {
                patch: "37000001".into(),
                description: "WLS PATCH SET UPDATE 12.2.1.4.241001".into(),
                unique_patch_id: Some("1".into()),
            }
        );
        assert_eq!(
            key_values("JAVA_VERSION=\"1.8.0_301\"\n")["JAVA_VERSION"],
            "1.8.0_301"
        );
    }
}
