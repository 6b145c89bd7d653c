//! Everything checked before a single byte is built: versions against the Oracle Home,
//! overlays against their bases, and every pair of patches for contested files.

use super::xml::Action;
use super::{OpatchError, Patch};
use std::collections::{BTreeMap, BTreeSet};

/// Patches that passed every check, in the order they apply (bases before their overlays).
#[derive(Clone, Debug)]
pub struct PatchSet {
    pub patches: Vec<Patch>,
}

/// What an action touches, for conflict detection.
fn touches(action: &Action) -> Vec<(&'static str, String)> {
    match action {
        Action::Copy { .. } => vec![("file", action.target())],
        Action::Jar { class_name, .. } => vec![
            ("entry", format!("{}!/{class_name}", action.target())),
            ("jar", action.target()),
        ],
    }
}

/// Whether two touches contest the same bytes (two jar actions on different entries do not).
fn contested(a: &(&str, String), b: &(&str, String)) -> bool {
    a.1 == b.1
        && matches!(
            (a.0, b.0),
            ("file", "file") | ("entry", "entry") | ("file", "jar") | ("jar", "file")
        )
}

/// A patch keyed `12.2.1.4.260120` (ARU files PSU overlays under the PSU's release) goes on a
/// `12.2.1.4.0` home: the first four parts name the release, the fifth only the bundle.
fn same_release(patch_version: &str, home_version: &str) -> bool {
    if patch_version == home_version {
        return true;
    }
    let release = |v: &str| {
        let parts: Vec<&str> = v.split('.').collect();
        (parts.len() == 5).then(|| parts[..4].join("."))
    };
    home_version.ends_with(".0")
        && release(patch_version).is_some()
        && release(patch_version) == release(home_version)
}

/// Checks `patches` against the home's product version and the patches already applied
/// (`installed`), and orders them. Nothing is built before this returns Ok.
/// With `given_order` (`--strictPatchOrdering`) they keep the order asked for, an overlay only
/// moving after its base; otherwise bases go by key, for the same order whatever the asking.
pub fn check(
    mut patches: Vec<Patch>,
    home_version: &str,
    installed: &BTreeSet<String>,
    given_order: bool,
) -> Result<PatchSet, OpatchError> {
    let mut seen = BTreeSet::new();
    patches.retain(|p| seen.insert(p.id().to_string()));
    for p in &patches {
        if !same_release(&p.key.version, home_version) {
            return Err(OpatchError::VersionMismatch {
                patch: p.key.to_string(),
                patch_version: p.key.version.clone(),
                home_version: home_version.into(),
            });
        }
        for (component, version) in &p.inventory.required_components {
            if !version.is_empty() && version != home_version {
                return Err(OpatchError::VersionMismatch {
                    patch: format!("{} (component {component})", p.key),
                    patch_version: version.clone(),
                    home_version: home_version.into(),
                });
            }
        }
        for base in &p.inventory.overlays {
            if !seen.contains(base) && !installed.contains(base) {
                return Err(OpatchError::MissingBase {
                    patch: p.key.to_string(),
                    base: base.clone(),
                });
            }
        }
    }
    for (i, a) in patches.iter().enumerate() {
        for b in &patches[i + 1..] {
            if a.is_overlay_on(b) || b.is_overlay_on(a) {
                continue;
            }
            for ta in a.actions.iter().flat_map(touches) {
                if let Some(tb) = b
                    .actions
                    .iter()
                    .flat_map(touches)
                    .find(|tb| contested(&ta, tb))
                {
                    let file = tb.1.split("!/").next().unwrap_or(&tb.1).to_string();
                    let (first, second) = if a.key <= b.key { (a, b) } else { (b, a) };
                    return Err(OpatchError::Conflict {
                        first: first.key.to_string(),
                        second: second.key.to_string(),
                        file,
                    });
                }
            }
        }
    }
    // Bases first (by key, for determinism, unless the order asked for is kept), then overlays
    // once their bases are placed.
    if !given_order {
        patches.sort_by(|a, b| a.key.cmp(&b.key));
    }
    let mut ordered: Vec<Patch> = Vec::new();
    let mut placed: BTreeSet<String> = installed.clone();
    while !patches.is_empty() {
        let ready = patches
            .iter()
            .position(|p| p.inventory.overlays.iter().all(|o| placed.contains(o)))
            .unwrap_or(0);
        let p = patches.remove(ready);
        placed.insert(p.id().to_string());
        ordered.push(p);
    }
    Ok(PatchSet { patches: ordered })
}

impl PatchSet {
    /// Patch ids in apply order.
    pub fn ids(&self) -> Vec<String> {
        self.patches.iter().map(|p| p.id().to_string()).collect()
    }

    /// sha256 of every patch zip, by key (recorded in image labels).
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.patches
            .iter()
            .map(|p| (p.key.to_string(), p.digest.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn psu_level_versions_belong_to_their_release() {
        use super::same_release;
        assert!(same_release("12.2.1.4.0", "12.2.1.4.0"));
        assert!(same_release("12.2.1.4.260120", "12.2.1.4.0"));
        assert!(!same_release("14.1.1.0.0", "12.2.1.4.0"));
        assert!(!same_release("12.2.1.3.260120", "12.2.1.4.0"));
        assert!(!same_release("12.2.1.4.0", "12.2.1.4.260120"));
    }
}
