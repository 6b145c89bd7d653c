//! A WebLogic Image Tool cache used as it is: WIT keeps `key=path` lines in `.metadata` (a Java
//! properties file) in `$WLSIMG_CACHEDIR`, else `~/cache`. A key patchfarm's store lacks is looked
//! up there and its file copied into the verified store on first use; `cache import` copies all.

use super::{Cache, CacheError, CacheKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// WIT's cache directory, when it holds a `.metadata` file.
pub fn default_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WLSIMG_CACHEDIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join("cache"),
    };
    dir.join(".metadata").is_file().then_some(dir)
}

/// `.metadata`'s entries, keys lowercased as WIT stores them; `cache.dir` is not an entry.
pub fn read_metadata(dir: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let text = std::fs::read_to_string(dir.join(".metadata"))?;
    Ok(properties(&text)
        .into_iter()
        .filter(|(k, _)| k != "cache.dir")
        .map(|(k, v)| (k.to_ascii_lowercase(), PathBuf::from(v)))
        .collect())
}

/// Java properties: `key=value` or `key:value` lines, `#`/`!` comments, backslash escapes.
fn properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (mut key, mut value, mut in_value, mut escaped) =
            (String::new(), String::new(), false, false);
        for c in line.chars() {
            let target = if in_value { &mut value } else { &mut key };
            if escaped {
                target.push(match c {
                    't' => '\t',
                    'n' => '\n',
                    other => other,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if !in_value && (c == '=' || c == ':') {
                in_value = true;
            } else {
                target.push(c);
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    out
}

impl Cache {
    /// Looks `key` up in WIT's cache and, when it names a regular file, copies that file in
    /// under the key. `Ok(false)` when WIT's cache does not have it.
    pub fn import_from_wit(&self, dir: &Path, key: &CacheKey) -> Result<bool, CacheError> {
        let metadata = read_metadata(dir).map_err(|source| CacheError::ReadInput {
            path: dir.join(".metadata").display().to_string(),
            source,
        })?;
        let Some(path) = metadata.get(&key.to_string()) else {
            return Ok(false);
        };
        self.add(key, path, false)?;
        tracing::info!(key = %key, from = %path.display(), "imported from the WebLogic Image Tool cache");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_java_properties_as_wit_writes_them() {
        let parsed = super::properties(
            "#comment\n! also\n\ncache.dir=/home/u/cache\nJDK_8u202 = /a\\:b/jdk.tar.gz\nwls_12.2.1.4.0:/c\\\\d/wls.zip\n",
        );
        assert_eq!(
            parsed,
            vec![
                ("cache.dir".to_string(), "/home/u/cache".to_string()),
                ("JDK_8u202".to_string(), "/a:b/jdk.tar.gz".to_string()),
                ("wls_12.2.1.4.0".to_string(), "/c\\d/wls.zip".to_string()),
            ]
        );
    }
}
