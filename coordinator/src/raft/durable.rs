//! What makes a flushed Ready survive a power cut, not only `kill -9`: sled 0.34 writes its log
//! with `pwrite` and `sync_file_range`, which starts and waits for writeback of those pages but
//! neither persists the file's size nor flushes the drive's write cache, and it writes values
//! too big for a log segment (a batch of submissions, a job with a long log) to files under
//! `blobs/` without syncing them at all. After each flush the node calls [`DurableFlush::sync`]:
//! `fdatasync` of the log file (any descriptor of the file will do), then `fsync` of every blob
//! file not synced before and of the `blobs/` directory that names them. Only then do votes and
//! acknowledgements leave the node.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

pub struct DurableFlush {
    log: File,
    blobs: PathBuf,
    /// Blob files already synced (sled never rewrites one in place; it removes it).
    synced: HashSet<OsString>,
}

impl DurableFlush {
    /// For the sled database at `dir` (already opened by sled).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        Ok(DurableFlush {
            log: File::open(dir.join("db"))?,
            blobs: dir.join("blobs"),
            synced: HashSet::new(),
        })
    }

    /// Makes everything sled flushed so far durable. Blocking: call off the async threads.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.log.sync_data()?;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.synced.clear();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry?.file_name();
            if !self.synced.contains(&name) {
                match File::open(self.blobs.join(&name)) {
                    Ok(file) => file.sync_all()?,
                    // Removed by sled's compaction meanwhile: nothing left to keep.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&self.blobs)?.sync_all()?;
        }
        self.synced = present;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_files_are_synced_once_and_forgotten_when_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .flush_every_ms(None)
            .open()
            .unwrap();
        // Over a quarter of sled's 512 KiB segment: stored as a blob file.
        db.insert(b"big", vec![7u8; 300 << 10]).unwrap();
        db.flush().unwrap();
        let mut durable = DurableFlush::open(dir.path()).unwrap();
        durable.sync().unwrap();
        assert_eq!(
            durable.synced.len(),
            1,
            "one blob file: {:?}",
            durable.synced
        );
        durable.sync().unwrap();
        assert_eq!(durable.synced.len(), 1);
        db.remove(b"big").unwrap();
        db.flush().unwrap();
        std::fs::remove_dir_all(dir.path().join("blobs")).unwrap();
        durable.sync().unwrap();
        assert!(durable.synced.is_empty());
    }
}
