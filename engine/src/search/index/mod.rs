//! The tantivy index behind `/logs/search`: one index for the node, with every document
//! tagged by project, holding only what narrowing a query needs (no log bodies; they are
//! read from segments and every candidate is checked by `eval`).
//!
//! Documents are added at append time by an indexer thread and committed every refresh
//! interval; the commit's payload is the highest sequence number it covers, which the engine
//! uses to keep the WAL until the index has everything and to re-index after a crash.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use tantivy::indexer::LogMergePolicy;
use tantivy::query::doc_predicate_query::{DocPredicateQuery, FunctionPredicate};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    IndexRecordOption, JsonObjectOptions, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{EngineError, Result};

use crate::model::{Field, LogRecord, ProjectId};

use super::parser::{Expr, KEYWORD_FIELDS, TEXT_FIELDS};

mod attrs;
mod candidates;
pub mod space;
mod translate;

/// The analyzer of text fields: split on anything but letters and digits, lower-case —
/// the same rule as `tokenize::tokenize`.
pub const TOKENIZER: &str = "ledger";

const ENUM_NAMES: [&str; 3] = ["level", "log_type", "importance"];

/// The tantivy fields, by role.
#[derive(Clone)]
struct Fields {
    project: tantivy::schema::Field,
    ts: tantivy::schema::Field,
    seq: tantivy::schema::Field,
    text: [tantivy::schema::Field; 4],
    enums: [tantivy::schema::Field; 3],
    keywords: Vec<(Field, tantivy::schema::Field)>,
    attrs: tantivy::schema::Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let project = b.add_u64_field("project", NumericOptions::default().set_indexed());
    // Sequence numbers are unique: as indexed terms they would cost more than they help, so
    // they are a fast field only (deletion by range reads the column).
    let ts = b.add_i64_field("ts", NumericOptions::default().set_fast());
    let seq = b.add_u64_field("seq", NumericOptions::default().set_fast());
    let text_opts = |positions: bool| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_fieldnorms(false)
                .set_index_option(if positions {
                    IndexRecordOption::WithFreqsAndPositions
                } else {
                    IndexRecordOption::Basic
                }),
        )
    };
    // No field norms anywhere: nothing is scored, and they cost a byte per field per log.
    let raw = TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_fieldnorms(false)
        .set_index_option(IndexRecordOption::Basic);
    let kw = TextOptions::default().set_indexing_options(raw.clone());
    // Positions (for phrases) only where phrases are common; a phrase in `error_type` or
    // `stack_trace` is narrowed by its words and checked on the stored text.
    let text = TEXT_FIELDS.map(|f| b.add_text_field(f.name(), text_opts(has_positions(f))));
    let enums = ENUM_NAMES.map(|n| b.add_text_field(n, kw.clone()));
    // Trace and span ids are unique per log: indexing them would cost more than the rest
    // of the index together; `trace_id:` queries are answered by a bounded scan instead.
    let keywords = KEYWORD_FIELDS
        .iter()
        .filter(|f| !matches!(f, Field::TraceId | Field::SpanId))
        .map(|f| (*f, b.add_text_field(f.name(), kw.clone())))
        .collect();
    let attrs = b.add_json_field(
        "attributes",
        JsonObjectOptions::default().set_indexing_options(raw),
    );
    (
        b.build(),
        Fields {
            project,
            ts,
            seq,
            text,
            enums,
            keywords,
            attrs,
        },
    )
}

/// How a new index stores documents. No field is stored, yet tantivy's document store keeps
/// a 4-byte offset per document in each block; lz4 (its default) leaves those near 4 bytes
/// a log, zstd shrinks them to a fraction. Indexes made with lz4 keep it (the setting is in
/// their `meta.json`) and stay readable.
fn index_settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(3),
        }),
        ..tantivy::IndexSettings::default()
    }
}

/// Whether a text field's index keeps token positions.
fn has_positions(f: Field) -> bool {
    matches!(f, Field::Message | Field::ErrorMessage)
}

fn tantivy_err(dir: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Io {
        path: dir.to_owned(),
        error: std::io::Error::other(format!("search index: {e}")),
    }
}

