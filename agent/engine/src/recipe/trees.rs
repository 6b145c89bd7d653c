//! A build's layers as directories, each made at most once: the lower directories its build
//! steps run on. The layers below the first one this build wrote (the base's) are unpacked
//! together the first time a step needs them; a layer the build wrote from a spec is written out
//! as a directory, hard-linking the build's own files; a step's layer keeps the overlay upper
//! directory it was captured from. A build running its installers, OPatch and three sections
//! unpacks its base once and never reads back a layer it wrote.

use super::RecipeError;
use crate::layer::materialize::LinkClaims;
use crate::layer::rootfs::{self, LayerFile};
use crate::layer::{LayerBlob, LayerSpec};
use crate::transport::push::{BlobOrigin, OutBlob};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// More lower directories than this and the layers are unpacked into one instead: overlayfs
/// takes its options in one page.
const MOST_LOWERS: usize = 40;

#[derive(Default)]
struct Known {
    /// Layers written from a spec, not yet needed as a directory (by blob digest).
    specs: HashMap<String, LayerSpec>,
    /// Layers as overlay-format directories (by blob digest).
    trees: HashMap<String, PathBuf>,
    /// Runs of bottom layers unpacked into one directory, with their digests.
    bottoms: Vec<(Vec<String>, PathBuf)>,
    claims: LinkClaims,
    made: usize,
}

/// The build's layer directories, under `dir`.
pub struct LayerTrees {
    dir: PathBuf,
    /// The build's own directory: files under it may be hard-linked into a tree.
    linkable: PathBuf,
    known: Arc<Mutex<Known>>,
}

fn failed(e: impl std::fmt::Display) -> RecipeError {
    RecipeError::input("build steps", e.to_string())
}

impl LayerTrees {
    pub fn new(build_dir: &Path) -> Self {
        LayerTrees {
            dir: build_dir.join("trees"),
            linkable: build_dir.to_path_buf(),
            known: Arc::default(),
        }
    }

    fn next_dir(&self, known: &mut Known) -> PathBuf {
        known.made += 1;
        self.dir.join(known.made.to_string())
    }

    /// `blob` was written from `spec`: made a directory only if a step runs above it.
    pub fn wrote(&self, blob: &LayerBlob, spec: LayerSpec) {
        let mut known = self.known.lock().expect("trees lock");
        if !known.trees.contains_key(&blob.digest.to_string()) {
            known.specs.insert(blob.digest.to_string(), spec);
        }
    }

    /// `blob` was captured from `upper`, a step's finished overlay upper directory, which is
    /// moved here to stand for it (what the layer leaves out taken away first).
    pub async fn captured(&self, blob: &LayerBlob, upper: PathBuf) -> Result<(), RecipeError> {
        let digest = blob.digest.to_string();
        let tree = {
            let mut known = self.known.lock().expect("trees lock");
            known.specs.remove(&digest);
            if known.trees.contains_key(&digest) {
                return Ok(());
            }
            self.next_dir(&mut known)
        };
        let at = tree.clone();
        crate::spawn_blocking(move || {
            crate::layer::capture::drop_left_out(&upper)?;
            std::fs::create_dir_all(at.parent().expect("under trees"))?;
            std::fs::rename(&upper, &at)
        })
        .await
        .expect("keep upper task")
        .map_err(failed)?;
        self.known
            .lock()
            .expect("trees lock")
            .trees
            .insert(digest, tree);
        Ok(())
    }

    /// The lower directories, topmost first, of the image made of `layers` (bottom first).
    pub async fn lowers(&self, layers: &[OutBlob]) -> Result<Vec<PathBuf>, RecipeError> {
        let digests: Vec<String> = layers
            .iter()
            .filter(|l| !matches!(l.origin, BlobOrigin::Memory(_)))
            .map(|l| l.descriptor.digest.to_string())
            .collect();
        let (bottom_len, bottom) = {
            let known = self.known.lock().expect("trees lock");
            let has = |d: &String| known.trees.contains_key(d) || known.specs.contains_key(d);
            let first = digests.iter().position(has).unwrap_or(digests.len());
            // A layer with no directory above one that has: unpack them all together.
            let first = if digests[first..].iter().all(has) && digests.len() - first < MOST_LOWERS {
                first
            } else {
                digests.len()
            };
            let bottom = known
                .bottoms
                .iter()
                .find(|(run, _)| run[..] == digests[..first])
                .map(|(_, tree)| tree.clone());
            (first, bottom)
        };
        // Bottom first, reversed at the end.
        let mut lowers = Vec::new();
        if bottom_len > 0 {
            lowers.push(match bottom {
                Some(tree) => tree,
                None => self.unpack_bottom(layers, &digests[..bottom_len]).await?,
            });
        }
        for digest in &digests[bottom_len..] {
            lowers.push(self.tree_of(digest).await?);
        }
        if lowers.is_empty() {
            // An image with no layers: steps run on an empty directory.
            let empty = self.next_dir(&mut self.known.lock().expect("trees lock"));
            std::fs::create_dir_all(&empty).map_err(failed)?;
            lowers.push(empty);
        }
        lowers.reverse();
        Ok(lowers)
    }

