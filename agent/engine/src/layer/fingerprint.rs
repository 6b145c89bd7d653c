//! What a layer is made of, as one digest, without reading its files: every entry's path,
//! kind, mode, owner, xattrs and link target, the bytes given inline, and for host files the
//! identity of the tree they come from (the digest of the archive it was unpacked from) with
//! their place in it; then the write options and the compression format. Equal fingerprints
//! give equal blobs, so a layer built before is taken from the built-layer cache instead.

use super::source::FileSource;
use super::writer::{Body, LayerSpec, WriteOptions};
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// Bumped whenever the writer, the tar headers or the compression framing change the bytes a
/// spec is written as: old cache entries then never match.
const FORMAT: &str = "patchfarm layer v3";

impl LayerSpec {
    /// The fingerprint of this layer written with `options`; `trees` name the host directories
    /// its files come from by the identity of their content (`None`: a file from elsewhere,
    /// whose bytes only reading them would tell — such a layer is not cached).
    pub fn fingerprint(&self, options: WriteOptions, trees: &[(&Path, &str)]) -> Option<Digest> {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(FORMAT.as_bytes());
        field(options.compression.format().as_bytes());
        field(&options.mtime.to_le_bytes());
        for (path, entry) in self.with_parents() {
            field(path.as_bytes());
            field(&entry.mode.to_le_bytes());
            field(&entry.owner.uid.to_le_bytes());
            field(&entry.owner.gid.to_le_bytes());
            for (name, value) in &entry.xattrs {
                field(name.as_bytes());
                field(value);
            }
            match &entry.body {
                Body::Dir => field(b"dir"),
                Body::Symlink(target) => {
                    field(b"symlink");
                    field(target.as_bytes());
                }
                Body::HardLink(target) => {
                    field(b"hardlink");
                    field(target.as_bytes());
                }
                Body::File(FileSource::Bytes(bytes)) => {
                    field(b"bytes");
                    field(Digest::of_bytes(bytes).hex().as_bytes());
                }
                Body::File(FileSource::Path(host)) => {
                    let (identity, inside) = trees
                        .iter()
                        .find_map(|(root, id)| host.strip_prefix(root).ok().map(|r| (*id, r)))?;
                    field(b"file");
                    field(identity.as_bytes());
                    field(inside.as_os_str().as_encoded_bytes());
                }
                Body::File(FileSource::ZipMember { .. }) => return None,
            }
        }
        Some(Digest::from_hasher(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Owner, WriteOptions};

    #[test]
    fn what_goes_in_decides_the_fingerprint_and_where_the_tree_sits_does_not() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for dir in [&one, &two] {
            std::fs::create_dir_all(dir.path().join("jdk/bin")).unwrap();
            std::fs::write(dir.path().join("jdk/bin/java"), b"java").unwrap();
        }
        let oracle = Owner {
            uid: 1000,
            gid: 1000,
        };
        let spec = |root: &Path, owner: Owner| {
            let mut spec = LayerSpec::new();
            spec.add_bytes(
                "/etc/passwd",
                b"oracle:x:1000:1000::/u01:/bin/sh\n".to_vec(),
                0o644,
                Owner::ROOT,
            )
            .unwrap();
            spec.add_host_tree(&root.join("jdk"), "/u01/jdk", owner)
                .unwrap();
            spec
        };
        let at = WriteOptions::default();
        let print = |root: &Path, owner: Owner, id: &str, options: WriteOptions| {
            spec(root, owner).fingerprint(options, &[(&root.join("jdk"), id)])
        };
        let first = print(one.path(), oracle, "sha256:jdk17", at).expect("cacheable");
        assert_eq!(
            print(two.path(), oracle, "sha256:jdk17", at),
            Some(first.clone()),
            "another build directory, the same layer"
        );
        for (changed, what) in [
            (print(one.path(), oracle, "sha256:jdk21", at), "the JDK"),
            (
                print(
                    one.path(),
                    Owner {
                        uid: 1001,
                        gid: 1000,
                    },
                    "sha256:jdk17",
                    at,
                ),
                "an owner",
            ),
            (
                print(
                    one.path(),
                    oracle,
                    "sha256:jdk17",
                    WriteOptions { mtime: 1, ..at },
                ),
                "the epoch",
            ),
            (
                print(
                    one.path(),
                    oracle,
                    "sha256:jdk17",
                    WriteOptions {
                        compression: crate::layer::Compression::Zstd,
                        ..at
                    },
                ),
                "the compression",
            ),
        ] {
            assert_ne!(changed, Some(first.clone()), "{what} changed");
        }
        assert_eq!(
            spec(one.path(), oracle).fingerprint(at, &[]),
            None,
            "a file of unknown content: not cached"
        );
    }
}
