//! The extended attributes layers carry, read and written on the host without following a link:
//! file capabilities (kept in layers as PAX `SCHILY.xattr.*` records) and overlayfs' opaque
//! marker (how a step's upper directory, or a layer written out as a directory, says "replaced").

use std::ffi::CString;
use std::path::Path;

/// The extended attributes a layer keeps: file capabilities (`ping`'s `cap_net_raw`, say),
/// without which a program a package installed does not work.
pub const KEPT: &[&str] = &["security.capability"];

/// overlayfs' marker on a directory that hides everything below it in lower layers.
pub const OPAQUE: &str = "trusted.overlay.opaque";

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("paths hold no NUL")
}

/// The value of `name` on `path` (up to 256 bytes), if set.
pub fn get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c_name = CString::new(name).ok()?;
    let mut value = vec![0u8; 256];
    // SAFETY: valid path, name and buffer; lgetxattr writes at most value.len() bytes.
    let n = unsafe {
        libc::lgetxattr(
            c_path(path).as_ptr(),
            c_name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (n > 0).then(|| {
        value.truncate(n as usize);
        value
    })
}

/// Sets `name` on `path` to `value`.
pub fn set(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let name = CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: valid NUL-terminated path and name; value is read for value.len() bytes.
    let status = unsafe {
        libc::lsetxattr(
            c_path(path).as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether `path` is an overlayfs opaque directory.
pub fn is_opaque(path: &Path) -> bool {
    get(path, OPAQUE).is_some_and(|v| v.first() == Some(&b'y'))
}
