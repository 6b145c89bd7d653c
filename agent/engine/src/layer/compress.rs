//! The pinned layer compressor: gzip from zlib-rs at a fixed level, fed in fixed 1 MiB chunks
//! on its own thread. zlib-rs output depends on where input boundaries fall, so the fixed chunks
//! are what make equal tars give equal blobs; the thread lets tar building overlap compression.
//!
//! Digests depend on the exact compressed bytes, so codec, level and framing are part of the
//! image format: change any of them only together with a note in the README.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// The gzip level every patchfarm layer is written with (see README "Layer compression").
pub const GZIP_LEVEL: u32 = 6;

/// Bytes handed to the compressor thread at a time; with [`QUEUE_DEPTH`] this bounds memory.
const CHUNK: usize = 1 << 20;
const QUEUE_DEPTH: usize = 4;

/// A gzip stream at [`GZIP_LEVEL`] (fixed header: mtime 0, no name) written to `W` by a worker
/// thread. The caller's thread keeps producing the tar while the previous chunk compresses.
pub struct LayerCompressor<W: Write + Send + 'static> {
    buffer: Vec<u8>,
    chunks: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> LayerCompressor<W> {
    pub fn new(inner: W) -> Self {
        let (chunks, incoming) = sync_channel::<Vec<u8>>(QUEUE_DEPTH);
        let (recycle, spare) = sync_channel::<Vec<u8>>(QUEUE_DEPTH + 2);
        let worker = std::thread::Builder::new()
            .name("layer-gzip".into())
            .spawn(move || {
                let mut encoder = GzEncoder::new(inner, Compression::new(GZIP_LEVEL));
                for mut chunk in incoming {
                    encoder.write_all(&chunk)?;
                    chunk.clear();
                    let _ = recycle.try_send(chunk); // reuse buffers; dropping one is fine
                }
                encoder.finish()
            })
            .expect("spawn the compressor thread");
        LayerCompressor {
            buffer: Vec::with_capacity(CHUNK),
            chunks: Some(chunks),
            spare,
            worker: Some(worker),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buffer, next);
        let sent = self.chunks.as_ref().expect("not finished").send(full);
        if sent.is_err() {
            // The worker stopped early: its error says why.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("layer compressor stopped")));
        }
        Ok(())
    }

    fn join(&mut self) -> io::Result<W> {
        self.chunks = None;
        match self.worker.take() {
            Some(worker) => worker
                .join()
                .map_err(|_| io::Error::other("layer compressor panicked"))?,
            None => Err(io::Error::other("layer compressor already finished")),
        }
    }

    /// Flushes the last chunk, ends the gzip stream and returns the inner writer.
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
        Ok(()) // chunks go out when full or at finish; a gzip sync flush would change the bytes
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
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data, "one valid gzip stream");
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