/// A merge in progress on tantivy's merge threads.
type Merge = tantivy::FutureResult<Option<tantivy::index::SegmentMeta>>;

/// Index segments to rewrite without their deleted documents
/// ([`SearchIndex::start_purge`]).
#[must_use = "merge them with SearchIndex::finish_purge"]
pub struct Purge {
    segments: Vec<tantivy::index::SegmentId>,
}

enum Msg {
    Rows(ProjectId, Vec<Arc<LogRecord>>),
    DeleteProject(ProjectId),
    DeleteSeqs(ProjectId, u64, u64),
    /// Documents by sequence number (unique across the node): a deletion's logs.
    DeleteSeqSet(Arc<std::collections::HashSet<u64>>),
    Commit(Sender<Result<()>>),
    /// Commits and starts merging every index segment holding deleted documents (so their
    /// terms leave the files); answers with the merge to wait on, if one was started.
    Purge(Sender<Result<Vec<tantivy::index::SegmentId>>>),
    /// Starts merging one index segment alone (dropping its deleted documents); answers with
    /// the merge to wait on.
    MergeOne(tantivy::index::SegmentId, Sender<Merge>),
}

/// Handle to the search index and its indexer thread.
pub struct SearchIndex {
    dir: PathBuf,
    reader: IndexReader,
    fields: Fields,
    tx: Mutex<Option<Sender<Msg>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Every row with a sequence number at or below this is committed.
    committed: Arc<AtomicU64>,
    /// Rows sent to the indexer and not yet committed.
    pending: Arc<AtomicU64>,
    refresh: Duration,
    /// The indexer's last failure, cleared by its next successful commit.
    error: Arc<Mutex<Option<String>>>,
    /// What a search reads of each index segment, kept while the segment lives.
    columns: Mutex<HashMap<tantivy::index::SegmentId, Arc<candidates::SegmentColumns>>>,
}

/// The indexer's side: the writer and what it has added since the last commit.
pub struct Indexer {
    dir: PathBuf,
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    max_added: u64,
    dirty: bool,
    committed: Arc<AtomicU64>,
    pending: Arc<AtomicU64>,
    added_since_commit: u64,
    error: Arc<Mutex<Option<String>>>,
}

/// What opening found.
pub struct Opened {
    pub index: SearchIndex,
    pub indexer: Indexer,
    /// The highest sequence number the last commit covered (0 if new or rebuilt).
    pub watermark: u64,
    /// The index was missing or unreadable and was created empty: it must be rebuilt.
    pub rebuilt: Option<String>,
}

fn open_index(dir: &Path) -> std::result::Result<Index, String> {
    let idx = Index::open_in_dir(dir).map_err(|e| e.to_string())?;
    let (want, _) = schema();
    if idx.schema() != want {
        return Err("index schema differs from this version's".into());
    }
    Ok(idx)
}

