//! The pinned layer compressors, both cut into fixed blocks compressed on every core at once,
//! so a blob depends only on the tar's bytes, never on how many threads ran or how the
//! caller's writes fell:
//! - gzip (the default) from zlib-rs at a fixed level in 1 MiB blocks, as pigz does: each block
//!   is deflated with the 32 KiB before it as dictionary and ends with a sync flush, so the
//!   blocks joined in order are one deflate stream that any gzip reader takes;
//! - zstd (opt-in, `--compression zstd`) at a fixed level in 4 MiB blocks, each its own zstd
//!   frame with a checksum; concatenated frames are one zstd stream to every reader.
//!
//! Digests depend on the exact compressed bytes, so codec, level and framing are part of the
//! image format: change any of them only together with a note in the README.

use flate2::{Compress, FlushCompress};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The gzip level every gzip layer is written with (see README "Layer compression").
pub const GZIP_LEVEL: u32 = 6;
/// The zstd level every zstd layer is written with.
pub const ZSTD_LEVEL: i32 = 3;

/// What deflate may refer back to: the tail of the previous block primes the next.
const WINDOW: usize = 32 << 10;
/// gzip's member header as flate2 writes it: deflate, no flags, mtime 0, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// How a layer's tar is compressed: part of the image format (media type and digest).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI layer media type of a blob written so.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => crate::image::media::OCI_LAYER_GZIP,
            Compression::Zstd => crate::image::media::OCI_LAYER_ZSTD,
        }
    }

    pub fn is_gzip(&self) -> bool {
        *self == Compression::Gzip
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// Codec, level and framing in words: what a built layer's fingerprint depends on.
    pub fn format(self) -> String {
        match self {
            Compression::Gzip => format!(
                "gzip level {GZIP_LEVEL}, blocks {} KiB, dictionary {} KiB",
                self.block() >> 10,
                WINDOW >> 10
            ),
            Compression::Zstd => format!(
                "zstd {} level {ZSTD_LEVEL}, frames of {} KiB with checksums",
                zstd::zstd_safe::version_string(),
                self.block() >> 10
            ),
        }
    }

    /// Bytes compressed as one block; with the queue depths this bounds memory.
    fn block(self) -> usize {
        match self {
            Compression::Gzip => 1 << 20,
            Compression::Zstd => 4 << 20,
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "'{other}' is not a layer compression (gzip or zstd)"
            )),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Compressor threads: one per core, at most eight (past that the disk is the limit).
fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

struct Block {
    index: u64,
    dictionary: Vec<u8>,
    data: Vec<u8>,
}

struct Compressed {
    index: u64,
    bytes: Vec<u8>,
    /// The block's CRC-32 (gzip's trailer needs it; zstd frames carry their own checksum).
    crc: crc32fast::Hasher,
    len: u64,
}

/// `data` deflated with `dictionary` as the window before it, ending on a byte boundary (sync
/// flush) so the next block can follow it in the same stream.
fn deflate_block(dictionary: &[u8], data: &[u8]) -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    if !dictionary.is_empty() {
        deflate
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 1024);
    loop {
        let consumed = deflate.total_in() as usize;
        deflate
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // The flush is complete once all input is taken and output space was left over.
        if deflate.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(64 << 10);
    }
}

/// The empty final block that ends the deflate stream.
fn final_block() -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    let mut out = Vec::with_capacity(64);
    deflate
        .compress_vec(&[], &mut out, FlushCompress::Finish)
        .map_err(io::Error::other)?;
    Ok(out)
}

fn compress_worker(
    codec: Compression,
    blocks: Arc<Mutex<Receiver<Block>>>,
    done: SyncSender<io::Result<Compressed>>,
) {
    let mut zstd = match codec {
        Compression::Zstd => match zstd_frames() {
            Ok(compressor) => Some(compressor),
            Err(e) => {
                let _ = done.send(Err(e));
                return;
            }
        },
        Compression::Gzip => None,
    };
    loop {
        let next = blocks.lock().map(|queue| queue.recv());
        let Ok(Ok(block)) = next else { return };
        let mut crc = crc32fast::Hasher::new();
        let bytes = match zstd.as_mut() {
            Some(frames) => frames.compress(&block.data),
            None => {
                crc.update(&block.data);
                deflate_block(&block.dictionary, &block.data)
            }
        };
        let result = bytes.map(|bytes| Compressed {
            index: block.index,
            bytes,
            crc,
            len: block.data.len() as u64,
        });
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return;
        }
    }
}

