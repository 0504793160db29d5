//! Rebuilding the search index of one project from what storage holds (`ledgerctl reindex`).

use std::sync::Arc;

use super::*;

impl Engine {
    /// Replaces a project's search documents with ones made from its segments and
    /// memtables, then commits. Returns how many logs were indexed. (To rebuild the whole
    /// index, delete `<data-dir>/index` and open the engine: it rebuilds at open.)
    pub fn reindex_project(&self, project: ProjectId) -> Result<u64> {
        let Some(ix) = &self.inner.search else {
            return Err(EngineError::Unavailable("search is disabled".into()));
        };
        let _m = self.inner.maintenance.lock();
        ix.delete_project(project);
        let Some(st) = self.inner.get_project(project) else {
            ix.commit()?;
            return Ok(0);
        };
        // Memtable rows first, under the lock, so rows appended meanwhile (which the WAL
        // writer sends to the indexer itself) are neither missed nor sent twice.
        let (mem, segs) = {
            let g = st.read();
            let mem: Vec<Arc<LogRecord>> = g
                .frozen
                .iter()
                .flat_map(|m| m.iter())
                .chain(g.active.iter())
                .map(|r| Arc::new(r.clone()))
                .collect();
            (mem, g.segments.clone())
        };
        let mut n = mem.len() as u64;
        ix.add(project, mem);
        for seg in segs {
            for i in 0..seg.blocks.len() {
                let rows: Vec<Arc<LogRecord>> =
                    seg.read_block(i)?.into_iter().map(Arc::new).collect();
                n += rows.len() as u64;
                ix.add(project, rows);
            }
        }
        ix.commit()?;
        Ok(n)
    }
}