impl SearchIndex {
    /// Opens the index in `dir`, creating (and flagging for rebuild) one that is missing or
    /// damaged.
    pub fn open(dir: &Path, refresh: Duration, writer_bytes: usize) -> Result<Opened> {
        let existed = dir.join("meta.json").exists();
        let (index, rebuilt) = match existed.then(|| open_index(dir)) {
            Some(Ok(i)) => (i, None),
            other => {
                let why = match other {
                    Some(Err(e)) => format!("unreadable ({e})"),
                    _ => "missing".to_string(),
                };
                let _ = std::fs::remove_dir_all(dir);
                crate::fs::create_private_dir(dir)?;
                let (schema, _) = schema();
                let i = Index::builder()
                    .schema(schema)
                    .settings(index_settings())
                    .create_in_dir(dir)
                    .map_err(|e| tantivy_err(dir, e))?;
                (i, Some(why))
            }
        };
        index.tokenizers().register(
            TOKENIZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        let (_, fields) = schema();
        let watermark = if rebuilt.is_some() {
            0
        } else {
            index
                .load_metas()
                .ok()
                .and_then(|m| m.payload)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0)
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
        let writer: IndexWriter = index
            .writer_with_num_threads(threads, writer_bytes.max((threads * 16) << 20))
            .map_err(|e| tantivy_err(dir, e))?;
        // Small, recent segments let a newest-first search stop early; cap merges so a
        // segment never grows past a size that is quick to walk.
        let mut mp = LogMergePolicy::default();
        mp.set_max_docs_before_merge(1_000_000);
        writer.set_merge_policy(Box::new(mp));
        // Merges rewrite whole index segments in bursts (a deletion's purge rewrites every
        // one): like sealing, they yield the CPU to requests and to indexing.
        crate::priority::lower_threads_named("merge_thread_", true);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| tantivy_err(dir, e))?;
        let committed = Arc::new(AtomicU64::new(watermark));
        let pending = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
        Ok(Opened {
            indexer: Indexer {
                dir: dir.to_owned(),
                writer,
                reader: reader.clone(),
                fields: fields.clone(),
                max_added: watermark,
                dirty: false,
                committed: committed.clone(),
                pending: pending.clone(),
                added_since_commit: 0,
                error: error.clone(),
            },
            index: SearchIndex {
                dir: dir.to_owned(),
                reader,
                fields,
                tx: Mutex::new(None),
                thread: Mutex::new(None),
                committed,
                pending,
                refresh,
                error,
                columns: Mutex::new(HashMap::new()),
            },
            watermark,
            rebuilt,
        })
    }

