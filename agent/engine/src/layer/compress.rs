//! The pinned layer compressor: gzip from zlib-rs at a fixed level, so equal tars give equal blobs.
//!
//! Digests depend on the exact compressed bytes, so codec, level and framing are part of the
//! image format: change any of them only together with a note in the README.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{self, Write};

/// The gzip level every patchfarm layer is written with (see README "Layer compression").
pub const GZIP_LEVEL: u32 = 1;

/// A gzip stream at [`GZIP_LEVEL`] with a fixed header (mtime 0, no name), over `inner`.
pub struct LayerCompressor<W: Write> {
    encoder: GzEncoder<W>,
}

impl<W: Write> LayerCompressor<W> {
    pub fn new(inner: W) -> Self {
        LayerCompressor {
            encoder: GzEncoder::new(inner, Compression::new(GZIP_LEVEL)),
        }
    }

    pub fn finish(self) -> io::Result<W> {
        self.encoder.finish()
    }
}

impl<W: Write> Write for LayerCompressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.encoder.flush()
    }
}
