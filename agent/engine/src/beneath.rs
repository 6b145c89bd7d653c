//! Files under a root directory, reached without following a symbolic link: an unpacked
//! installer is untrusted input, and a link inside it (`inventory/oneoffs -> /etc`) must not turn
//! a write into the build host's files, nor a read into the host's `/dev/zero` or a FIFO.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn refused(rel: &str, reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{rel} {reason}"))
}

/// The parts of `rel`, which must be a plain relative path (no `..`, `.` or empty parts).
fn parts(rel: &str) -> io::Result<Vec<&str>> {
    let parts: Vec<&str> = rel.split('/').collect();
    if rel.starts_with('/') || parts.iter().any(|p| matches!(*p, "" | "." | "..")) {
        return Err(refused(rel, "is not a plain relative path"));
    }
    Ok(parts)
}

/// Walks the directories of `dirs` under `root`, refusing links and non-directories; a missing
/// one is created (`create`) or ends the walk (`Ok(None)`).
fn walk(root: &Path, dirs: &[&str], create: bool) -> io::Result<Option<PathBuf>> {
    let mut path = root.to_path_buf();
    for (i, part) in dirs.iter().enumerate() {
        path.push(part);
        let shown = || dirs[..=i].join("/");
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refused(
                    &shown(),
                    "is a symbolic link; refusing to go through it",
                ))
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(refused(&shown(), "is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => std::fs::create_dir(&path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(path))
}

/// Opens the last part without following it (a link there is refused by the kernel).
fn open_leaf(options: &mut OpenOptions, path: &Path, rel: &str) -> io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(rel, "is a symbolic link; refusing to go through it"),
            _ => e,
        })
}

/// Creates (or truncates) the regular file `root/rel`, creating missing directories; refuses to
/// pass a link.
pub fn create(root: &Path, rel: &str) -> io::Result<File> {
    let parts = parts(rel)?;
    let (leaf, dirs) = parts.split_last().expect("split yields one part at least");
    let dir = walk(root, dirs, true)?.expect("created");
    let path = dir.join(leaf);
    let file = open_leaf(
        OpenOptions::new().write(true).create(true).truncate(true),
        &path,
        rel,
    )?;
    if !file.metadata()?.is_file() {
        return Err(refused(rel, "is not a regular file"));
    }
    Ok(file)
}

/// Writes `bytes` to `root/rel`, creating missing directories; refuses to pass a link.
pub fn write(root: &Path, rel: &str, bytes: &[u8]) -> io::Result<()> {
    create(root, rel)?.write_all(bytes)
}

/// Creates the directory `root/rel` and any missing above it; refuses to pass a link.
pub fn mkdir(root: &Path, rel: &str) -> io::Result<PathBuf> {
    let parts = parts(rel)?;
    Ok(walk(root, &parts, true)?.expect("created"))
}

/// Whether `root/rel` is a directory reached without passing a link.
pub fn is_dir(root: &Path, rel: &str) -> bool {
    parts(rel)
        .ok()
        .and_then(|parts| walk(root, &parts, false).ok().flatten())
        .is_some()
}

/// Creates the link `root/rel` -> `target` (the link itself is never followed here; what reads
/// the tree later resolves it beneath the root or refuses it).
pub fn symlink(root: &Path, rel: &str, target: &str) -> io::Result<()> {
    let parts = parts(rel)?;
    let (leaf, dirs) = parts.split_last().expect("split yields one part at least");
    let dir = walk(root, dirs, true)?.expect("created");
    let path = dir.join(leaf);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(refused(rel, "appears twice in the archive"));
    }
    std::os::unix::fs::symlink(target, path)
}

/// Reads `root/rel` if it exists; a link on the way or a file that is not a regular one (a
/// FIFO, a device) is an error naming it.
pub fn read(root: &Path, rel: &str) -> io::Result<Option<Vec<u8>>> {
    let parts = parts(rel)?;
    let (leaf, dirs) = parts.split_last().expect("split yields one part at least");
    let Some(dir) = walk(root, dirs, false)? else {
        return Ok(None);
    };
    let mut file = match open_leaf(OpenOptions::new().read(true), &dir.join(leaf), rel) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused(rel, "is not a regular file"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_beneath_the_root_and_never_through_a_link() {
        let work = tempfile::tempdir().unwrap();
        let (root, outside) = (work.path().join("home"), work.path().join("host"));
        std::fs::create_dir_all(root.join("inventory")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("passwd"), b"host").unwrap();

        write(
            &root,
            "inventory/oneoffs/1/etc/config/inventory.xml",
            b"<x/>",
        )
        .unwrap();
        assert_eq!(
            read(&root, "inventory/oneoffs/1/etc/config/inventory.xml").unwrap(),
            Some(b"<x/>".to_vec())
        );
        assert_eq!(read(&root, "inventory/none/x").unwrap(), None);

        // A linked directory on the way: refused, nothing created where it points.
        std::os::unix::fs::symlink(&outside, root.join("inventory/linked")).unwrap();
        let e = write(&root, "inventory/linked/2/inventory.xml", b"<x/>").unwrap_err();
        assert!(
            e.to_string()
                .contains("inventory/linked is a symbolic link"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        assert!(read(&root, "inventory/linked/passwd").is_err());

        // A linked leaf: refused, the host file keeps its content.
        std::os::unix::fs::symlink(outside.join("passwd"), root.join("inventory/leaf")).unwrap();
        let e = write(&root, "inventory/leaf", b"owned").unwrap_err();
        assert!(
            e.to_string().contains("inventory/leaf is a symbolic link"),
            "{e}"
        );
        assert!(read(&root, "inventory/leaf").is_err());
        assert_eq!(std::fs::read(outside.join("passwd")).unwrap(), b"host");

        // A FIFO is not read (it would block), and paths must stay plain.
        let fifo = root.join("inventory/fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read(&root, "inventory/fifo").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(write(&root, "../x", b"").is_err());
        assert!(write(&root, "/etc/x", b"").is_err());
    }
}