    /// Starts the indexer thread; from now on rows go through [`SearchIndex::add`].
    pub fn start(&self, mut indexer: Indexer) -> Result<()> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let refresh = self.refresh;
        let t = std::thread::Builder::new()
            .name("ledger-index".into())
            .spawn(move || indexer.run(rx, refresh))
            .map_err(|e| EngineError::io("indexer thread", e))?;
        *self.tx.lock() = Some(tx);
        *self.thread.lock() = Some(t);
        Ok(())
    }

    fn send(&self, m: Msg) {
        if let Some(tx) = self.tx.lock().as_ref() {
            let _ = tx.send(m);
        }
    }

    /// Queues rows for indexing (called in sequence order).
    pub fn add(&self, project: ProjectId, rows: Vec<Arc<LogRecord>>) {
        self.pending.fetch_add(rows.len() as u64, Ordering::Relaxed);
        self.send(Msg::Rows(project, rows));
    }

    pub fn delete_project(&self, project: ProjectId) {
        self.send(Msg::DeleteProject(project));
    }

    /// Removes a dropped segment's rows: its project's rows with seq in `[lo, hi]` (a
    /// project's segments cover disjoint sequence ranges).
    pub fn delete_seqs(&self, project: ProjectId, lo: u64, hi: u64) {
        self.send(Msg::DeleteSeqs(project, lo, hi));
    }

    /// Removes the documents of these logs (commit to make it so).
    pub fn delete_seq_set(&self, seqs: Arc<std::collections::HashSet<u64>>) {
        self.send(Msg::DeleteSeqSet(seqs));
    }

    /// Commits, then rewrites every index segment that holds deleted documents without
    /// them (a deletion's words are then in no file), and waits for it.
    pub fn purge(&self) -> Result<()> {
        let p = self.start_purge()?;
        self.finish_purge(p)
    }

    /// Commits and lists the index segments that hold deleted documents, for
    /// [`SearchIndex::finish_purge`] to rewrite.
    pub fn start_purge(&self) -> Result<Purge> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Msg::Purge(tx));
        let segments = rx.recv().map_err(|_| EngineError::Closed)??;
        Ok(Purge { segments })
    }

    /// Rewrites a purge's index segments, each on its own and one at a time, on tantivy's
    /// merge threads (at background priority) while documents keep being added, then
    /// commits: the commit reloads the reader and lets tantivy delete the merged files.
    ///
    /// One at a time: four merges at once rewrote the index in 11–17 s instead of ~27 s
    /// for 10 M logs, but took the CPU that ingest needed (202 p99 near 100 ms meanwhile).
    /// Each segment alone rather than all into one: the index keeps segments of the size
    /// its merge policy makes (small recent ones let a newest-first search stop early).
    /// A merge that failed (the merge policy had started one on the same segment) is the
    /// error; purge again to finish.
    pub fn finish_purge(&self, p: Purge) -> Result<()> {
        if p.segments.is_empty() {
            return Ok(());
        }
        let mut first_err = None;
        for id in p.segments {
            let (tx, rx) = crossbeam_channel::bounded(1);
            self.send(Msg::MergeOne(id, tx));
            let merge = rx.recv().map_err(|_| EngineError::Closed)?;
            if let Err(e) = merge.wait() {
                first_err.get_or_insert(e);
            }
        }
        self.commit()?;
        match first_err {
            Some(e) => Err(tantivy_err(&self.dir, e)),
            None => Ok(()),
        }
    }

    /// Commits now and waits for it.
    pub fn commit(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Msg::Commit(tx));
        rx.recv().map_err(|_| EngineError::Closed)?
    }

    /// Every row with seq ≤ this is searchable.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// `Err` with the indexer's last failure, until a commit succeeds again.
    pub fn health(&self) -> std::result::Result<(), String> {
        match self.error.lock().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Rows accepted but not yet searchable.
    pub fn lag(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Stops the indexer after a last commit.
    pub fn close(&self) {
        let tx = self.tx.lock().take();
        drop(tx);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// True when the index can narrow `e` (else a bounded scan answers it).
    pub fn narrows(&self, e: &Expr) -> bool {
        self.translate(e).is_some()
    }

    fn text_term(&self, fi: usize, tok: &str) -> Term {
        Term::from_field_text(self.fields.text[fi], tok)
    }
}

impl Indexer {
    fn doc(&self, project: ProjectId, r: &LogRecord) -> TantivyDocument {
        let f = &self.fields;
        let mut d = TantivyDocument::default();
        d.add_u64(f.project, project);
        d.add_i64(f.ts, r.log.timestamp);
        d.add_u64(f.seq, r.seq);
        for (i, field) in TEXT_FIELDS.iter().enumerate() {
            if let Some(v) = r.get(*field) {
                d.add_text(f.text[i], v);
            }
        }
        d.add_text(f.enums[0], r.log.level.as_str());
        d.add_text(f.enums[1], r.log.log_type.as_str());
        d.add_text(f.enums[2], r.log.importance.as_str());
        for (field, tf) in &f.keywords {
            if let Some(v) = r.get(*field) {
                d.add_text(*tf, v);
            }
        }
        // Walked in the stored text where it can be (`attrs`): no `serde_json::Value` tree
        // to build and drop per log.
        match r.get(Field::Attributes).and_then(attrs::Attributes::of) {
            Some(attrs::Attributes::Text(j)) => d.add_field_value(f.attrs, j),
            Some(attrs::Attributes::Parsed(v)) => d.add_field_value(f.attrs, &v),
            None => {}
        }
        d
    }

    /// Adds rows (in sequence order).
    pub fn add(&mut self, project: ProjectId, rows: &[Arc<LogRecord>]) -> Result<()> {
        for r in rows {
            self.writer
                .add_document(self.doc(project, r))
                .map_err(|e| tantivy_err(&self.dir, e))?;
            self.max_added = self.max_added.max(r.seq);
        }
        self.added_since_commit += rows.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Deletes a project's documents with seq in `[lo, hi]` (before the indexer thread
    /// starts; afterwards [`SearchIndex::delete_seqs`]).
    pub fn delete_seqs(&mut self, project: ProjectId, lo: u64, hi: u64) -> Result<()> {
        self.handle(Msg::DeleteSeqs(project, lo, hi));
        match self.error.lock().clone() {
            Some(e) => Err(EngineError::Internal(e)),
            None => Ok(()),
        }
    }

    /// Adds rows read from a segment during a rebuild.
    pub fn add_owned(&mut self, project: ProjectId, rows: &[LogRecord]) -> Result<()> {
        for r in rows {
            self.writer
                .add_document(self.doc(project, r))
                .map_err(|e| tantivy_err(&self.dir, e))?;
            self.max_added = self.max_added.max(r.seq);
        }
        self.dirty = true;
        Ok(())
    }

    /// Makes everything added searchable and durable; the payload records how far.
    pub fn commit(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let mut pc = self
            .writer
            .prepare_commit()
            .map_err(|e| tantivy_err(&self.dir, e))?;
        pc.set_payload(&self.max_added.to_string());
        pc.commit().map_err(|e| tantivy_err(&self.dir, e))?;
        self.reader
            .reload()
            .map_err(|e| tantivy_err(&self.dir, e))?;
        self.committed.store(self.max_added, Ordering::Release);
        let done = std::mem::take(&mut self.added_since_commit);
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(done))
            });
        self.dirty = false;
        Ok(())
    }

    fn schema_seq_name(&self) -> String {
        self.reader
            .searcher()
            .schema()
            .get_field_name(self.fields.seq)
            .to_owned()
    }

    /// See [`SearchIndex::start_purge`].
    fn start_purge(&mut self) -> Result<Vec<tantivy::index::SegmentId>> {
        self.dirty = true;
        self.commit()?;
        let ids: Vec<tantivy::index::SegmentId> = self
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .filter(|r| r.num_deleted_docs() > 0)
            .map(|r| r.segment_id())
            .collect();
        Ok(ids)
    }

    fn handle(&mut self, m: Msg) {
        let res = match m {
            Msg::Rows(p, rows) => self.add(p, &rows),
            Msg::DeleteProject(p) => {
                self.writer
                    .delete_term(Term::from_field_u64(self.fields.project, p));
                self.dirty = true;
                Ok(())
            }
            Msg::DeleteSeqs(p, lo, hi) => {
                let q = BooleanQuery::new(vec![
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(
                            Term::from_field_u64(self.fields.project, p),
                            IndexRecordOption::Basic,
                        )) as Box<dyn Query>,
                    ),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Included(Term::from_field_u64(self.fields.seq, lo)),
                            Bound::Included(Term::from_field_u64(self.fields.seq, hi)),
                        )),
                    ),
                ]);
                self.dirty = true;
                self.writer
                    .delete_query(Box::new(q))
                    .map(|_| ())
                    .map_err(|e| tantivy_err(&self.dir, e))
            }
            Msg::DeleteSeqSet(seqs) => {
                let seq_field = self.schema_seq_name();
                let predicate = FunctionPredicate::from(move |seg: &tantivy::SegmentReader| {
                    let column = seg.fast_fields().u64(&seq_field)?;
                    let seqs = seqs.clone();
                    Ok(move |doc: tantivy::DocId| {
                        column.first(doc).is_some_and(|s| seqs.contains(&s))
                    })
                });
                self.dirty = true;
                self.writer
                    .delete_query(Box::new(DocPredicateQuery::from(predicate)))
                    .map(|_| ())
                    .map_err(|e| tantivy_err(&self.dir, e))
            }
            Msg::Commit(reply) => {
                let _ = reply.send(self.commit());
                return;
            }
            Msg::Purge(reply) => {
                let _ = reply.send(self.start_purge());
                return;
            }
            Msg::MergeOne(id, reply) => {
                let _ = reply.send(self.writer.merge(&[id]));
                return;
            }
        };
        if let Err(e) = res {
            tracing::error!(error = %e, "search indexing failed");
            *self.error.lock() = Some(e.to_string());
        }
    }

    fn run(&mut self, rx: Receiver<Msg>, refresh: Duration) {
        let mut last = Instant::now();
        loop {
            let wait = refresh.saturating_sub(last.elapsed());
            match rx.recv_timeout(wait) {
                Ok(m) => {
                    self.handle(m);
                    while let Ok(m) = rx.try_recv() {
                        self.handle(m);
                        if last.elapsed() >= refresh {
                            break;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last.elapsed() >= refresh {
                match self.commit() {
                    Ok(()) => {
                        self.error.lock().take();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "search index commit failed; will retry");
                        *self.error.lock() = Some(e.to_string());
                    }
                }
                last = Instant::now();
            }
        }
        if let Err(e) = self.commit() {
            tracing::error!(error = %e, "final search index commit failed");
        }
    }
}
