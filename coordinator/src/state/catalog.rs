//! The farm's installer and patch catalog: WIT cache keys and the content (digest, location in
//! the artifact store) they stand for.

use super::{Applied, Change, Refusal, StateError, StateMachine, Txn};
use patchfarm_proto::v1::CatalogEntry;

fn key(name: &str) -> String {
    format!("catalog/{name}")
}

pub(crate) fn put(txn: &mut Txn<'_>, entry: &CatalogEntry) -> CatalogEntry {
    txn.put(&key(&entry.key), entry);
    txn.changes.push(Change::Catalog(entry.clone()));
    entry.clone()
}

pub(crate) fn delete(txn: &mut Txn<'_>, name: &str) -> Applied<bool> {
    if txn
        .get::<CatalogEntry>("catalog entry", &key(name))?
        .is_none()
    {
        return Ok(Err(Refusal::NotFound(format!("no catalog entry {name:?}"))));
    }
    txn.remove(&key(name));
    txn.changes.push(Change::CatalogDeleted(name.to_string()));
    Ok(Ok(true))
}

impl StateMachine {
    pub fn catalog(&self) -> Result<Vec<CatalogEntry>, StateError> {
        self.list("catalog entry", "catalog/")
    }
}
