//! Reading images from OCI layouts built by hand: platform selection through a nested index,
//! and the merged tree's whiteouts, opaque directories and early stop.

use patchfarm_engine::digest::Digest;
use patchfarm_engine::image::manifest::{index_bytes, Descriptor};
use patchfarm_engine::image::{media, ImageConfig, ImageRef, Manifest, Platform};
use patchfarm_engine::transport::{layout, BlobSource, Registries, ResolvedImage};
use patchfarm_engine::tree::{MergedTree, TreeQuery};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// A gzip layer of (path, content) entries; content None = directory. Returns (descriptor, diffID).
fn layer(dir: &Path, entries: &[(&str, Option<&str>)]) -> (Descriptor, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        match content {
            Some(c) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(c.len() as u64);
                header.set_mode(0o644);
                tar.append_data(&mut header, path, c.as_bytes()).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o755);
                tar.append_data(&mut header, path, std::io::empty())
                    .unwrap();
            }
        }
    }
    let tar_bytes = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).unwrap();
    let blob = gz.finish().unwrap();
    let digest = Digest::of_bytes(&blob);
    layout::put_blob_bytes(dir, &digest, &blob).unwrap();
    (
        Descriptor::new(media::OCI_LAYER_GZIP, digest, blob.len() as u64),
        Digest::of_bytes(&tar_bytes),
    )
}

fn image(dir: &Path, arch: &str, layers: Vec<(Descriptor, Digest)>) -> Descriptor {
    let mut config = ImageConfig::empty("linux", arch);
    for (_, diff_id) in &layers {
        config.append_layer(diff_id, "1970-01-01T00:00:00Z", "test", "");
    }
    let config_bytes = config.to_bytes();
    let config_digest = Digest::of_bytes(&config_bytes);
    layout::put_blob_bytes(dir, &config_digest, &config_bytes).unwrap();
    let manifest = Manifest {
        media_type: media::OCI_MANIFEST.into(),
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
        layers: layers.into_iter().map(|(d, _)| d).collect(),
        annotations: BTreeMap::new(),
    };
    let bytes = manifest.to_oci_bytes();
    let digest = Digest::of_bytes(&bytes);
    layout::put_blob_bytes(dir, &digest, &bytes).unwrap();
    let mut d = Descriptor::new(media::OCI_MANIFEST, digest, bytes.len() as u64);
    d.platform = Some(Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: None,
    });
    d
}

#[tokio::test]
async fn selects_the_platform_from_a_nested_index_and_names_the_choices() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout::init(&dir).unwrap();
    let amd = image(&dir, "amd64", vec![layer(&dir, &[("arch", Some("amd64"))])]);
    let arm = image(&dir, "arm64", vec![layer(&dir, &[("arch", Some("arm64"))])]);
    let index = index_bytes(&[amd, arm.clone()], &BTreeMap::new());
    let index_digest = Digest::of_bytes(&index);
    layout::put_blob_bytes(&dir, &index_digest, &index).unwrap();
    layout::tag(
        &dir,
        Some("multi"),
        &Descriptor::new(media::OCI_INDEX, index_digest, index.len() as u64),
        None,
    )
    .unwrap();

    let reference: ImageRef = format!("oci:{}:multi", dir.display()).parse().unwrap();
    let registries = Registries::default();
    let arm_image = ResolvedImage::fetch(&reference, &"linux/arm64".parse().unwrap(), &registries)
        .await
        .unwrap();
    assert_eq!(arm_image.config.architecture(), "arm64");
    assert_eq!(arm_image.manifest_digest, arm.digest);
    let tree = MergedTree::new(
        arm_image.manifest.layers.clone(),
        arm_image.source.clone(),
        tmp.path().join("dl"),
    );
    let files = tree.read_files(&["/arch"]).await.unwrap();
    assert_eq!(files["arch"].content.as_deref(), Some(&b"arm64"[..]));

    let err = ResolvedImage::fetch(&reference, &"linux/s390x".parse().unwrap(), &registries)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64") && err.contains("linux/arm64"),
        "{err}"
    );
    let err = ResolvedImage::fetch(
        &format!("oci:{}:missing", dir.display()).parse().unwrap(),
        &Platform::default(),
        &registries,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing") && err.contains("not found"),
        "{err}"
    );
}

