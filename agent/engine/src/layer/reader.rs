//! Opening a layer blob as a tar stream, whatever its compression (gzip and zstd detected by
//! magic).

use super::LayerError;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Opens a layer blob file for reading as tar (gzip, zstd or uncompressed).
pub fn open(
    path: &Path,
    digest: &str,
    media_type: &str,
) -> Result<tar::Archive<Box<dyn Read + Send>>, LayerError> {
    let corrupt = |reason: String| LayerError::Corrupt {
        digest: digest.into(),
        reason,
    };
    let file = File::open(path).map_err(|e| corrupt(e.to_string()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf().map_err(|e| corrupt(e.to_string()))?;
    let stream: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // Every frame in turn: patchfarm's zstd layers are one frame per block.
        let decoder = zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| {
            LayerError::UnsupportedMediaType {
                digest: digest.into(),
                media_type: format!("{media_type} ({e})"),
            }
        })?;
        Box::new(decoder)
    } else {
        Box::new(reader)
    };
    Ok(tar::Archive::new(stream))
}

/// A tar entry path as an image path: no `./`, no leading or trailing `/`.
pub fn normalize(raw: &str) -> String {
    raw.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}
