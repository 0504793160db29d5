//! API key records: the keyed hash of the key (never the key), its project and scopes.

use std::collections::HashMap;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{decode, encode, Meta, MetaResult, KEYS};

/// What an API key may do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Ingest,
    Query,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Query => "query",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "ingest" => Some(Scope::Ingest),
            "query" => Some(Scope::Query),
            _ => None,
        }
    }
}

/// A stored API key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub project: u64,
    pub name: String,
    /// The first characters of the key, shown so a person can tell keys apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// Hex of the blake3 keyed hash of the whole key.
    pub hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Meta {
    pub fn put_key(&self, k: &KeyRecord) -> MetaResult<()> {
        let tx = self.db().begin_write()?;
        tx.open_table(KEYS)?
            .insert(k.id.as_str(), encode(k).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Every key of every project, revoked ones included (loaded once at start).
    pub fn all_keys(&self) -> MetaResult<Vec<KeyRecord>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(KEYS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push(decode("keys", k.value(), v.value())?);
        }
        Ok(out)
    }

    /// A project's keys, oldest first.
    pub fn project_keys(&self, project: u64) -> MetaResult<Vec<KeyRecord>> {
        let mut keys: Vec<KeyRecord> = self
            .all_keys()?
            .into_iter()
            .filter(|k| k.project == project)
            .collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    pub fn key(&self, id: &str) -> MetaResult<Option<KeyRecord>> {
        let rtx = self.db().begin_read()?;
        let t = rtx.open_table(KEYS)?;
        let Some(v) = t.get(id)? else {
            return Ok(None);
        };
        Ok(Some(decode("keys", id, v.value())?))
    }

    /// Records when keys were last used, in one transaction; keys since deleted are skipped.
    pub fn touch_keys(&self, used: &HashMap<String, i64>) -> MetaResult<()> {
        if used.is_empty() {
            return Ok(());
        }
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(KEYS)?;
            for (id, at) in used {
                let rec = match t.get(id.as_str())? {
                    Some(v) => decode::<KeyRecord>("keys", id, v.value())?,
                    None => continue,
                };
                if rec.last_used_at.is_some_and(|l| l >= *at) {
                    continue;
                }
                let rec = KeyRecord {
                    last_used_at: Some(*at),
                    ..rec
                };
                t.insert(id.as_str(), encode(&rec).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
