//! The pinned layer compressor: gzip from zlib-rs at a fixed level, deflated in fixed 1 MiB
//! blocks on every core at once, as pigz does. Each block is deflated on its own with the 32 KiB
//! before it as dictionary and ends with a sync flush, so the blocks joined in order are one
//! deflate stream that any gzip reader takes; the blob depends only on the tar's bytes, never on
//! how many threads ran or how the caller's writes fell.
//!
//! Digests depend on the exact compressed bytes, so codec, level and framing are part of the
//! image format: change any of them only together with a note in the README.

use flate2::{Compress, Compression, FlushCompress};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The gzip level every patchfarm layer is written with (see README "Layer compression").
pub const GZIP_LEVEL: u32 = 6;

/// Bytes deflated as one block; with the queue depths this bounds memory.
const CHUNK: usize = 1 << 20;
/// What deflate may refer back to: the tail of the previous block primes the next.
const WINDOW: usize = 32 << 10;
/// gzip's member header as flate2 writes it: deflate, no flags, mtime 0, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

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

struct Deflated {
    index: u64,
    bytes: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
}

/// `data` deflated with `dictionary` as the window before it, ending on a byte boundary (sync
/// flush) so the next block can follow it in the same stream.
fn deflate_block(dictionary: &[u8], data: &[u8]) -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(Compression::new(GZIP_LEVEL), false);
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
    let mut deflate = Compress::new(Compression::new(GZIP_LEVEL), false);
    let mut out = Vec::with_capacity(64);
    deflate
        .compress_vec(&[], &mut out, FlushCompress::Finish)
        .map_err(io::Error::other)?;
    Ok(out)
}

fn deflate_worker(blocks: Arc<Mutex<Receiver<Block>>>, done: SyncSender<io::Result<Deflated>>) {
    loop {
        let next = blocks.lock().map(|queue| queue.recv());
        let Ok(Ok(block)) = next else { return };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&block.data);
        let result = deflate_block(&block.dictionary, &block.data).map(|bytes| Deflated {
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

/// Writes the header, the blocks in order as they come back, the final block and the trailer.
fn write_stream<W: Write>(mut out: W, done: Receiver<io::Result<Deflated>>) -> io::Result<W> {
    out.write_all(&GZIP_HEADER)?;
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
    out.write_all(&final_block()?)?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    // gzip's ISIZE: the length modulo 2^32.
    out.write_all(&(len as u32).to_le_bytes())?;
    Ok(out)
}

/// A gzip stream at [`GZIP_LEVEL`] written to `W` by worker threads while the caller's thread
/// keeps producing the tar.
pub struct LayerCompressor<W: Write + Send + 'static> {
    buffer: Vec<u8>,
    /// The last [`WINDOW`] bytes of the block sent before: the next block's dictionary.
    window: Vec<u8>,
    sent: u64,
    blocks: Option<SyncSender<Block>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> LayerCompressor<W> {
    pub fn new(inner: W) -> Self {
        Self::with_threads(inner, threads())
    }

    fn with_threads(inner: W, threads: usize) -> Self {
        let (blocks, queue) = sync_channel::<Block>(threads * 2);
        let (done, finished) = sync_channel::<io::Result<Deflated>>(threads * 2);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|i| {
                let (queue, done) = (queue.clone(), done.clone());
                std::thread::Builder::new()
                    .name(format!("layer-gzip-{i}"))
                    .spawn(move || deflate_worker(queue, done))
                    .expect("spawn a compressor thread")
            })
            .collect();
        drop(done);
        let writer = std::thread::Builder::new()
            .name("layer-gzip-out".into())
            .spawn(move || write_stream(inner, finished))
            .expect("spawn the compressor's writer thread");
        LayerCompressor {
            buffer: Vec::with_capacity(CHUNK),
            window: Vec::new(),
            sent: 0,
            blocks: Some(blocks),
            workers,
            writer: Some(writer),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let dictionary = std::mem::replace(
            &mut self.window,
            data[data.len().saturating_sub(WINDOW)..].to_vec(),
        );
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

    /// Sends the last block, ends the gzip stream and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buffer.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for LayerCompressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let n = room.min(buf.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK {
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

    fn compress_in_pieces(data: &[u8], piece: usize) -> Vec<u8> {
        let mut c = LayerCompressor::new(Vec::new());
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
        let a = compress_in_pieces(&data, 77_777);
        assert_eq!(a, compress_in_pieces(&data, 512));
        assert_eq!(a, compress_in_pieces(&data, data.len()));
        for threads in [1, 3] {
            let mut c = LayerCompressor::with_threads(Vec::new(), threads);
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
        let mut c = LayerCompressor::new(Vec::new());
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
        let empty = LayerCompressor::new(Vec::new()).finish().unwrap();
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
        let mut c = LayerCompressor::new(Broken);
        let mut result = Ok(());
        for _ in 0..64 {
            result = c.write_all(&[7u8; CHUNK]);
            if result.is_err() {
                break;
            }
        }
        let err = result.err().or_else(|| c.finish().err()).expect("an error");
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
