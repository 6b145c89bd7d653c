//! WIT's rules for turning `--latestPSU`, `--recommendedPatches` and `--patches` into ARU
//! patches (`AruUtil`, `CommonPatchingOptions`): the products of the installer type, each
//! product's release, its recommended patches (and the PSU's overlays), the version of each
//! named bug chosen as WIT chooses it; then each zip downloaded, verified and cached.

use super::{AruClient, AruError, AruPatch};
use crate::cache::{Cache, CacheKey};
use std::path::Path;

/// ARU's products (id, description) as WIT's `AruProduct` names them.
const WLS: (&str, &str) = ("15991", "Oracle WebLogic Server");
const COH: (&str, &str) = ("13964", "Oracle Coherence");
const JRF: (&str, &str) = ("10120", "Oracle Java Required Files");
const FMW: (&str, &str) = ("10120", "Oracle Fusion Middleware");
const FMC: (&str, &str) = ("48949", "Fusion Middleware Control");
const FMWPLAT: (&str, &str) = ("27638", "FMW Platform");
const OSB: (&str, &str) = ("16011", "Oracle Service Bus");
const SOA: (&str, &str) = ("12745", "Oracle SOA Suite");
const MFT: (&str, &str) = ("27538", "Oracle Managed File Transfer");
const IDM: (&str, &str) = ("18391", "Oracle Identity Manager");
const IMS: (&str, &str) = ("22295", "Oracle Identity Management");
const OAM: (&str, &str) = ("18388", "Oracle Access Manager");
const OHS: (&str, &str) = ("10300", "Oracle HTTP Server");
const OUD: (&str, &str) = ("19748", "Oracle Unified Directory");
const OID: (&str, &str) = ("10040", "Oracle Internet Directory");
const WCC: (&str, &str) = ("13946", "Oracle WebCenter Content");
const WCP: (&str, &str) = ("15224", "Oracle WebCenter Portal");
const WCS: (&str, &str) = ("20995", "Oracle WebCenter Sites");
const JDEV: (&str, &str) = ("11281", "Oracle JDeveloper");
const OPSS: (&str, &str) = ("16606", "Oracle Platform Security Service");
const OWSM: (&str, &str) = ("12787", "Oracle Webservices Manager");
const JDBC: (&str, &str) = ("9512", "Oracle JDBC for Fusion Middleware");
const FIT: (&str, &str) = ("33256", "Middleware Common Libraries and Tools");
const ODI: (&str, &str) = ("13724", "Oracle Data Integrator");
const OSS: (&str, &str) = ("16609", "Oracle Security Service");
const OAM_WG: (&str, &str) = ("18388", "Oracle Access Manager Web Gates");
const FMW_GLCM: (&str, &str) = ("31939", "Oracle Global Lifecycle Management FMW Installer");
const EM: (&str, &str) = ("12385", "Enterprise Manager for Fusion Middleware");
const UMS: (&str, &str) = ("16612", "User Messaging Service");
const OVD: (&str, &str) = ("13504", "Oracle Virtual Directory");

type Product = (&'static str, &'static str);

const WLS_PRODUCTS: &[Product] = &[WLS, COH, FMWPLAT, FIT, JDBC, FMW_GLCM, OSS, OWSM];
const FMW_EXTRA: &[Product] = &[FMW, JDEV, OPSS, EM, FMC, UMS, OVD];

/// The ARU products whose patches an installer type takes (WIT's `FmwInstallerType.products`).
fn products(kind: &str) -> Vec<Product> {
    let fmw = || [WLS_PRODUCTS, FMW_EXTRA].concat();
    let with = |extra: &[Product]| [fmw().as_slice(), extra].concat();
    match kind {
        "wls" | "wlsslim" | "wlsdev" => WLS_PRODUCTS.to_vec(),
        "fmw" => fmw(),
        "osb" => with(&[OSB]),
        "soa" => with(&[SOA]),
        "soa_osb" | "soa_osb_b2b" => with(&[SOA, OSB]),
        "mft" => with(&[MFT]),
        "idm" => with(&[IDM]),
        "idm_wls" => vec![IDM],
        "oam" => with(&[OAM, IMS]),
        "oig" => with(&[SOA, OSB, IDM]),
        "oud" => vec![OUD, IMS],
        "oud_wls" => with(&[OUD, IMS]),
        "oid" => with(&[OID, IMS]),
        "wcc" => with(&[WCC]),
        "wcp" => with(&[WCP]),
        "wcs" => with(&[WCS]),
        "ohs" => vec![
            OHS, OAM_WG, WLS, JDBC, FMWPLAT, OSS, FIT, FMW, JRF, FMW_GLCM,
        ],
        "odi" => vec![ODI],
        _ => Vec::new(),
    }
}

