//! The fleet's patch catalog (YAML, DESIGN.md's format): the PSU and recommended patches per
//! product and version for a quarter — what `--recommendedPatches` and `--latestPSU` resolve to.

use super::OpatchError;
use crate::cache::CacheKey;
use serde::Deserialize;
use std::path::Path;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub quarter: String,
    pub products: Vec<Product>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    #[serde(default)]
    pub psu: Option<String>,
    #[serde(default)]
    pub recommended: Vec<String>,
}

/// Which of a product's catalog patches to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogChoice {
    /// PSU and the recommended patches.
    Recommended,
    /// The PSU only.
    LatestPsu,
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, OpatchError> {
        let fail = |reason: String| OpatchError::Catalog {
            path: path.display().to_string(),
            reason,
        };
        // A FIFO or a device would block or never end: only a regular file is read.
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(fail("is not a regular file".into())),
            Err(e) => return Err(fail(e.to_string())),
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let catalog: Catalog = serde_norway::from_str(&text).map_err(|e| fail(e.to_string()))?;
        for product in &catalog.products {
            for key in product.psu.iter().chain(&product.recommended) {
                CacheKey::patch(key).map_err(|e| fail(e.to_string()))?;
            }
        }
        Ok(catalog)
    }

    /// The patch keys for `kind`/`version` under `choice`; `path` names the catalog in errors.
    pub fn patches(
        &self,
        kind: &str,
        version: &str,
        choice: CatalogChoice,
        path: &Path,
    ) -> Result<Vec<CacheKey>, OpatchError> {
        let fail = |reason: String| OpatchError::Catalog {
            path: path.display().to_string(),
            reason,
        };
        // WIT's slim and dev installers take the WebLogic Server patches.
        let family = |k: &str| match k {
            "wlsslim" | "wlsdev" => "wls".to_string(),
            other => other.to_string(),
        };
        let product = self
            .products
            .iter()
            .find(|p| family(&p.kind) == family(kind) && p.version == version)
            .ok_or_else(|| {
                fail(format!(
                    "quarter {} lists no product {kind} {version}",
                    self.quarter
                ))
            })?;
        let psu = product
            .psu
            .as_ref()
            .ok_or_else(|| fail(format!("product {kind} {version} has no psu")))?;
        let mut keys = vec![psu.clone()];
        if choice == CatalogChoice::Recommended {
            keys.extend(product.recommended.iter().cloned());
        }
        keys.iter()
            .map(|k| CacheKey::patch(k).map_err(|e| fail(e.to_string())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_psu_and_recommended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "quarter: 2026-10\nproducts:\n  - type: wls\n    version: 12.2.1.4.0\n    psu: 37000001_12.2.1.4.0\n    recommended: [37000002_12.2.1.4.0]\n").unwrap();
        let c = Catalog::load(&path).unwrap();
        let keys = |choice| {
            c.patches("wlsslim", "12.2.1.4.0", choice, &path)
                .unwrap()
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(CatalogChoice::Recommended),
            vec!["37000001_12.2.1.4.0", "37000002_12.2.1.4.0"]
        );
        assert_eq!(keys(CatalogChoice::LatestPsu), vec!["37000001_12.2.1.4.0"]);
        assert!(c
            .patches("fmw", "12.2.1.4.0", CatalogChoice::LatestPsu, &path)
            .unwrap_err()
            .to_string()
            .contains("fmw"));
        std::fs::write(&path, "quarter: x\nproducts: []\nextra: 1\n").unwrap();
        assert!(Catalog::load(&path).is_err());
    }

    #[test]
    fn a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("catalog.yaml");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = Catalog::load(&fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