    /// The directory of a layer this build wrote or captured, written out from its spec the
    /// first time.
    async fn tree_of(&self, digest: &str) -> Result<PathBuf, RecipeError> {
        let (spec, at) = {
            let mut known = self.known.lock().expect("trees lock");
            if let Some(tree) = known.trees.get(digest) {
                return Ok(tree.clone());
            }
            let spec = known.specs.remove(digest).expect("a known layer");
            (spec, self.next_dir(&mut known))
        };
        let (known, linkable, tree) = (self.known.clone(), self.linkable.clone(), at.clone());
        crate::spawn_blocking(move || {
            let mut claims = std::mem::take(&mut known.lock().expect("trees lock").claims);
            let made = spec.materialize(&tree, &linkable, &mut claims);
            known.lock().expect("trees lock").claims = claims;
            made
        })
        .await
        .expect("materialize task")?;
        self.known
            .lock()
            .expect("trees lock")
            .trees
            .insert(digest.to_string(), at.clone());
        Ok(at)
    }

    /// The first `run.len()` of `layers` unpacked into one directory (downloading remote ones).
    async fn unpack_bottom(
        &self,
        layers: &[OutBlob],
        run: &[String],
    ) -> Result<PathBuf, RecipeError> {
        let downloads = self.dir.join("downloads");
        std::fs::create_dir_all(&downloads).map_err(failed)?;
        let mut files = Vec::new();
        for blob in layers
            .iter()
            .filter(|l| !matches!(l.origin, BlobOrigin::Memory(_)))
        {
            if files.len() == run.len() {
                break;
            }
            let path = match &blob.origin {
                BlobOrigin::Local(path) => path.clone(),
                BlobOrigin::Remote(source) => {
                    source
                        .local_path(&blob.descriptor.digest, &downloads)
                        .await?
                }
                BlobOrigin::Memory(_) => unreachable!("filtered out"),
            };
            files.push((
                path,
                blob.descriptor.digest.to_string(),
                blob.descriptor.media_type.clone(),
            ));
        }
        let at = {
            let mut known = self.known.lock().expect("trees lock");
            self.next_dir(&mut known)
        };
        let root = at.clone();
        crate::spawn_blocking(move || {
            let layers: Vec<LayerFile<'_>> = files
                .iter()
                .map(|(path, digest, media_type)| LayerFile {
                    path,
                    digest: digest.clone(),
                    media_type: media_type.clone(),
                })
                .collect();
            rootfs::unpack(&layers, &root)
        })
        .await
        .expect("unpack task")?;
        self.known
            .lock()
            .expect("trees lock")
            .bottoms
            .push((run.to_vec(), at.clone()));
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Owner, WriteOptions};

    fn written(dir: &Path, file: &str) -> (LayerBlob, LayerSpec, OutBlob) {
        let mut spec = LayerSpec::new();
        spec.add_bytes(file, file.as_bytes().to_vec(), 0o644, Owner::ROOT)
            .unwrap();
        let blob = spec
            .write(&dir.join("layers"), WriteOptions::default())
            .unwrap();
        let out = super::super::build::local_blob(&blob);
        (blob, spec, out)
    }

    #[tokio::test]
    async fn the_base_is_unpacked_once_and_written_layers_become_their_own_directories() {
        let dir = tempfile::tempdir().unwrap();
        let trees = LayerTrees::new(dir.path());
        let (_, _, base1) = written(dir.path(), "/etc/base1");
        let (_, _, base2) = written(dir.path(), "/etc/base2");
        let (blob, spec, ours) = written(dir.path(), "/u01/ours");
        trees.wrote(&blob, spec);
        let image = [base1.clone(), base2.clone(), ours.clone()];

        let lowers = trees.lowers(&image).await.unwrap();
        assert_eq!(lowers.len(), 2, "{lowers:?}");
        assert!(
            lowers[0].join("u01/ours").is_file(),
            "the written layer on top"
        );
        assert!(!lowers[0].join("etc").exists());
        assert!(lowers[1].join("etc/base1").is_file() && lowers[1].join("etc/base2").is_file());
        assert_eq!(trees.lowers(&image).await.unwrap(), lowers, "made once");
        assert_eq!(
            trees.lowers(&image[..2]).await.unwrap(),
            vec![lowers[1].clone()],
            "the base alone is the same directory"
        );

        // A layer this build did not write, above one it did: all unpacked together.
        let (_, _, foreign) = written(dir.path(), "/opt/foreign");
        let mixed = trees.lowers(&[base1, ours, foreign]).await.unwrap();
        assert_eq!(mixed.len(), 1);
        for file in ["etc/base1", "u01/ours", "opt/foreign"] {
            assert!(mixed[0].join(file).is_file(), "{file}");
        }
    }
}