/// OPatch's own patch numbers: WIT skips them in `--patches` (it upgrades OPatch separately).
const OPATCH_BUGS: &[&str] = &["28186730", "28186731"];

/// What a build asks of ARU.
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    /// The installer type, lowercase (`wls`, `soa_osb`).
    pub kind: String,
    /// The installer version (`12.2.1.4.0`).
    pub version: String,
    /// OCI architecture (`amd64`, `arm64`).
    pub architecture: String,
    pub recommended: bool,
    pub latest_psu: bool,
    /// `--patches`: `BUG` or `BUG_VERSION`.
    pub ids: Vec<String>,
    /// The PSU version the image already has (update), preferred for bare bug numbers.
    pub installed_psu: Option<String>,
    /// The unique patch ids of the patches the image already has (update): the conflict check
    /// weighs the new patches against them, as WIT's does.
    pub installed_upis: Vec<String>,
}

/// The patches ARU gave, and what was decided on the way (printed to the user).
#[derive(Debug, Default)]
pub struct Resolution {
    pub patches: Vec<AruPatch>,
    pub notes: Vec<String>,
}

fn aru_platform(architecture: &str) -> u32 {
    match architecture {
        "arm64" | "aarch64" => 541,
        _ => 226,
    }
}

/// The cache key a downloaded patch is kept under: `BUG_VERSION`, `_ARCH` when not generic.
pub fn cache_key(patch: &AruPatch, architecture: &str) -> Result<CacheKey, AruError> {
    let id = if patch.platform == 2000 {
        format!("{}_{}", patch.patch_id, patch.version)
    } else {
        format!("{}_{}_{architecture}", patch.patch_id, patch.version)
    };
    CacheKey::patch(&id).map_err(|e| AruError::Malformed {
        what: format!("patch {}", patch.patch_id),
        reason: e.to_string(),
    })
}

/// Resolves what `wanted` names, in WIT's order: the catalog choice first, then `--patches`.
pub async fn resolve(client: &AruClient, wanted: &Wanted) -> Result<Resolution, AruError> {
    let mut out = Resolution::default();
    let platform = aru_platform(&wanted.architecture);
    if wanted.recommended || wanted.latest_psu {
        let products = products(&wanted.kind);
        if products.is_empty() {
            return Err(AruError::Selection(format!(
                "installer type {:?} has no products in Oracle's patch service",
                wanted.kind
            )));
        }
        for product in products {
            if product == OWSM && ["14.1.1.0.0", "15.1.1.0.0"].contains(&wanted.version.as_str()) {
                continue;
            }
            let found = if wanted.recommended {
                recommended_for(client, wanted, product, platform).await?
            } else {
                latest_psu_for(client, wanted, product, platform).await?
            };
            for p in &found {
                out.notes.push(format!(
                    "{}: {} {}_{} {}",
                    product.1,
                    if wanted.recommended {
                        "recommended"
                    } else {
                        "PSU"
                    },
                    p.patch_id,
                    p.version,
                    p.description
                ));
            }
            out.patches.extend(found);
        }
        if wanted.recommended && matches!(wanted.kind.as_str(), "wls" | "wlsslim" | "wlsdev") {
            out.patches.retain(|p| {
                let adr = p.description.starts_with("ADR FOR WEBLOGIC SERVER");
                if adr {
                    out.notes.push(format!(
                        "{}: an ADR patch, left out for a WebLogic Server installer as WIT does",
                        p.patch_id
                    ));
                }
                !adr
            });
        }
        if out.patches.is_empty() {
            out.notes.push(format!(
                "Oracle's patch service lists no {} for {} {}",
                if wanted.recommended {
                    "recommended patches"
                } else {
                    "PSU"
                },
                wanted.kind,
                wanted.version
            ));
        }
    }
    let mut psu = out
        .patches
        .iter()
        .find(|p| p.is_psu() && p.product == WLS.0)
        .and_then(|p| p.psu_version().map(str::to_owned))
        .or_else(|| wanted.installed_psu.clone());
    let psu_from_list = psu.is_some();
    for id in &wanted.ids {
        let (bug, provided) = match id.split_once('_') {
            Some((bug, version)) => (bug, Some(version)),
            None => (id.as_str(), None),
        };
        if OPATCH_BUGS.contains(&bug) {
            out.notes.push(format!(
                "{bug} is OPatch's own patch, not one for the Oracle Home: left out, as WIT does"
            ));
            continue;
        }
        let versions: Vec<AruPatch> = client
            .search_bug(bug)
            .await?
            .into_iter()
            .filter(|p| p.applies_to(platform))
            .collect();
        if versions
            .iter()
            .any(|p| p.description.contains("STACK PATCH BUNDLE"))
        {
            return Err(AruError::Selection(format!(
                "patch {bug} is a Stack Patch Bundle, which is not applied as a patch: name the patches it bundles (or use --recommendedPatches)"
            )));
        }
        let chosen = select(&versions, bug, provided, psu.as_deref(), &wanted.version)?;
        if !psu_from_list {
            if let Some(v) = chosen.is_psu().then(|| chosen.psu_version()).flatten() {
                psu = Some(v.to_owned());
            }
        }
        out.notes.push(format!(
            "patch {bug}: version {} ({})",
            chosen.version, chosen.description
        ));
        out.patches.push(chosen);
    }
    // WIT's conflict check before anything is downloaded: the new patches against each other
    // and against those the image has (one new patch alone on a fresh home cannot conflict).
    if out.patches.len() > 1 || (!out.patches.is_empty() && !wanted.installed_upis.is_empty()) {
        match client.conflicts(&wanted.installed_upis, &out.patches).await {
            Ok(sets) if sets.is_empty() => out.notes.push(format!(
                "Oracle's patch service found no conflict among the {} patches",
                out.patches.len()
            )),
            Ok(sets) => return Err(AruError::Conflicts { sets }),
            Err(refused @ AruError::InvalidCredentials { .. }) => return Err(refused),
            Err(unanswered) => out.notes.push(format!(
                "the conflict check was not answered ({unanswered}); going on without it, as WIT does"
            )),
        }
    }
    Ok(out)
}

