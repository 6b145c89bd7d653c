//! How much an archive may expand to: installers and patches are untrusted input, and a small
//! file can declare terabytes (a sparse tar entry) or reuse one compressed stream for thousands
//! of entries (an overlapping zip). Every archive is measured by what it declares before a byte
//! is written, and every read is held to its declaration.

use std::io::{Read, Seek};

/// 16 GiB: several times a full Fusion Middleware Infrastructure home (about 4 GiB unpacked).
pub const DEFAULT_MAX_BYTES: u64 = 16 << 30;
/// A full Infrastructure home holds about 150,000 files.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

/// Limits for one archive, from `PATCHFARM_MAX_UNPACKED_BYTES` and
/// `PATCHFARM_MAX_ARCHIVE_ENTRIES` when set, else the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

impl ArchiveLimits {
    pub fn from_env() -> Result<Self, String> {
        let read = |name: &str, default: u64| match std::env::var(name) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}={text:?}: expected a positive whole number")),
            Err(_) => Ok(default),
        };
        Ok(ArchiveLimits {
            max_bytes: read("PATCHFARM_MAX_UNPACKED_BYTES", DEFAULT_MAX_BYTES)?,
            max_entries: read("PATCHFARM_MAX_ARCHIVE_ENTRIES", DEFAULT_MAX_ENTRIES)?,
        })
    }
}

/// Running totals against the limits, entry by entry.
pub struct Budget {
    limits: ArchiveLimits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    pub fn new(limits: ArchiveLimits) -> Self {
        Budget {
            limits,
            bytes: 0,
            entries: 0,
        }
    }

    /// Counts one entry of `size` bytes (as declared); the error names it and the limit.
    pub fn take(&mut self, name: &str, size: u64) -> Result<(), String> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.entries > self.limits.max_entries {
            return Err(format!(
                "holds more than {} entries (at {name}); raise PATCHFARM_MAX_ARCHIVE_ENTRIES if it is genuine",
                self.limits.max_entries
            ));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(format!(
                "would unpack to more than {} bytes (at {name}, declaring {size} bytes); raise PATCHFARM_MAX_UNPACKED_BYTES if it is genuine",
                self.limits.max_bytes
            ));
        }
        Ok(())
    }
}

/// Measures a zip before anything is read from it: entries, declared sizes, and that no two
/// entries share bytes (a zip bomb's overlapping entries expand one stream many times).
pub fn check_zip<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    limits: ArchiveLimits,
) -> Result<(), String> {
    let mut budget = Budget::new(limits);
    let mut spans = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| format!("entry {i}: {e}"))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("entry {i}"));
        budget.take(&name, entry.size())?;
        let start = entry.header_start();
        let end = entry
            .data_start()
            .unwrap_or(start)
            .saturating_add(entry.compressed_size());
        spans.push((start, end, name));
    }
    spans.sort();
    for pair in spans.windows(2) {
        let ((_, end, first), (next, _, second)) = (&pair[0], &pair[1]);
        if next < end {
            return Err(format!(
                "entries {first:?} and {second:?} overlap in the file (a zip bomb's construction); refusing it"
            ));
        }
    }
    Ok(())
}

/// A reader held to its declared size: more bytes than declared is an error, not more output.
pub fn read_declared(
    reader: impl Read,
    declared: u64,
    out: &mut impl std::io::Write,
    name: &str,
) -> std::io::Result<u64> {
    let mut limited = reader.take(declared.saturating_add(1));
    let copied = std::io::copy(&mut limited, out)?;
    if copied > declared {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{name} holds more than the {declared} bytes it declares"),
        ));
    }
    Ok(copied)
}

/// Hostile archives built on purpose, for the engine's tests, the hostile-input corpus and the
/// safety benchmark (one home, so all three test the same construction).
#[doc(hidden)]
pub mod bombs {
    use std::fs::File;
    use std::io::Write;
    use std::path::Path;

    /// A tar.gz holding one GNU sparse file that stores 512 bytes and stands for `real` bytes.
    pub fn sparse_tgz(path: &Path, real: u64) {
        let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), Default::default());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_mode(0o644);
        header.set_size(512);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.set_real_size(real);
        gnu.sparse[0].set_offset(real - 512);
        gnu.sparse[0].set_length(512);
        header.set_path("jdk/huge").unwrap();
        header.set_cksum();
        tar.append(&header, &[0u8; 512][..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }

    /// A zip whose central directory lists one stored member `copies` times under other names:
    /// every entry expands the same bytes (the overlapping construction of zip bombs).
    pub fn overlapping_zip(path: &Path, member: &[u8], copies: usize) {
        let mut plain = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        plain
            .start_file("f0000", zip::write::SimpleFileOptions::default())
            .unwrap();
        plain.write_all(member).unwrap();
        let bytes = plain.finish().unwrap().into_inner();
        let eocd = bytes.len() - 22;
        let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let (cd_size, cd_offset) = (le32(eocd + 12), le32(eocd + 16));
        let record = &bytes[cd_offset..cd_offset + cd_size];
        let mut out = bytes[..cd_offset].to_vec();
        for i in 0..copies {
            let mut copy = record.to_vec();
            copy[46..51].copy_from_slice(format!("f{i:04}").as_bytes());
            out.extend_from_slice(&copy);
        }
        let mut end = bytes[eocd..].to_vec();
        end[8..10].copy_from_slice(&(copies as u16).to_le_bytes());
        end[10..12].copy_from_slice(&(copies as u16).to_le_bytes());
        end[12..16].copy_from_slice(&((cd_size * copies) as u32).to_le_bytes());
        out.extend_from_slice(&end);
        std::fs::write(path, out).unwrap();
    }
}
