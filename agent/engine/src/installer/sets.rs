//! WIT's installer sets (`--type`): the installers that make up each product's Oracle Home,
//! in the order WIT installs them (WIT's `FmwInstallerType`). Each installer is read from cache
//! key `<installer>_<version>`.

/// One `--type` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstallerSet {
    /// WIT's name, as `--type` spells it (matched ignoring case).
    pub name: &'static str,
    installers: &'static [&'static str],
}

const fn set(name: &'static str, installers: &'static [&'static str]) -> InstallerSet {
    InstallerSet { name, installers }
}

/// Every set WIT 1.16 knows, in WIT's order.
pub const SETS: &[InstallerSet] = &[
    set("WLS", &["wls"]),
    set("WLSSLIM", &["wlsslim"]),
    set("WLSDEV", &["wlsdev"]),
    set("FMW", &["fmw"]),
    set("OSB", &["fmw", "osb"]),
    set("SOA", &["fmw", "soa"]),
    set("SOA_OSB", &["fmw", "soa", "osb"]),
    set("SOA_OSB_B2B", &["fmw", "soa", "osb", "b2b"]),
    set("MFT", &["fmw", "mft"]),
    set("IDM", &["fmw", "idm"]),
    set("IDM_WLS", &["idm"]),
    set("OAM", &["fmw", "oam"]),
    set("OIG", &["fmw", "soa", "osb", "idm"]),
    set("OUD", &["oud"]),
    set("OUD_WLS", &["fmw", "oud"]),
    set("OID", &["fmw", "oid"]),
    set("WCC", &["fmw", "wcc"]),
    set("WCP", &["fmw", "wcp"]),
    set("WCS", &["fmw", "wcs"]),
    set("OHS", &["ohs"]),
    set("ODI", &["odi"]),
];

impl InstallerSet {
    /// The set named `text`, ignoring case (`soa_osb` is `SOA_OSB`).
    pub fn parse(text: &str) -> Result<InstallerSet, String> {
        SETS.iter()
            .find(|s| s.name.eq_ignore_ascii_case(text))
            .copied()
            .ok_or_else(|| {
                let names: Vec<_> = SETS.iter().map(|s| s.name).collect();
                format!(
                    "unknown installer type {text:?}; WIT's types are {}",
                    names.join(", ")
                )
            })
    }

    /// The set's name as a request's `kind` carries it: lowercase, as cache keys and catalogs
    /// spell product types.
    pub fn kind(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// The installer types (cache key prefixes) for `version`, in install order: the HTTP
    /// Server 12.2.1.4.0 also takes the 19c database client, as in WIT.
    pub fn installers(&self, version: &str) -> Vec<&'static str> {
        let mut list = self.installers.to_vec();
        if self.name == "OHS" && version == "12.2.1.4.0" {
            list.push("db19");
        }
        list
    }

    /// The cache keys this set reads for `version`.
    pub fn keys(&self, version: &str) -> Vec<String> {
        self.installers(version)
            .into_iter()
            .map(|installer| format!("{installer}_{version}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_expand_in_wits_order_and_parse_ignoring_case() {
        assert_eq!(SETS.len(), 21);
        let soa = InstallerSet::parse("soa_osb_b2b").unwrap();
        assert_eq!(soa.installers("12.2.1.4.0"), ["fmw", "soa", "osb", "b2b"]);
        assert_eq!(
            InstallerSet::parse("Wls").unwrap().keys("14.1.1.0.0"),
            ["wls_14.1.1.0.0"]
        );
        let ohs = InstallerSet::parse("OHS").unwrap();
        assert_eq!(ohs.installers("12.2.1.4.0"), ["ohs", "db19"]);
        assert_eq!(ohs.installers("14.1.2.0.0"), ["ohs"]);
        let err = InstallerSet::parse("weblogic").unwrap_err();
        assert!(
            err.contains("\"weblogic\"") && err.contains("SOA_OSB_B2B"),
            "{err}"
        );
    }
}