/// A zstd context that writes each block as a whole frame with its size and checksum.
fn zstd_frames() -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut frames = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
    frames.include_checksum(true)?;
    frames.include_contentsize(true)?;
    Ok(frames)
}

/// Writes the blocks in order as they come back; for gzip also the header, the final block and
/// the trailer.
fn write_stream<W: Write>(
    codec: Compression,
    mut out: W,
    done: Receiver<io::Result<Compressed>>,
) -> io::Result<W> {
    if codec == Compression::Gzip {
        out.write_all(&GZIP_HEADER)?;
    }
    let (mut next, mut waiting) = (0u64, BTreeMap::new());
    let (mut crc, mut len) = (crc32fast::Hasher::new(), 0u64);
    for result in done {
        let block = result?;
        waiting.insert(block.index, block);
        while let Some(block) = waiting.remove(&next) {
            out.write_all(&block.bytes)?;
            crc.combine(&block.crc);
            len += block.len;
            next += 1;
        }
    }
    if !waiting.is_empty() {
        return Err(io::Error::other("a layer compressor thread stopped early"));
    }
    if codec == Compression::Zstd {
        return Ok(out);
    }
    out.write_all(&final_block()?)?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    // gzip's ISIZE: the length modulo 2^32.
    out.write_all(&(len as u32).to_le_bytes())?;
    Ok(out)
}

