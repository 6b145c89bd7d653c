//! Where a layer file's bytes come from (a host file, memory, a zip member) and how they are
//! streamed into the tar, checking that the input did not change underneath.

use super::LayerError;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a file's bytes come from when the layer is written (never loaded whole up front).
#[derive(Clone, Debug)]
pub enum FileSource {
    Path(PathBuf),
    Bytes(Arc<[u8]>),
    /// Entry `index` of the zip archive at `archive`, `size` bytes uncompressed.
    ZipMember {
        archive: PathBuf,
        index: usize,
        size: u64,
    },
}

impl FileSource {
    /// Copies the content to `out`, streaming (a zip member is held to its declared size).
    pub fn copy_to(&self, out: &mut impl Write) -> std::io::Result<u64> {
        match self {
            FileSource::Bytes(bytes) => out.write_all(bytes).map(|()| bytes.len() as u64),
            FileSource::Path(path) => std::io::copy(&mut File::open(path)?, out),
            FileSource::ZipMember {
                archive,
                index,
                size,
            } => {
                let mut zip = zip::ZipArchive::new(File::open(archive)?)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                let member = zip
                    .by_index(*index)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                crate::limits::read_declared(member, *size, out, &archive.display().to_string())
            }
        }
    }

    /// The whole content in memory (for what must be rewritten, such as a jar).
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        match self {
            FileSource::Bytes(bytes) => Ok(bytes.to_vec()),
            _ => {
                let mut out = Vec::new();
                self.copy_to(&mut out)?;
                Ok(out)
            }
        }
    }
}

pub(crate) fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    header: &mut tar::Header,
    path: &str,
    source: &FileSource,
    zips: &mut HashMap<PathBuf, zip::ZipArchive<File>>,
) -> Result<(), LayerError> {
    let write_err = |e: std::io::Error| LayerError::Write {
        dir: path.into(),
        source: e,
    };
    match source {
        FileSource::Bytes(bytes) => {
            header.set_size(bytes.len() as u64);
            tar.append_data(header, path, &bytes[..]).map_err(write_err)
        }
        FileSource::Path(host) => {
            let read_err = |e| LayerError::ReadInput {
                path: host.display().to_string(),
                source: e,
            };
            let file = File::open(host).map_err(read_err)?;
            let expected = file.metadata().map_err(read_err)?.len();
            header.set_size(expected);
            let mut counted = CountingReader {
                inner: file.take(expected),
                count: 0,
            };
            tar.append_data(header, path, &mut counted)
                .map_err(write_err)?;
            if counted.count != expected {
                return Err(LayerError::InputChanged {
                    path: host.display().to_string(),
                    expected,
                    actual: counted.count,
                });
            }
            Ok(())
        }
        FileSource::ZipMember {
            archive,
            index,
            size,
        } => {
            let zip_err = |reason: String| LayerError::Zip {
                path: archive.display().to_string(),
                reason,
            };
            if !zips.contains_key(archive) {
                let file = File::open(archive).map_err(|e| LayerError::ReadInput {
                    path: archive.display().to_string(),
                    source: e,
                })?;
                zips.insert(
                    archive.clone(),
                    zip::ZipArchive::new(file).map_err(|e| zip_err(e.to_string()))?,
                );
            }
            let zip = zips.get_mut(archive).expect("inserted above");
            let member = zip.by_index(*index).map_err(|e| zip_err(e.to_string()))?;
            header.set_size(*size);
            // One byte past the declaration is enough to tell a lying entry.
            let mut counted = CountingReader {
                inner: member.take(size.saturating_add(1)),
                count: 0,
            };
            tar.append_data(header, path, &mut counted)
                .map_err(write_err)?;
            if counted.count != *size {
                return Err(LayerError::InputChanged {
                    path: archive.display().to_string(),
                    expected: *size,
                    actual: counted.count,
                });
            }
            Ok(())
        }
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
