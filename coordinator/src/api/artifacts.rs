//! Uploads into the artifact store (`patchfarm --farm … cache addInstaller|addPatch`): the bytes
//! are spooled to this coordinator's disk while hashed, stored by digest in `--artifact-store`,
//! and only then recorded in the catalog through raft — so a catalog entry always names content
//! that exists, and a broken upload leaves no entry.

use super::{internal, outcome, request_id};
use crate::raft::NodeHandle;
use patchfarm_engine::artifact::ArtifactStore;
use patchfarm_engine::cache::CacheKey;
use patchfarm_engine::digest::Digest;
use patchfarm_proto::state::{command::Op, command_result::Outcome};
use patchfarm_proto::v1::{ArtifactChunk, ArtifactHeader, CatalogEntry};
use sha2::Digest as _;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt as _;
use tonic::Status;

pub struct Uploads {
    pub store: Option<ArtifactStore>,
    /// Where uploads are spooled before they reach the store (inside `--data-dir`).
    pub spool: PathBuf,
}

impl Uploads {
    pub async fn receive(
        &self,
        node: &NodeHandle,
        mut chunks: tonic::Streaming<ArtifactChunk>,
    ) -> Result<CatalogEntry, Status> {
        let Some(store) = &self.store else {
            return Err(Status::failed_precondition(
                "this coordinator has no --artifact-store: it cannot keep installers or patches",
            ));
        };
        let first = chunks
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty upload"))?;
        let header = first
            .header
            .clone()
            .ok_or_else(|| Status::invalid_argument("an upload starts with its header"))?;
        // A job's input file (a WDT model, a build file, a patch catalog) is kept by content
        // only; installers and patches also become catalog entries under their cache key.
        let key = if header.kind == "input" {
            patchfarm_jobs::files::valid_name(&header.file_name)
                .map_err(|e| Status::invalid_argument(format!("an input file's name: {e}")))?;
            None
        } else {
            Some(self.catalog_key(node, &header)?)
        };
        let label = key
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_else(|| header.file_name.clone());

        tokio::fs::create_dir_all(&self.spool)
            .await
            .map_err(internal)?;
        let spooled = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&self.spool)
            .map_err(internal)?
            .into_temp_path();
        let mut file = tokio::fs::File::create(&spooled).await.map_err(internal)?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        let mut chunk = Some(first);
        while let Some(part) = chunk {
            hasher.update(&part.data);
            size += part.data.len() as u64;
            file.write_all(&part.data).await.map_err(internal)?;
            chunk = chunks.message().await?;
        }
        if header.size != 0 && size != header.size {
            return Err(Status::invalid_argument(format!(
                "the upload of {} for {label} ended after {size} of its {} bytes; nothing was stored",
                header.file_name, header.size
            )));
        }
        file.sync_all().await.map_err(internal)?;
        drop(file);
        if size == 0 {
            return Err(Status::invalid_argument(format!(
                "{} for {label} is empty",
                header.file_name
            )));
        }
        let digest = Digest::from_hasher(hasher);
        // Jobs that run an Oracle installer or OPatch go only to agents that can run steps.
        let runs_steps = {
            let (path, name, kind) = (
                spooled.to_path_buf(),
                header.file_name.clone(),
                header.kind.clone(),
            );
            tokio::task::spawn_blocking(move || match kind.as_str() {
                "installer" => patchfarm_engine::recipe::oui::installer_in(&path, &name).is_some(),
                "patch" => !patchfarm_engine::opatch::patch::opatch_only_actions(&path).is_empty(),
                _ => false,
            })
            .await
            .map_err(internal)?
        };
        store
            .put_file(&spooled, &digest, size, &header.kind, &header.file_name)
            .await
            .map_err(|e| {
                Status::unavailable(format!("storing {label} in the artifact store: {e}"))
            })?;
        drop(spooled);
        tracing::info!(item = %label, digest = %digest, size, store = %store.location(), "artifact stored");

        let Some(key) = key else {
            return Ok(CatalogEntry {
                kind: header.kind,
                digest: digest.to_string(),
                size,
                location: store.location(),
                description: header.file_name,
                ..Default::default()
            });
        };
        let entry = CatalogEntry {
            key: key.to_string(),
            kind: header.kind,
            digest: digest.to_string(),
            size,
            location: store.location(),
            description: header.file_name,
            runs_steps,
        };
        let id = request_id(&header.request_id);
        match outcome(node.propose(&id, Op::CatalogPut(entry)).await?)? {
            Outcome::Entry(entry) => Ok(entry),
            _ => Err(Status::internal(
                "catalog put applied with an unexpected outcome",
            )),
        }
    }

    /// An installer's or patch's cache key, refused if the catalog has it and `force` is unset.
    fn catalog_key(&self, node: &NodeHandle, header: &ArtifactHeader) -> Result<CacheKey, Status> {
        let key: CacheKey = header
            .key
            .parse()
            .map_err(|e| Status::invalid_argument(format!("cache key {:?}: {e}", header.key)))?;
        if !matches!(header.kind.as_str(), "installer" | "patch") {
            return Err(Status::invalid_argument(format!(
                "artifact kind {:?}: expected installer, patch or input",
                header.kind
            )));
        }
        if !header.force {
            let existing = node.state.catalog().map_err(internal)?;
            if let Some(e) = existing.iter().find(|e| e.key == key.to_string()) {
                return Err(Status::already_exists(format!(
                    "the farm's catalog already has {key} ({}, from {}); pass --force to replace it",
                    e.digest, e.description
                )));
            }
        }
        Ok(key)
    }
}
