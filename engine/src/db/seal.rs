//! Sealing: the flusher thread freezes memtables and writes them out as segments, then lets
//! the WAL be truncated behind them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::*;

impl Inner {
    pub(super) fn flush_loop(self: Arc<Self>, rx: Receiver<FlushMsg>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(FlushMsg::Seal(p)) => self.seal_logged(p),
                Ok(FlushMsg::SealAll(reply)) => {
                    let r = self
                        .projects_now()
                        .into_iter()
                        .try_for_each(|p| self.seal_project(p));
                    let _ = reply.send(r);
                }
                Ok(FlushMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    for p in self.projects_now() {
                        let due = self.get_project(p).is_some_and(|st| {
                            let g = st.read();
                            !g.frozen.is_empty()
                                || (!g.active.is_empty()
                                    && g.active.created().elapsed() >= self.config.seal_age)
                        });
                        if due {
                            self.seal_logged(p);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn seal_all(&self) -> Result<()> {
        self.projects_now()
            .into_iter()
            .try_for_each(|p| self.seal_project(p))
    }

    fn projects_now(&self) -> Vec<ProjectId> {
        self.projects.read().keys().copied().collect()
    }

    fn seal_logged(&self, p: ProjectId) {
        match self.seal_project(p) {
            Ok(()) => *self.flush_error.lock() = None,
            Err(e) => {
                tracing::error!(project = p, error = %e, "sealing failed; will retry");
                *self.flush_error.lock() = Some(e.to_string());
            }
        }
    }

    /// Freezes the project's memtable and writes every frozen memtable out as a segment.
    pub(super) fn seal_project(&self, project: ProjectId) -> Result<()> {
        let _span = tracing::trace_span!("seal", project).entered();
        let _m = self.maintenance.lock();
        self.freeze(project);
        self.write_frozen(project, 1).map(drop)
    }

    /// How this engine's segments are packed, on `threads` threads.
    pub(super) fn packing(&self, threads: usize) -> segment::Packing {
        segment::Packing {
            block_rows: self.config.block_rows,
            zstd_level: self.config.zstd_level,
            threads,
        }
    }

    /// Moves the project's active memtable, if it holds rows, to the end of its frozen ones
    /// (still readable; the next append starts a new memtable).
    pub(super) fn freeze(&self, project: ProjectId) {
        if let Some(st) = self.get_project(project) {
            let mut g = st.write();
            g.seal_requested = false;
            if !g.active.is_empty() {
                let m = std::mem::take(&mut g.active);
                g.frozen.push(Arc::new(m));
            }
        }
    }

    /// Writes the project's frozen memtables out as segments, oldest first, each in the
    /// catalog before it leaves the project, packing blocks on `threads` threads. Returns
    /// the memtables written, for the caller to free where it has time to. The caller holds
    /// the maintenance lock.
    pub(super) fn write_frozen(
        &self,
        project: ProjectId,
        threads: usize,
    ) -> Result<Vec<Arc<Memtable>>> {
        let mut written = Vec::new();
        let Some(st) = self.get_project(project) else {
            return Ok(written);
        };
        loop {
            let Some(frozen) = st.read().frozen.first().cloned() else {
                break;
            };
            let id = self.next_segment_id.fetch_add(1, Ordering::AcqRel);
            let path = self.segment_path(project, id);
            if let Some(parent) = path.parent() {
                if !self.fs().exists(parent) {
                    crate::fs::create_dir_in(self.fs(), parent)?;
                    crate::fs::sync_dir_in(self.fs(), &self.dir.join("segments"))?;
                }
            }
            let rows: Vec<&LogRecord> = frozen.iter().collect();
            let meta =
                segment::write(self.fs(), &path, project, id, &rows, &self.packing(threads))?;
            let reader = SegmentReader::open(self.fs(), &path)?;
            // A failed commit may still be durable (redb wrote its header, and only the
            // last fsync failed), so the file stays: the next open keeps it if the catalog
            // lists it and removes it as an orphan if not. The catalog takes no more
            // writes after a failed commit, so no second copy of these rows can be added;
            // the retries it refuses wrote nothing, and their files go at once (else every
            // retry of the flusher would leave a segment's worth of disk behind).
            if let Err(e) = self
                .catalog
                .add_segment(&meta, frozen.max_seq(), frozen.usage())
            {
                if e.catalog_refused() {
                    let _ = self.fs().remove_file(&path);
                }
                return Err(e);
            }
            {
                let mut g = st.write();
                g.frozen.retain(|m| !Arc::ptr_eq(m, &frozen));
                g.segments.push(reader);
            }
            self.memtable_bytes
                .fetch_sub(frozen.bytes(), Ordering::Relaxed);
            written.push(frozen);
        }
        if let Some(w) = self.wal.get() {
            w.checkpoint();
        }
        Ok(written)
    }
}
