//! The RPM database an image carries, read without running rpm: which package owns a file, as
//! `rpm -qf` answers (WIT's inspect prints it as `os.releasePackage`). rpm kept it in Berkeley DB
//! (`Packages`) until 4.16 (OL7, OL8) and in SQLite (`rpmdb.sqlite`) since (OL9); both hold the
//! same header blobs.

mod bdb;
mod header;
mod sqlite;

pub use bdb::BdbError;
pub use header::{Header, HeaderError};
pub use sqlite::SqliteError;

/// Where rpm keeps its database, and in which format, newest layout first: an image converted
/// from Berkeley DB to SQLite may still carry its old `Packages`.
pub const DATABASE_FILES: [(&str, Format); 4] = [
    ("usr/lib/sysimage/rpm/rpmdb.sqlite", Format::Sqlite),
    ("var/lib/rpm/rpmdb.sqlite", Format::Sqlite),
    ("usr/lib/sysimage/rpm/Packages", Format::BerkeleyDb),
    ("var/lib/rpm/Packages", Format::BerkeleyDb),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    BerkeleyDb,
    Sqlite,
}

#[derive(Debug, thiserror::Error)]
pub enum RpmDbError {
    #[error("Berkeley DB: {0}")]
    Bdb(#[from] BdbError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] SqliteError),
    #[error("package record {record}: {source}")]
    Header { record: usize, source: HeaderError },
}

/// The installed packages.
#[derive(Debug)]
pub struct RpmDb {
    packages: Vec<Header>,
}

impl RpmDb {
    /// Reads a database file's bytes; `wal` is SQLite's write-ahead log beside it, if any.
    /// Blocking (SQLite reads a file): call it off the async threads.
    pub fn read(format: Format, bytes: &[u8], wal: Option<&[u8]>) -> Result<Self, RpmDbError> {
        let blobs = match format {
            Format::Sqlite => sqlite::headers(bytes, wal)?,
            // Record 0 is rpm's counter of header numbers, not a package.
            Format::BerkeleyDb => bdb::HashDb::open(bytes)?
                .records()?
                .into_iter()
                .filter(|(key, _)| key.iter().any(|&b| b != 0))
                .map(|(_, value)| value)
                .collect(),
        };
        let packages = blobs
            .iter()
            .enumerate()
            .map(|(record, blob)| {
                Header::parse(blob).map_err(|source| RpmDbError::Header { record, source })
            })
            .collect::<Result<_, _>>()?;
        Ok(RpmDb { packages })
    }

    pub fn packages(&self) -> &[Header] {
        &self.packages
    }

    /// `rpm -qf PATH`'s first line: the package owning `path` (absolute), if one does.
    pub fn owner_of(&self, path: &str) -> Option<&Header> {
        self.packages.iter().find(|p| p.owns(path))
    }
}
