//! Local files into the farm's artifact store: installers and patches (`cache add… --farm`) and
//! a job's input files, which a farm job names only by content (`artifact:sha256:<hex>/<name>`),
//! never by a path the agent would read from its own disk.

use anyhow::{bail, Context as _};
use patchfarm_client::{new_request_id, FarmClient};
use patchfarm_jobs::{ArtifactFile, Job};
use patchfarm_proto::v1::{ArtifactChunk, ArtifactHeader, CatalogEntry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt as _;

const CHUNK: usize = 1 << 20;

/// Streams the regular file `path` to a coordinator; `header` says what it is (its name and
/// size are filled in here). The coordinator stores nothing unless every declared byte arrives.
pub async fn put_file(
    client: &FarmClient,
    mut header: ArtifactHeader,
    path: &Path,
) -> anyhow::Result<CatalogEntry> {
    let meta = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    header.size = meta.len();
    if header.file_name.is_empty() {
        header.file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let path = path.to_path_buf();
    client
        .call(|mut c| {
            let (header, path) = (header.clone(), path.clone());
            async move {
                // Read as the stream is consumed: memory stays at one chunk in flight. A read
                // error ends the stream short of the declared size, which the coordinator refuses.
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| tonic::Status::aborted(format!("{}: {e}", path.display())))?;
                let chunks = futures_util::stream::unfold(
                    (file, Some(header)),
                    |(mut file, header)| async move {
                        let mut data = vec![0u8; CHUNK];
                        let n = file.read(&mut data).await.ok()?;
                        if n == 0 && header.is_none() {
                            return None;
                        }
                        data.truncate(n);
                        Some((ArtifactChunk { header, data }, (file, None)))
                    },
                );
                c.put_artifact(chunks).await
            }
        })
        .await
        .map_err(Into::into)
}

/// Uploads each input file once (by path) however many jobs name it.
pub struct InputUploads<'a> {
    client: &'a FarmClient,
    done: HashMap<PathBuf, ArtifactFile>,
}

impl<'a> InputUploads<'a> {
    pub fn new(client: &'a FarmClient) -> Self {
        InputUploads {
            client,
            done: HashMap::new(),
        }
    }

    /// Rewrites every input file of `job` as an artifact reference, uploading what is local.
    pub async fn confine(&mut self, job: &mut Job) -> anyhow::Result<()> {
        for (field, path) in job.input_files_mut() {
            if ArtifactFile::parse(path)
                .map_err(anyhow::Error::msg)
                .with_context(|| field.clone())?
                .is_some()
            {
                continue;
            }
            if let Some(file) = self.done.get(path.as_path()) {
                *path = file.to_path();
                continue;
            }
            let header = ArtifactHeader {
                request_id: new_request_id(),
                kind: "input".into(),
                ..Default::default()
            };
            let entry = put_file(self.client, header, path)
                .await
                .with_context(|| format!("{field}: uploading {} to the farm", path.display()))?;
            let file = ArtifactFile {
                digest: entry.digest.parse().map_err(|e| {
                    anyhow::anyhow!("the farm answered digest {:?}: {e}", entry.digest)
                })?,
                name: entry.description,
            };
            self.done.insert(path.clone(), file.clone());
            *path = file.to_path();
        }
        Ok(())
    }
}