/// The OPatch patch `bug` at `version`, else the newest version Oracle's patch service has: WIT
/// upgrades OPatch to the latest release when it has an account to ask with.
pub async fn resolve_opatch(
    client: &AruClient,
    bug: &str,
    version: Option<&str>,
) -> Result<AruPatch, AruError> {
    let versions = client.search_bug(bug).await?;
    let chosen = match version {
        Some(version) => versions.iter().find(|p| p.version == version),
        None => versions
            .iter()
            .max_by(|a, b| crate::recipe::patching::compare_versions(&a.version, &b.version)),
    };
    chosen.cloned().ok_or_else(|| {
        AruError::Selection(format!(
            "OPatch patch {bug} has no version {}; Oracle's patch service has: {}",
            version.unwrap_or("at all"),
            versions
                .iter()
                .map(|p| p.version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// WIT's `AruPatch.selectPatch`: the version asked for, else the PSU's, else the installer's.
fn select(
    versions: &[AruPatch],
    bug: &str,
    provided: Option<&str>,
    psu: Option<&str>,
    installer: &str,
) -> Result<AruPatch, AruError> {
    let listed = || {
        versions
            .iter()
            .map(|p| p.version.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(twice) = versions
        .iter()
        .enumerate()
        .find(|(i, p)| versions[..*i].iter().any(|q| q.version == p.version))
    {
        return Err(AruError::Selection(format!(
            "patch {bug} is listed twice for version {}; name one with --patches {bug}_VERSION",
            twice.1.version
        )));
    }
    let find = |v: &str| versions.iter().find(|p| p.version == v).cloned();
    if let Some(version) = provided {
        return find(version).ok_or_else(|| {
            AruError::Selection(format!(
                "patch {bug} has no version {version}; Oracle's patch service has: {}",
                listed()
            ))
        });
    }
    psu.and_then(find)
        .or_else(|| find(installer))
        .ok_or_else(|| {
            AruError::Selection(format!(
                "patch {bug} has no version for {installer}{}; Oracle's patch service has: {} (name one with --patches {bug}_VERSION)",
                psu.map(|p| format!(" or PSU {p}")).unwrap_or_default(),
                listed()
            ))
        })
}

async fn release_recommendations(
    client: &AruClient,
    product: Product,
    release: &str,
    platform: u32,
) -> Result<Vec<AruPatch>, AruError> {
    Ok(client
        .recommended(product.0, release)
        .await?
        .into_iter()
        .filter(|p| p.applies_to(platform))
        .filter(|p| !p.is_irregular() && !p.is_coherence_feature_pack())
        .filter(|p| p.release == release)
        .collect())
}

async fn recommended_for(
    client: &AruClient,
    wanted: &Wanted,
    product: Product,
    platform: u32,
) -> Result<Vec<AruPatch>, AruError> {
    let Some(release) = client.release_number(product.1, &wanted.version).await? else {
        return Ok(Vec::new());
    };
    let mut patches = release_recommendations(client, product, &release, platform).await?;
    if wanted.kind == "ohs" {
        patches.retain(|p| !p.description.contains("APACHE PLUGIN"));
    }
    // A PSU among them: its own release has the overlays that go on top of it.
    let psu_version = patches
        .iter()
        .map(|p| p.psu_bundle.as_str())
        .find(|b| !b.is_empty())
        .and_then(|bundle| bundle.get(product.1.len() + 1..))
        .map(str::to_owned);
    if let Some(psu_version) = psu_version {
        if let Some(psu_release) = client.release_number(product.1, &psu_version).await? {
            let overlays = release_recommendations(client, product, &psu_release, platform).await?;
            patches.extend(overlays);
        }
    }
    Ok(patches)
}

async fn latest_psu_for(
    client: &AruClient,
    wanted: &Wanted,
    product: Product,
    platform: u32,
) -> Result<Vec<AruPatch>, AruError> {
    let Some(release) = client.release_number(product.1, &wanted.version).await? else {
        return Ok(Vec::new());
    };
    Ok(client
        .recommended(product.0, &release)
        .await?
        .into_iter()
        .filter(|p| p.applies_to(platform) && p.is_psu() && !p.is_irregular())
        .collect())
}

/// Downloads each patch the cache lacks (or holds with other bytes than ARU's), verifies it
/// against ARU's digest and caches it under its key; returns the keys in order.
pub async fn fetch_into_cache(
    client: &AruClient,
    cache: &Cache,
    patches: &[AruPatch],
    architecture: &str,
    work: &Path,
) -> Result<Vec<CacheKey>, AruError> {
    let mut keys = Vec::new();
    for patch in patches {
        let key = cache_key(patch, architecture)?;
        if keys.contains(&key) {
            continue;
        }
        let held = cache.entry(&key)?;
        if held
            .as_ref()
            .is_some_and(|e| e.digest.hex() == patch.sha256)
        {
            keys.push(key);
            continue;
        }
        if let Some(entry) = held {
            tracing::warn!(key = %key, cached = %entry.digest, published = %patch.sha256, "the cached file is not the one Oracle's patch service publishes; downloading it");
        }
        let file = client.download(patch, work).await?;
        let (store, k) = (cache.clone(), key.clone());
        crate::spawn_blocking(move || store.add(&k, &file, true))
            .await
            .expect("cache add task")?;
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(v: &str, psu: &str) -> AruPatch {
        AruPatch {
            patch_id: "30000001".into(),
            version: v.into(),
            psu_bundle: psu.into(),
            platform: 2000,
            ..Default::default()
        }
    }

    #[test]
    fn a_bugs_version_is_the_one_asked_for_else_the_psus_else_the_installers() {
        let versions = [version("12.2.1.4.0", ""), version("12.2.1.4.250114", "")];
        let pick = |provided, psu| {
            select(&versions, "30000001", provided, psu, "12.2.1.4.0").map(|p| p.version)
        };
        assert_eq!(pick(None, None).unwrap(), "12.2.1.4.0");
        assert_eq!(
            pick(None, Some("12.2.1.4.250114")).unwrap(),
            "12.2.1.4.250114"
        );
        assert_eq!(pick(None, Some("12.2.1.4.990101")).unwrap(), "12.2.1.4.0");
        assert_eq!(
            pick(Some("12.2.1.4.250114"), None).unwrap(),
            "12.2.1.4.250114"
        );
        let err = pick(Some("14.1.1.0.0"), None).unwrap_err().to_string();
        assert!(err.contains("12.2.1.4.0, 12.2.1.4.250114"), "{err}");
        let err = select(&versions, "30000001", None, None, "14.1.2.0.0").unwrap_err();
        assert!(
            err.to_string().contains("no version for 14.1.2.0.0"),
            "{err}"
        );
    }

    #[test]
    fn every_installer_type_has_wits_products() {
        for set in crate::installer::sets::SETS {
            assert!(!products(&set.kind()).is_empty(), "{}", set.name);
        }
        assert!(products("soa").contains(&SOA) && products("soa").contains(&WLS));
        assert_eq!(products("odi"), vec![ODI]);
    }
}
