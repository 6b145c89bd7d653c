//! Unpacking an installer archive (zip, tar or tar.gz) into a build directory, within the
//! archive limits: sizes and entry counts are measured as declared (a sparse tar entry by the
//! size it stands for, a zip by its central directory, refusing overlapping entries) and every
//! write lands beneath the destination without passing a link.

use crate::beneath;
use crate::limits::{check_zip, read_declared, ArchiveLimits, Budget};
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Unpacks `archive` into `dest`; the error is the reason, for the caller to name the archive.
/// Blocking.
pub fn unpack(archive: &Path, dest: &Path, limits: ArchiveLimits) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
    let mut head = [0u8; 4];
    let n = File::open(archive)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| e.to_string())?;
    let file = File::open(archive).map_err(|e| e.to_string())?;
    if n >= 4 && head == *b"PK\x03\x04" {
        unpack_zip(file, dest, limits)
    } else {
        let reader: Box<dyn Read> = if n >= 2 && head[..2] == [0x1f, 0x8b] {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 20,
                file,
            )))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, file))
        };
        unpack_tar(reader, dest, limits)
    }
}

fn unpack_tar(reader: impl Read, dest: &Path, limits: ArchiveLimits) -> Result<(), String> {
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(true);
    tar.set_preserve_mtime(false);
    tar.set_unpack_xattrs(false);
    let mut budget = Budget::new(limits);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a tar or tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("corrupt archive: {e}"))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // A sparse entry stores little and stands for its real size: that is what it costs.
        let real = match entry.header().as_gnu() {
            Some(gnu) if entry.header().entry_type().is_gnu_sparse() => {
                gnu.real_size().map_err(|e| format!("{name}: {e}"))?
            }
            _ => 0,
        };
        budget.take(&name, entry.size().max(real))?;
        // unpack_in refuses paths that would escape `dest`.
        if !entry
            .unpack_in(dest)
            .map_err(|e| format!("cannot unpack {name}: {e}"))?
        {
            return Err(format!(
                "{name} would land outside the installation directory"
            ));
        }
    }
    Ok(())
}

/// A link's target is a short path; anything longer is not one.
const MAX_LINK_TARGET: u64 = 4096;

fn unpack_zip(file: File, dest: &Path, limits: ArchiveLimits) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a valid zip: {e}"))?;
    check_zip(&mut zip, limits)?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("entry {i}"));
        let rel = entry
            .enclosed_name()
            .and_then(|p| p.to_str().map(|s| s.trim_end_matches('/').to_string()))
            .ok_or_else(|| format!("{name:?} would land outside the installation directory"))?;
        if rel.is_empty() {
            continue;
        }
        let fail = |e: std::io::Error| format!("cannot unpack {name}: {e}");
        if entry.is_dir() {
            beneath::mkdir(dest, &rel).map_err(fail)?;
        } else if entry.is_symlink() {
            let mut target = Vec::new();
            read_declared(&mut entry, MAX_LINK_TARGET, &mut target, &name).map_err(fail)?;
            let target = String::from_utf8(target)
                .map_err(|_| format!("{name}: the link's target is not UTF-8"))?;
            beneath::symlink(dest, &rel, &target).map_err(fail)?;
        } else {
            let declared = entry.size();
            let mode = entry.unix_mode().unwrap_or(0o644);
            let mut out = beneath::create(dest, &rel).map_err(fail)?;
            read_declared(&mut entry, declared, &mut out, &name).map_err(fail)?;
            // Permission bits only: setuid and setgid never come from an installer.
            out.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
                .map_err(fail)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::bombs::{overlapping_zip, sparse_tgz as sparse_bomb};
    use std::io::Write;

    #[test]
    fn a_sparse_tar_is_measured_by_the_size_it_stands_for() {
        let work = tempfile::tempdir().unwrap();
        let bomb = work.path().join("bomb.tar.gz");
        sparse_bomb(&bomb, 64 << 30);
        assert!(std::fs::metadata(&bomb).unwrap().len() < 2048);
        let dest = work.path().join("out");
        let e = unpack(&bomb, &dest, ArchiveLimits::default()).unwrap_err();
        assert!(
            e.contains("jdk/huge") && e.contains("more than 17179869184 bytes"),
            "{e}"
        );
        assert!(!dest.join("jdk/huge").exists(), "nothing of it was written");
        // Within the limit, the same construction unpacks to its real size.
        sparse_bomb(&bomb, 1 << 20);
        unpack(&bomb, &dest, ArchiveLimits::default()).unwrap();
        assert_eq!(
            std::fs::metadata(dest.join("jdk/huge")).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn overlapping_zip_entries_are_refused_before_anything_is_written() {
        let work = tempfile::tempdir().unwrap();
        let bomb = work.path().join("home.zip");
        overlapping_zip(&bomb, &[7u8; 4096], 50);
        let dest = work.path().join("out");
        let e = unpack(&bomb, &dest, ArchiveLimits::default()).unwrap_err();
        assert!(e.contains("overlap") && e.contains("f0000"), "{e}");
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        // The control: one copy is a plain zip and unpacks.
        overlapping_zip(&bomb, &[7u8; 4096], 1);
        unpack(&bomb, &dest, ArchiveLimits::default()).unwrap();
        assert_eq!(std::fs::read(dest.join("f0000")).unwrap(), [7u8; 4096]);
    }

    #[test]
    fn entry_counts_and_sizes_are_limited_and_named() {
        let work = tempfile::tempdir().unwrap();
        let path = work.path().join("many.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        for i in 0..10 {
            zip.start_file(format!("d/{i}"), zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(&[1u8; 100]).unwrap();
        }
        zip.finish().unwrap();
        let tight = |max_bytes, max_entries| ArchiveLimits {
            max_bytes,
            max_entries,
        };
        let e = unpack(&path, &work.path().join("a"), tight(1 << 20, 5)).unwrap_err();
        assert!(e.contains("more than 5 entries"), "{e}");
        let e = unpack(&path, &work.path().join("b"), tight(550, 100)).unwrap_err();
        assert!(
            e.contains("more than 550 bytes") && e.contains("d/5"),
            "{e}"
        );
        unpack(&path, &work.path().join("c"), tight(1000, 10)).unwrap();
    }

    #[test]
    fn a_zip_cannot_write_through_a_link_it_made() {
        let work = tempfile::tempdir().unwrap();
        let outside = work.path().join("host");
        std::fs::create_dir(&outside).unwrap();
        let path = work.path().join("linked.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.add_symlink("lib", outside.to_str().unwrap(), options)
            .unwrap();
        zip.start_file("lib/passwd", options).unwrap();
        zip.write_all(b"owned").unwrap();
        zip.finish().unwrap();
        let e = unpack(&path, &work.path().join("out"), ArchiveLimits::default()).unwrap_err();
        assert!(e.contains("lib is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
