//! Berkeley DB hash databases as rpm wrote them before rpm 4.16 (`/var/lib/rpm/Packages` on
//! OL7 and OL8), read page by page: every record's value, following overflow chains. Only what
//! rpm's Packages file uses is read (no duplicates, no encryption).

/// Page-header offsets shared by every BDB page (`db_page.h`).
const PAGE_HEADER: usize = 26;
const ENTRIES_AT: usize = 20;
const HIGH_FREE_AT: usize = 22;
const NEXT_PAGE_AT: usize = 16;
const TYPE_AT: usize = 25;

/// Page types.
const HASH_UNSORTED: u8 = 2;
const OVERFLOW: u8 = 7;
const HASH_META: u8 = 8;
const HASH: u8 = 13;

/// Item types on a hash page.
const KEY_DATA: u8 = 1;
const OFF_PAGE: u8 = 3;

const HASH_MAGIC: u32 = 0x0006_1561;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BdbError {
    #[error("not a Berkeley DB hash database ({0})")]
    NotHash(&'static str),
    #[error("page size {0} is not one Berkeley DB uses")]
    PageSize(u32),
    #[error("encrypted (algorithm {0}); rpm never encrypts its database")]
    Encrypted(u8),
    #[error("page {page}: {problem}")]
    Page { page: u32, problem: &'static str },
}

/// One key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// A hash database in memory, in the byte order its metadata page says.
pub struct HashDb<'a> {
    bytes: &'a [u8],
    page_size: usize,
    last_page: u32,
    big_endian: bool,
}

impl<'a> HashDb<'a> {
    pub fn open(bytes: &'a [u8]) -> Result<Self, BdbError> {
        if bytes.len() < 512 {
            return Err(BdbError::NotHash("shorter than a metadata page"));
        }
        let word = |at: usize| -> [u8; 4] { bytes[at..at + 4].try_into().expect("four bytes") };
        let big_endian = match (u32::from_le_bytes(word(12)), u32::from_be_bytes(word(12))) {
            (HASH_MAGIC, _) => false,
            (_, HASH_MAGIC) => true,
            _ => return Err(BdbError::NotHash("no hash magic number")),
        };
        let u32_at = |at| {
            if big_endian {
                u32::from_be_bytes(word(at))
            } else {
                u32::from_le_bytes(word(at))
            }
        };
        if bytes[TYPE_AT] != HASH_META {
            return Err(BdbError::NotHash("page 0 is not hash metadata"));
        }
        if bytes[24] != 0 {
            return Err(BdbError::Encrypted(bytes[24]));
        }
        let page_size = u32_at(20);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(BdbError::PageSize(page_size));
        }
        Ok(HashDb {
            bytes,
            page_size: page_size as usize,
            last_page: u32_at(32),
            big_endian,
        })
    }

    fn page(&self, number: u32) -> Result<&'a [u8], BdbError> {
        let start = number as usize * self.page_size;
        self.bytes
            .get(start..start + self.page_size)
            .ok_or(BdbError::Page {
                page: number,
                problem: "past the end of the file",
            })
    }

    fn u16(&self, page: &[u8], at: usize) -> usize {
        let b = [page[at], page[at + 1]];
        (if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }) as usize
    }

    fn u32(&self, bytes: &[u8], at: usize) -> u32 {
        let b: [u8; 4] = bytes[at..at + 4].try_into().expect("four bytes");
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Every (key, value) pair, in page order.
    pub fn records(&self) -> Result<Vec<Record>, BdbError> {
        let mut out = Vec::new();
        for number in 1..=self.last_page {
            let page = self.page(number)?;
            if !matches!(page[TYPE_AT], HASH | HASH_UNSORTED) {
                continue;
            }
            let entries = self.u16(page, ENTRIES_AT);
            if !entries.is_multiple_of(2) || PAGE_HEADER + 2 * entries > self.page_size {
                return Err(BdbError::Page {
                    page: number,
                    problem: "an item count that is odd or overruns the page",
                });
            }
            for pair in (0..entries).step_by(2) {
                out.push((
                    self.item(number, page, pair)?,
                    self.item(number, page, pair + 1)?,
                ));
            }
        }
        Ok(out)
    }

    /// Item `index` of a hash page: items are packed downwards from the page's end, so each
    /// ends where the one indexed before it starts.
    fn item(&self, number: u32, page: &[u8], index: usize) -> Result<Vec<u8>, BdbError> {
        let bad = |problem| BdbError::Page {
            page: number,
            problem,
        };
        let start = self.u16(page, PAGE_HEADER + 2 * index);
        let end = match index {
            0 => self.page_size,
            _ => self.u16(page, PAGE_HEADER + 2 * (index - 1)),
        };
        if start < PAGE_HEADER + 2 * self.u16(page, ENTRIES_AT) || start >= end {
            return Err(bad("an item outside the page's item area"));
        }
        let item = &page[start..end];
        match item[0] {
            KEY_DATA => Ok(item[1..].to_vec()),
            OFF_PAGE if item.len() >= 12 => {
                self.overflow(self.u32(item, 4), self.u32(item, 8) as usize)
            }
            OFF_PAGE => Err(bad("an off-page item too short to name its pages")),
            _ => Err(bad("an item type rpm's database does not use")),
        }
    }

    /// An item stored on a chain of overflow pages, `length` bytes in all.
    fn overflow(&self, first: u32, length: usize) -> Result<Vec<u8>, BdbError> {
        let mut value = Vec::with_capacity(length.min(self.bytes.len()));
        let mut number = first;
        let mut hops = 0;
        while number != 0 {
            hops += 1;
            if hops > self.last_page {
                return Err(BdbError::Page {
                    page: number,
                    problem: "an overflow chain that loops",
                });
            }
            let page = self.page(number)?;
            let on_page = self.u16(page, HIGH_FREE_AT);
            if page[TYPE_AT] != OVERFLOW || PAGE_HEADER + on_page > self.page_size {
                return Err(BdbError::Page {
                    page: number,
                    problem: "not an overflow page, or one holding more than fits",
                });
            }
            value.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + on_page]);
            number = self.u32(page, NEXT_PAGE_AT);
        }
        if value.len() != length {
            return Err(BdbError::Page {
                page: first,
                problem: "an overflow chain shorter or longer than its item says",
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 512;

    /// Three pages: metadata; a hash page holding key 1 (on the page) and a value on an
    /// overflow page; that overflow page holding `stored`, claiming `claimed` bytes in all, and
    /// linking to page `next`.
    fn database(stored: &[u8], claimed: u32, next: u32) -> Vec<u8> {
        let mut db = vec![0u8; 3 * PAGE];
        let meta = &mut db[..PAGE];
        meta[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        meta[20..24].copy_from_slice(&(PAGE as u32).to_le_bytes());
        meta[TYPE_AT] = HASH_META;
        meta[32..36].copy_from_slice(&2u32.to_le_bytes());
        let hash = &mut db[PAGE..2 * PAGE];
        hash[TYPE_AT] = HASH;
        hash[ENTRIES_AT..ENTRIES_AT + 2].copy_from_slice(&2u16.to_le_bytes());
        let key_at = PAGE - 5;
        let value_at = key_at - 12;
        hash[PAGE_HEADER..PAGE_HEADER + 2].copy_from_slice(&(key_at as u16).to_le_bytes());
        hash[PAGE_HEADER + 2..PAGE_HEADER + 4].copy_from_slice(&(value_at as u16).to_le_bytes());
        hash[key_at..].copy_from_slice(&[KEY_DATA, 1, 0, 0, 0]);
        hash[value_at] = OFF_PAGE;
        hash[value_at + 4..value_at + 8].copy_from_slice(&2u32.to_le_bytes());
        hash[value_at + 8..value_at + 12].copy_from_slice(&claimed.to_le_bytes());
        let overflow = &mut db[2 * PAGE..];
        overflow[TYPE_AT] = OVERFLOW;
        overflow[NEXT_PAGE_AT..NEXT_PAGE_AT + 4].copy_from_slice(&next.to_le_bytes());
        overflow[HIGH_FREE_AT..HIGH_FREE_AT + 2]
            .copy_from_slice(&(stored.len() as u16).to_le_bytes());
        overflow[PAGE_HEADER..PAGE_HEADER + stored.len()].copy_from_slice(stored);
        db
    }

    #[test]
    fn values_are_read_on_and_off_their_page_and_broken_chains_are_refused() {
        let db = database(b"header", 6, 0);
        assert_eq!(
            HashDb::open(&db).unwrap().records().unwrap(),
            vec![(vec![1, 0, 0, 0], b"header".to_vec())]
        );
        let short = database(b"header", 9, 0);
        assert!(matches!(
            HashDb::open(&short).unwrap().records(),
            Err(BdbError::Page { page: 2, problem }) if problem.contains("shorter or longer")
        ));
        let looping = database(b"header", 6, 2);
        assert!(matches!(
            HashDb::open(&looping).unwrap().records(),
            Err(BdbError::Page { problem, .. }) if problem.contains("loops")
        ));
    }

    #[test]
    fn what_is_not_a_hash_database_is_named() {
        assert_eq!(
            HashDb::open(b"SQLite format 3\0").err(),
            Some(BdbError::NotHash("shorter than a metadata page"))
        );
        assert_eq!(
            HashDb::open(&[0u8; 4096]).err(),
            Some(BdbError::NotHash("no hash magic number"))
        );
        let mut meta = vec![0u8; 4096];
        meta[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        meta[TYPE_AT] = HASH_META;
        meta[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(HashDb::open(&meta).err(), Some(BdbError::PageSize(1000)));
        meta[20..24].copy_from_slice(&4096u32.to_le_bytes());
        meta[32..36].copy_from_slice(&3u32.to_le_bytes());
        let db = HashDb::open(&meta).unwrap();
        assert_eq!(
            db.records().err(),
            Some(BdbError::Page {
                page: 1,
                problem: "past the end of the file"
            })
        );
    }
}