/// A gzip or zstd stream written to `W` by worker threads while the caller's thread keeps
/// producing the tar.
pub struct LayerCompressor<W: Write + Send + 'static> {
    codec: Compression,
    buffer: Vec<u8>,
    /// The last [`WINDOW`] bytes of the block sent before: the next block's dictionary.
    window: Vec<u8>,
    sent: u64,
    blocks: Option<SyncSender<Block>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> LayerCompressor<W> {
    pub fn new(inner: W, codec: Compression) -> Self {
        Self::with_threads(inner, codec, threads())
    }

    fn with_threads(inner: W, codec: Compression, threads: usize) -> Self {
        let (blocks, queue) = sync_channel::<Block>(threads * 2);
        let (done, finished) = sync_channel::<io::Result<Compressed>>(threads * 2);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|i| {
                let (queue, done) = (queue.clone(), done.clone());
                std::thread::Builder::new()
                    .name(format!("layer-{codec}-{i}"))
                    .spawn(move || compress_worker(codec, queue, done))
                    .expect("spawn a compressor thread")
            })
            .collect();
        drop(done);
        let writer = std::thread::Builder::new()
            .name(format!("layer-{codec}-out"))
            .spawn(move || write_stream(codec, inner, finished))
            .expect("spawn the compressor's writer thread");
        LayerCompressor {
            codec,
            buffer: Vec::with_capacity(codec.block()),
            window: Vec::new(),
            sent: 0,
            blocks: Some(blocks),
            workers,
            writer: Some(writer),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.codec.block()));
        // zstd frames stand alone: no dictionary.
        let tail = match self.codec {
            Compression::Gzip => data[data.len().saturating_sub(WINDOW)..].to_vec(),
            Compression::Zstd => Vec::new(),
        };
        let dictionary = std::mem::replace(&mut self.window, tail);
        let block = Block {
            index: self.sent,
            dictionary,
            data,
        };
        self.sent += 1;
        if self
            .blocks
            .as_ref()
            .expect("not finished")
            .send(block)
            .is_err()
        {
            // Every worker stopped: the writer's error says why.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("layer compressor stopped")));
        }
        Ok(())
    }

    fn join(&mut self) -> io::Result<W> {
        self.blocks = None;
        for worker in self.workers.drain(..) {
            worker
                .join()
                .map_err(|_| io::Error::other("layer compressor panicked"))?;
        }
        match self.writer.take() {
            Some(writer) => writer
                .join()
                .map_err(|_| io::Error::other("layer compressor panicked"))?,
            None => Err(io::Error::other("layer compressor already finished")),
        }
    }

    /// Sends the last block, ends the stream and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty zstd stream is still one (empty) frame.
        if !self.buffer.is_empty() || (self.sent == 0 && self.codec == Compression::Zstd) {
            self.send()?;
        }
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for LayerCompressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let block = self.codec.block();
        let n = (block - self.buffer.len()).min(buf.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == block {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // blocks go out when full or at finish: only the tar's bytes decide them
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const CHUNK: usize = 1 << 20;

    fn compress_in_pieces(data: &[u8], piece: usize, codec: Compression) -> Vec<u8> {
        let mut c = LayerCompressor::new(Vec::new(), codec);
        for p in data.chunks(piece) {
            c.write_all(p).unwrap();
        }
        c.finish().unwrap()
    }

    #[test]
    fn bytes_depend_only_on_the_input_not_on_how_it_was_written() {
        // zlib-rs output depends on input boundaries; fixed chunks make it a function of the bytes.
        let data: Vec<u8> = (0..5_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
            .collect();
        let gzip = Compression::Gzip;
        let a = compress_in_pieces(&data, 77_777, gzip);
        assert_eq!(a, compress_in_pieces(&data, 512, gzip));
        assert_eq!(a, compress_in_pieces(&data, data.len(), gzip));
        for threads in [1, 3, 4] {
            let mut c = LayerCompressor::with_threads(Vec::new(), gzip, threads);
            c.write_all(&data).unwrap();
            assert_eq!(a, c.finish().unwrap(), "{threads} threads");
        }
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data, "one valid gzip stream");
    }

    #[test]
    fn zstd_bytes_depend_only_on_the_input_and_read_back_as_one_stream() {
        // Over 4 MiB blocks three times, so several frames run on several threads.
        let data: Vec<u8> = (0..13_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
            .collect();
        let zstd = Compression::Zstd;
        let a = compress_in_pieces(&data, 65_536, zstd);
        assert_eq!(a, compress_in_pieces(&data, 999, zstd));
        for threads in [1, 4] {
            let mut c = LayerCompressor::with_threads(Vec::new(), zstd, threads);
            c.write_all(&data).unwrap();
            assert_eq!(a, c.finish().unwrap(), "{threads} threads");
        }
        assert!(a.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "a zstd frame");
        assert!(a.len() < data.len() / 20, "compressed: {} bytes", a.len());
        let mut back = Vec::new();
        zstd::stream::read::Decoder::new(&a[..])
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data, "the frames read back as one stream");
        // A gzip blob of the same bytes differs: the codec is part of the format.
        assert_ne!(a, compress_in_pieces(&data, 65_536, Compression::Gzip));
        let empty = LayerCompressor::new(Vec::new(), zstd).finish().unwrap();
        assert_eq!(zstd::stream::decode_all(&empty[..]).unwrap(), b"");
    }

    #[test]
    fn a_block_refers_back_into_the_one_before_and_empty_input_is_valid() {
        // Incompressible bytes, then their last 16 KiB again as the next block's start: only
        // the previous block's tail as dictionary lets deflate find that repeat.
        let mut state = 0x2545_f491_u64;
        let random: Vec<u8> = (0..CHUNK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut c = LayerCompressor::new(Vec::new(), Compression::Gzip);
        c.write_all(&random).unwrap();
        c.write_all(&random[CHUNK - WINDOW / 2..]).unwrap();
        let blob = c.finish().unwrap();
        assert!(
            blob.len() < CHUNK + WINDOW / 8,
            "{} bytes: the repeat was not found",
            blob.len()
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back.len(), CHUNK + WINDOW / 2);
        assert_eq!(&back[CHUNK..], &random[CHUNK - WINDOW / 2..]);
        let empty = LayerCompressor::new(Vec::new(), Compression::Gzip)
            .finish()
            .unwrap();
        let mut none = Vec::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_end(&mut none)
            .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_failing_writer_surfaces_its_error() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut c = LayerCompressor::new(Broken, Compression::Zstd);
        let mut result = Ok(());
        for _ in 0..64 {
            result = c.write_all(&[7u8; 4 * CHUNK]);
            if result.is_err() {
                break;
            }
        }
        let err = result.err().or_else(|| c.finish().err()).expect("an error");
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
