//! Many pushes of the same new blobs to one repository at once all land. The distribution
//! registry rewrites a repository's blob link in place on every upload of it, so a manifest
//! checked meanwhile can read an empty link ("blob unknown"): seven farm jobs updating the same
//! base with the same patch did exactly that; the pusher must see it through.

use patchfarm_e2e::Registry;
use patchfarm_engine::digest::Digest;
use patchfarm_engine::image::manifest::{Descriptor, Manifest};
use patchfarm_engine::image::{media, ImageRef};
use patchfarm_engine::transport::push::{push, BlobLocations, BlobOrigin, OutBlob, PushedImage};
use patchfarm_engine::transport::{Registries, RegistryOptions};
use std::collections::BTreeMap;

const ROUNDS: usize = 6;
const PUSHERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_of_the_same_blobs_to_one_repository_all_land() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        // New bytes every round, so every pusher finds the blobs missing and uploads them.
        let layer_bytes: Vec<u8> = (0..256 * 1024)
            .map(|i: usize| (i.wrapping_mul(31) ^ round) as u8)
            .collect();
        let layer_path = dir.path().join(format!("layer-{round}"));
        std::fs::write(&layer_path, &layer_bytes).unwrap();
        let layer = Descriptor::new(
            media::OCI_LAYER_GZIP,
            Digest::of_bytes(&layer_bytes),
            layer_bytes.len() as u64,
        );
        let config_bytes = format!(r#"{{"architecture":"amd64","os":"linux","round":{round}}}"#);
        let manifest = Manifest {
            media_type: media::OCI_MANIFEST.into(),
            config: Descriptor::new(
                media::OCI_CONFIG,
                Digest::of_bytes(config_bytes.as_bytes()),
                config_bytes.len() as u64,
            ),
            layers: vec![layer.clone()],
            annotations: BTreeMap::new(),
        };
        let image = PushedImage {
            manifest_bytes: manifest.to_oci_bytes(),
            manifest_media_type: media::OCI_MANIFEST.into(),
            config_bytes: config_bytes.into_bytes(),
            layers: vec![OutBlob {
                descriptor: layer,
                origin: BlobOrigin::Local(layer_path),
            }],
        };
        // One client per pusher, as separate agents have.
        let pushes = (0..PUSHERS).map(|i| {
            let image = image.clone();
            let target: ImageRef = format!("{}/race/u:{round}-{i}", registry.host())
                .parse()
                .unwrap();
            let locations = BlobLocations::new(dir.path().join(format!("locations-{i}")));
            async move {
                let registries = Registries::new(RegistryOptions::default());
                push(&image, &target, &registries, &locations).await
            }
        });
        for (i, pushed) in futures_util::future::join_all(pushes)
            .await
            .into_iter()
            .enumerate()
        {
            let report = pushed.unwrap_or_else(|e| panic!("round {round}, pusher {i}: {e}"));
            assert_eq!(report.digest, image.manifest_digest().to_string());
        }
    }
    let tags = registry.tags("race/u");
    assert_eq!(tags.len(), ROUNDS * PUSHERS, "{tags:?}");
}