#[tokio::test]
async fn honours_whiteouts_and_opaque_dirs_and_reads_only_the_layers_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout::init(&dir).unwrap();
    let bottom = layer(
        &dir,
        &[
            ("etc/", None),
            ("etc/os-release", Some("ID=bottom")),
            ("u01/", None),
            ("u01/old/", None),
            ("u01/old/a", Some("a")),
            ("u01/keep/", None),
            ("u01/keep/b", Some("b")),
            ("opq/", None),
            ("opq/x", Some("x")),
        ],
    );
    let middle = layer(
        &dir,
        &[
            ("etc/os-release", Some("ID=middle")),
            ("u01/.wh.old", Some("")),
            ("opq/", None),
            ("opq/.wh..wh..opq", Some("")),
            ("opq/y", Some("y")),
        ],
    );
    let top = layer(&dir, &[("unrelated", Some("z"))]);
    let descriptor = image(&dir, "amd64", vec![bottom, middle, top]);
    layout::tag(&dir, Some("t"), &descriptor, None).unwrap();
    let reference: ImageRef = format!("oci:{}:t", dir.display()).parse().unwrap();
    let resolved = ResolvedImage::fetch(&reference, &Platform::default(), &Registries::default())
        .await
        .unwrap();
    let tree = MergedTree::new(
        resolved.manifest.layers.clone(),
        BlobSource::Layout { dir: dir.clone() },
        tmp.path().join("dl"),
    );

    let answer = tree
        .lookup(&TreeQuery::default().read("/etc/os-release"))
        .await
        .unwrap();
    assert_eq!(
        answer.get("/etc/os-release").unwrap().content.as_deref(),
        Some(&b"ID=middle"[..])
    );
    assert_eq!(
        answer.layers_read, 2,
        "the bottom layer is not needed to answer"
    );

    let answer = tree
        .lookup(
            &TreeQuery::default()
                .stat("/u01/old/a")
                .stat("/u01/old")
                .stat("/u01/keep/b")
                .list("/opq"),
        )
        .await
        .unwrap();
    assert!(
        answer.get("/u01/old/a").is_none(),
        "whited-out directory content must be hidden"
    );
    assert!(answer.get("/u01/old").is_none());
    assert!(answer.get("/u01/keep/b").is_some());
    let listed: Vec<&str> = answer.listed["opq"]
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        listed,
        vec!["opq/y"],
        "an opaque directory hides everything below it in lower layers"
    );
}

#[tokio::test]
async fn a_layers_file_index_answers_stats_and_listings_without_the_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout::init(&dir).unwrap();
    let (layer_desc, diff) = layer(
        &dir,
        &[
            ("u01/", None),
            ("u01/oracle/", None),
            ("u01/oracle/registry.xml", Some("<registry/>")),
            ("u01/oracle/notes.txt", Some("not kept")),
            ("u01/oracle/oneoffs/", None),
            ("u01/oracle/oneoffs/1/", None),
        ],
    );
    let descriptor = image(&dir, "amd64", vec![(layer_desc.clone(), diff)]);
    layout::tag(&dir, Some("t"), &descriptor, None).unwrap();
    let reference: ImageRef = format!("oci:{}:t", dir.display()).parse().unwrap();
    let resolved = ResolvedImage::fetch(&reference, &Platform::default(), &Registries::default())
        .await
        .unwrap();
    let downloads = tmp.path().join("dl");
    let tree = MergedTree::new(
        resolved.manifest.layers.clone(),
        BlobSource::Layout { dir: dir.clone() },
        downloads.clone(),
    );
    let first = tree
        .lookup(
            &TreeQuery::default()
                .stat("/u01/oracle")
                .list("/u01/oracle/oneoffs"),
        )
        .await
        .unwrap();
    assert!(
        downloads
            .join(format!("{}.index", layer_desc.digest.hex()))
            .is_file(),
        "a full scan writes the index"
    );

    // Break the blob: stats and listings still come from the index, content cannot.
    std::fs::write(layout::blob_path(&dir, &layer_desc.digest), b"garbage").unwrap();
    let again = tree
        .lookup(
            &TreeQuery::default()
                .stat("/u01/oracle")
                .list("/u01/oracle/oneoffs"),
        )
        .await
        .unwrap();
    assert_eq!(
        again.get("/u01/oracle").unwrap().mode,
        first.get("/u01/oracle").unwrap().mode
    );
    assert_eq!(again.listed["u01/oracle/oneoffs"].len(), 1);
    // A small file inspect reads (an Oracle inventory) is kept in the index; others need the blob.
    let kept = tree
        .lookup(&TreeQuery::default().read("/u01/oracle/registry.xml"))
        .await
        .unwrap();
    assert_eq!(
        kept.get("/u01/oracle/registry.xml")
            .unwrap()
            .content
            .as_deref(),
        Some(&b"<registry/>"[..])
    );
    assert!(
        tree.lookup(&TreeQuery::default().read("/u01/oracle/notes.txt"))
            .await
            .is_err(),
        "content needs the blob"
    );
}
