//! One package's RPM header, as the rpm database stores it (the header without its lead magic):
//! the fields `rpm -qf` prints and the files the package owns.

/// Tags of the header entries read here (rpm's `rpmTag`).
const NAME: i32 = 1000;
const VERSION: i32 = 1001;
const RELEASE: i32 = 1002;
const ARCH: i32 = 1022;
const OLDFILENAMES: i32 = 1027;
const DIRINDEXES: i32 = 1116;
const BASENAMES: i32 = 1117;
const DIRNAMES: i32 = 1118;

/// Entry types (rpm's `rpmTagType`) read here.
const INT32: u32 = 4;
const STRING: u32 = 6;
const STRING_ARRAY: u32 = 8;
const I18NSTRING: u32 = 9;

/// Bounds rpm itself puts on a header (`hdrchkTags`, `hdrchkData`): a record claiming more is
/// damaged, not a bigger package.
const MAX_ENTRIES: u32 = 0xffff;
const MAX_DATA: u32 = 256 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("{0} bytes: shorter than a header's counts")]
    Short(usize),
    #[error("claims {entries} entries and {data} bytes of data, more than rpm allows")]
    TooLarge { entries: u32, data: u32 },
    #[error("{expected} bytes of index and data, only {actual} stored")]
    Truncated { expected: usize, actual: usize },
    #[error("tag {tag}: {problem}")]
    Entry { tag: i32, problem: &'static str },
    #[error("no {0} tag")]
    Missing(&'static str),
    #[error("{basenames} file names but {dirindexes} directory indexes")]
    FileLists { basenames: usize, dirindexes: usize },
}

/// What inspect needs of one installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    /// None for rpm's pseudo-packages (gpg-pubkey).
    pub arch: Option<String>,
    /// Absolute paths, as rpm records them.
    pub files: Vec<String>,
}

impl Header {
    /// `rpm -qf`'s default line: `%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}`.
    pub fn nvra(&self) -> String {
        match &self.arch {
            Some(arch) => format!("{}-{}-{}.{arch}", self.name, self.version, self.release),
            None => format!("{}-{}-{}", self.name, self.version, self.release),
        }
    }

    pub fn owns(&self, path: &str) -> bool {
        self.files.iter().any(|f| f == path)
    }

