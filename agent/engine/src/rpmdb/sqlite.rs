//! rpm's SQLite database (rpm 4.16 and later: OL9, Fedora), `rpmdb.sqlite`: the `Packages`
//! table's header blobs. SQLite reads a file, so the image's copy (and its write-ahead log, which
//! may hold the newest transactions) is written to a private directory first.

use rusqlite::{Connection, OpenFlags};

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("copying it out of the image: {0}")]
    Copy(#[from] std::io::Error),
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Every package header in `Packages`, in install order.
pub fn headers(database: &[u8], wal: Option<&[u8]>) -> Result<Vec<Vec<u8>>, SqliteError> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("rpmdb.sqlite");
    std::fs::write(&path, database)?;
    if let Some(wal) = wal {
        std::fs::write(dir.path().join("rpmdb.sqlite-wal"), wal)?;
    }
    // Read-write on the private copy: replaying a write-ahead log needs it.
    let connection = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut statement = connection.prepare("SELECT blob FROM Packages ORDER BY hnum")?;
    let rows = statement.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
