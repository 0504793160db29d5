//! Following another node's catalog: what a read-only node over object storage does each
//! time the writer publishes. The caller puts the segment files in place first; `follow`
//! then makes the engine serve exactly the segments the new catalog lists.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::segment::SegmentMeta;

/// What one [`Engine::follow`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FollowReport {
    pub segments_added: usize,
    pub segments_removed: usize,
    pub rows_added: u64,
    pub projects_deleted: usize,
    /// Segments listed whose files could not be opened (named; their logs are missing).
    pub damaged: Vec<String>,
}

/// A listed segment is the one already open when its id, size and sequence range agree (a
/// writer rebuilt from an older manifest may reuse an id for other rows).
fn same(open: &SegmentReader, m: &SegmentMeta) -> bool {
    let o = open.meta();
    o.id == m.id && o.bytes == m.bytes && o.min_seq == m.min_seq && o.max_seq == m.max_seq
}

impl Engine {
    /// Makes this engine serve exactly the sealed segments of the catalog copy at `next`,
    /// whose files the caller has already put under `segments/`: segments no longer listed
    /// leave (their logs counted out of the rollups and the index, their files deleted), new
    /// ones are opened, counted in, indexed and sent to open live tails, usage and deleted
    /// projects follow, and the copy replaces this engine's catalog. For read-only nodes:
    /// an engine that takes appends must never follow another's catalog.
    pub fn follow(&self, next: &Path) -> Result<FollowReport> {
        let inner = &self.inner;
        let _m = inner.maintenance.lock();
        let state = {
            let c = Catalog::open_existing(next)?;
            let s = c.load();
            c.close();
            s?
        };
        let mut report = FollowReport::default();
        for &p in &state.deleted {
            if inner.deleted.write().insert(p) {
                report.projects_deleted += 1;
                inner.tails.close_project(p);
                inner.rollups.remove_project(p);
                inner.usage.remove_project(p);
                if let Some(s) = &inner.search {
                    s.delete_project(p);
                }
                if let Some(st) = inner.projects.write().remove(&p) {
                    for s in &st.read().segments {
                        inner.cache.evict_segment(s.id);
                    }
                }
                let _ = inner
                    .fs()
                    .remove_dir_all(&inner.dir.join("segments").join(project_dir(p)));
            }
        }
        let mut wanted: HashMap<ProjectId, Vec<SegmentMeta>> = HashMap::new();
        for m in state.segments {
            wanted.entry(m.project).or_default().push(m);
        }
        let mut projects: HashSet<ProjectId> = inner.projects.read().keys().copied().collect();
        projects.extend(wanted.keys().copied());
        for p in projects {
            if inner.deleted.read().contains(&p) {
                continue;
            }
            let want = wanted.remove(&p).unwrap_or_default();
            self.follow_project(p, &want, &mut report)?;
        }
        inner.usage.replace(state.usage);
        if let Some(s) = &inner.search {
            s.commit()?;
        }
        inner
            .catalog
            .replace_with(next, &inner.dir.join("catalog.redb"))?;
        *inner.damaged.lock() = report.damaged.clone();
        Ok(report)
    }

    fn follow_project(
        &self,
        p: ProjectId,
        want: &[SegmentMeta],
        report: &mut FollowReport,
    ) -> Result<()> {
        let inner = &self.inner;
        let st = inner.project(p);
        let have = st.read().segments.clone();
        let (keep, gone): (Vec<_>, Vec<_>) = have
            .into_iter()
            .partition(|s| want.iter().any(|m| same(s, m)));
        let mut added = Vec::new();
        for m in want.iter().filter(|m| !keep.iter().any(|s| same(s, m))) {
            match inner.open_segment(p, m.id) {
                Ok(r) => added.push(r),
                Err(e) => report.damaged.push(e.to_string()),
            }
        }
        if gone.is_empty() && added.is_empty() {
            return Ok(());
        }
        let mut now: Vec<Arc<SegmentReader>> = keep.into_iter().chain(added.clone()).collect();
        now.sort_by_key(|s| s.id);
        st.write().segments = now.clone();
        if !gone.is_empty() {
            if let Some(s) = &inner.search {
                for seg in &gone {
                    let m = seg.meta();
                    s.delete_seqs(p, m.min_seq, m.max_seq);
                }
            }
            let frozen = st.read().frozen.clone();
            (inner.rollups).retire(p, &gone, &now, &frozen, &inner.cache, |f| {
                f(&st.read().active)
            });
            for seg in &gone {
                inner.cache.evict_segment(seg.id);
                // A replaced segment keeps its path: its new file is already there.
                if !want.iter().any(|m| m.id == seg.id) {
                    let _ = inner.remove_segment_file(seg);
                }
            }
            report.segments_removed += gone.len();
        }
        for seg in &added {
            for i in 0..seg.blocks.len() {
                let rows: Vec<Arc<LogRecord>> =
                    seg.read_block(i)?.into_iter().map(Arc::new).collect();
                report.rows_added += rows.len() as u64;
                inner.rollups.apply(p, &rows);
                inner.tails.publish(p, &rows);
                if let Some(s) = &inner.search {
                    s.add(p, rows);
                }
            }
        }
        report.segments_added += added.len();
        Ok(())
    }
}