    pub fn parse(blob: &[u8]) -> Result<Self, HeaderError> {
        let raw = RawHeader::new(blob)?;
        let string = |tag, name| raw.string(tag)?.ok_or(HeaderError::Missing(name));
        let files = match raw.strings(BASENAMES)? {
            Some(basenames) => {
                let dirnames = raw.strings(DIRNAMES)?.unwrap_or_default();
                let indexes = raw.int32s(DIRINDEXES)?.unwrap_or_default();
                if indexes.len() != basenames.len() {
                    return Err(HeaderError::FileLists {
                        basenames: basenames.len(),
                        dirindexes: indexes.len(),
                    });
                }
                basenames
                    .iter()
                    .zip(indexes)
                    .map(|(base, index)| {
                        dirnames
                            .get(index as usize)
                            .map(|dir| format!("{dir}{base}"))
                            .ok_or(HeaderError::Entry {
                                tag: DIRINDEXES,
                                problem: "a directory index past the directory names",
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
            // Packages built before rpm 4.0 list whole paths.
            None => raw.strings(OLDFILENAMES)?.unwrap_or_default(),
        };
        Ok(Header {
            name: string(NAME, "NAME")?,
            version: string(VERSION, "VERSION")?,
            release: string(RELEASE, "RELEASE")?,
            arch: raw.string(ARCH)?,
            files,
        })
    }
}

/// The header's index (16-byte entries) and data store, every offset checked before use.
struct RawHeader<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

struct Entry {
    kind: u32,
    offset: usize,
    count: usize,
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

impl<'a> RawHeader<'a> {
    fn new(blob: &'a [u8]) -> Result<Self, HeaderError> {
        if blob.len() < 8 {
            return Err(HeaderError::Short(blob.len()));
        }
        let (entries, data) = (be32(blob, 0), be32(blob, 4));
        if entries > MAX_ENTRIES || data > MAX_DATA {
            return Err(HeaderError::TooLarge { entries, data });
        }
        let index_end = 8 + 16 * entries as usize;
        let expected = index_end + data as usize;
        if blob.len() < expected {
            return Err(HeaderError::Truncated {
                expected,
                actual: blob.len(),
            });
        }
        Ok(RawHeader {
            index: &blob[8..index_end],
            data: &blob[index_end..expected],
        })
    }

    fn entry(&self, tag: i32) -> Option<Entry> {
        self.index.chunks_exact(16).find_map(|e| {
            (be32(e, 0) as i32 == tag).then(|| Entry {
                kind: be32(e, 4),
                offset: be32(e, 8) as usize,
                count: be32(e, 12) as usize,
            })
        })
    }

    /// `count` NUL-terminated strings from `offset`.
    fn strings_at(
        &self,
        tag: i32,
        offset: usize,
        count: usize,
    ) -> Result<Vec<String>, HeaderError> {
        let bad = |problem| HeaderError::Entry { tag, problem };
        let mut rest = self
            .data
            .get(offset..)
            .ok_or(bad("an offset past the data"))?;
        let mut out = Vec::with_capacity(count.min(rest.len()));
        for _ in 0..count {
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(bad("a string without its terminating NUL"))?;
            out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            rest = &rest[end + 1..];
        }
        Ok(out)
    }

    fn string(&self, tag: i32) -> Result<Option<String>, HeaderError> {
        match self.entry(tag) {
            None => Ok(None),
            Some(e) if matches!(e.kind, STRING | I18NSTRING | STRING_ARRAY) => {
                Ok(self.strings_at(tag, e.offset, 1)?.pop())
            }
            Some(_) => Err(HeaderError::Entry {
                tag,
                problem: "not a string",
            }),
        }
    }

    fn strings(&self, tag: i32) -> Result<Option<Vec<String>>, HeaderError> {
        match self.entry(tag) {
            None => Ok(None),
            Some(e) if matches!(e.kind, STRING_ARRAY | I18NSTRING) => {
                self.strings_at(tag, e.offset, e.count).map(Some)
            }
            Some(_) => Err(HeaderError::Entry {
                tag,
                problem: "not a string array",
            }),
        }
    }

    fn int32s(&self, tag: i32) -> Result<Option<Vec<u32>>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if e.kind != INT32 {
            return Err(HeaderError::Entry {
                tag,
                problem: "not a 32-bit integer array",
            });
        }
        let bytes = e
            .count
            .checked_mul(4)
            .and_then(|len| self.data.get(e.offset..e.offset.checked_add(len)?))
            .ok_or(HeaderError::Entry {
                tag,
                problem: "integers past the data",
            })?;
        Ok(Some(bytes.chunks_exact(4).map(|c| be32(c, 0)).collect()))
    }
}

/// Builds header blobs for tests: entries as rpm lays them out (strings, then aligned integers).
#[cfg(test)]
pub(crate) mod build {
    #[derive(Default)]
    pub struct Blob {
        index: Vec<u8>,
        data: Vec<u8>,
        entries: u32,
    }

    impl Blob {
        fn push(&mut self, tag: i32, kind: u32, count: usize, bytes: &[u8]) -> &mut Self {
            if kind == super::INT32 {
                while !self.data.len().is_multiple_of(4) {
                    self.data.push(0);
                }
            }
            for v in [tag as u32, kind, self.data.len() as u32, count as u32] {
                self.index.extend(v.to_be_bytes());
            }
            self.data.extend(bytes);
            self.entries += 1;
            self
        }
        pub fn string(&mut self, tag: i32, s: &str) -> &mut Self {
            self.push(tag, super::STRING, 1, format!("{s}\0").as_bytes())
        }
        pub fn strings(&mut self, tag: i32, all: &[&str]) -> &mut Self {
            let bytes: Vec<u8> = all
                .iter()
                .flat_map(|s| format!("{s}\0").into_bytes())
                .collect();
            self.push(tag, super::STRING_ARRAY, all.len(), &bytes)
        }
        pub fn int32s(&mut self, tag: i32, all: &[u32]) -> &mut Self {
            let bytes: Vec<u8> = all.iter().flat_map(|v| v.to_be_bytes()).collect();
            self.push(tag, super::INT32, all.len(), &bytes)
        }
        pub fn bytes(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend(self.entries.to_be_bytes());
            out.extend((self.data.len() as u32).to_be_bytes());
            out.extend(&self.index);
            out.extend(&self.data);
            out
        }
    }

    /// A package named `name` owning `files` (each `/dir/base`).
    pub fn package(name: &str, files: &[&str]) -> Vec<u8> {
        let mut dirs: Vec<String> = Vec::new();
        let mut bases = Vec::new();
        let mut indexes = Vec::new();
        for f in files {
            let (dir, base) = f.rsplit_once('/').unwrap();
            let dir = format!("{dir}/");
            let i = dirs.iter().position(|d| *d == dir).unwrap_or_else(|| {
                dirs.push(dir);
                dirs.len() - 1
            });
            bases.push(base);
            indexes.push(i as u32);
        }
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        let mut blob = Blob::default();
        blob.string(super::NAME, name)
            .string(super::VERSION, "9.4")
            .string(super::RELEASE, "1.0.2.el9")
            .string(super::ARCH, "x86_64")
            .int32s(super::DIRINDEXES, &indexes)
            .strings(super::BASENAMES, &bases)
            .strings(super::DIRNAMES, &dirs);
        blob.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_files_are_read_from_a_header() {
        let blob = build::package(
            "oraclelinux-release",
            &[
                "/etc/os-release",
                "/usr/lib/os-release",
                "/etc/oracle-release",
            ],
        );
        let header = Header::parse(&blob).unwrap();
        assert_eq!(header.nvra(), "oraclelinux-release-9.4-1.0.2.el9.x86_64");
        assert!(header.owns("/etc/os-release"));
        assert!(header.owns("/usr/lib/os-release"));
        assert!(!header.owns("/etc/os"));
    }

    #[test]
    fn damaged_headers_are_refused_not_read_past() {
        let blob = build::package("p", &["/etc/a"]);
        assert_eq!(Header::parse(&blob[..5]), Err(HeaderError::Short(5)));
        assert!(matches!(
            Header::parse(&blob[..blob.len() - 1]),
            Err(HeaderError::Truncated { .. })
        ));
        let mut huge = blob.clone();
        huge[0..4].copy_from_slice(&0x0100_0000u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&huge),
            Err(HeaderError::TooLarge { .. })
        ));
        // An offset pointing past the data store.
        let mut far = blob.clone();
        far[8 + 8..8 + 12].copy_from_slice(&0xffffu32.to_be_bytes());
        assert!(matches!(
            Header::parse(&far),
            Err(HeaderError::Entry { tag: NAME, .. })
        ));
        // A directory index naming no directory.
        let mut blob = build::Blob::default();
        blob.string(NAME, "p")
            .string(VERSION, "1")
            .string(RELEASE, "1")
            .int32s(DIRINDEXES, &[3])
            .strings(BASENAMES, &["a"])
            .strings(DIRNAMES, &["/etc/"]);
        assert!(matches!(
            Header::parse(&blob.bytes()),
            Err(HeaderError::Entry {
                tag: DIRINDEXES,
                ..
            })
        ));
        let mut nameless = build::Blob::default();
        nameless.string(VERSION, "1");
        assert_eq!(
            Header::parse(&nameless.bytes()),
            Err(HeaderError::Missing("NAME"))
        );
    }
}
