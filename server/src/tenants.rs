//! The projects of every account, cached in memory so that ingest and queries never read
//! redb to learn a project's owner and limits. Changes write through to `meta` first.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::meta::{Meta, MetaResult, Project};
use ledger_engine::timefmt::format_micros;

/// Projects by id.
#[derive(Default)]
pub struct Tenants {
    projects: RwLock<HashMap<u64, Arc<Project>>>,
}

impl Tenants {
    /// Loads every project from the metadata store.
    pub fn load(meta: &Meta) -> MetaResult<Tenants> {
        let t = Tenants::default();
        for p in meta.all_projects()? {
            t.insert(p);
        }
        Ok(t)
    }

    pub fn get(&self, id: u64) -> Option<Arc<Project>> {
        self.projects.read().get(&id).cloned()
    }

    /// The project if `account` owns it. Another account's project looks absent.
    pub fn owned(&self, account: &str, id: u64) -> Option<Arc<Project>> {
        self.get(id).filter(|p| p.owner == account)
    }

    /// An account's projects, oldest first.
    pub fn list(&self, account: &str) -> Vec<Arc<Project>> {
        let mut v: Vec<_> = self
            .projects
            .read()
            .values()
            .filter(|p| p.owner == account)
            .cloned()
            .collect();
        v.sort_by_key(|p| (p.created_at, p.id));
        v
    }

    pub fn contains(&self, id: u64) -> bool {
        self.projects.read().contains_key(&id)
    }

    pub fn all(&self) -> Vec<Arc<Project>> {
        self.projects.read().values().cloned().collect()
    }

    /// Replaces every project with these (a read-only node adopting newer metadata).
    pub fn replace_all(&self, projects: Vec<Project>) {
        *self.projects.write() = projects.into_iter().map(|p| (p.id, Arc::new(p))).collect();
    }

    pub fn insert(&self, p: Project) {
        self.projects.write().insert(p.id, Arc::new(p));
    }

    pub fn remove(&self, id: u64) {
        self.projects.write().remove(&id);
    }
}

/// A project id as the API shows it: 16 lower-case hex digits.
pub fn project_hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Parses the API form of a project id; anything else (or zero) is `None`.
pub fn parse_project_id(s: &str) -> Option<u64> {
    hex_u64(s).filter(|id| *id != 0)
}

/// The one parser of the 16-hex-digit ids and cursors the API hands out.
pub fn hex_u64(s: &str) -> Option<u64> {
    let mut b = [0u8; 8];
    hex::decode_to_slice(s, &mut b).ok()?;
    Some(u64::from_be_bytes(b))
}

/// The project object of docs/api.md.
pub fn project_json(p: &Project) -> Value {
    json!({
        "id": project_hex(p.id),
        "name": p.name,
        "created_at": format_micros(p.created_at),
        "retention_days": p.retention_days,
        "daily_quota": p.daily_quota,
        "rate_limit_per_minute": p.rate_limit_per_minute,
        "rate_limit_per_hour": p.rate_limit_per_hour,
        "max_queue_depth": p.max_queue_depth,
    })
}
