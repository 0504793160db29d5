//! Where the search index's bytes go, field by field: term dictionary, postings, positions
//! and fast-field columns, summed over every committed index segment (`ledgerctl inspect`).

use std::collections::BTreeMap;
use std::path::Path;

use tantivy::space_usage::PerFieldSpaceUsage;
use tantivy::Index;

use crate::error::Result;

use super::tantivy_err;

/// One field's bytes in the committed index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSpace {
    pub field: String,
    pub terms: u64,
    pub postings: u64,
    pub positions: u64,
    pub fast: u64,
}

impl FieldSpace {
    pub fn total(&self) -> u64 {
        self.terms + self.postings + self.positions + self.fast
    }
}

/// What the committed index holds: its documents, each field's bytes (largest first), the
/// document store (no field is stored: one empty entry per document), and the bytes that
/// belong to neither (field norms, deletes, metadata).
#[derive(Debug, Clone, Default)]
pub struct IndexSpace {
    pub docs: u64,
    pub segments: usize,
    pub fields: Vec<FieldSpace>,
    pub store: u64,
    pub other: u64,
    pub total: u64,
}

/// Reads the space usage of the index in `dir` (read-only: a running server's index can be
/// read; what it has not committed yet is not counted).
pub fn index_space(dir: &Path) -> Result<IndexSpace> {
    let index = Index::open_in_dir(dir).map_err(|e| tantivy_err(dir, e))?;
    let reader = index.reader().map_err(|e| tantivy_err(dir, e))?;
    let searcher = reader.searcher();
    let usage = searcher.space_usage().map_err(|e| tantivy_err(dir, e))?;
    let mut by: BTreeMap<String, FieldSpace> = BTreeMap::new();
    let mut add = |per: &PerFieldSpaceUsage, slot: fn(&mut FieldSpace) -> &mut u64| {
        for f in per.fields() {
            let e = by
                .entry(f.field_name().to_owned())
                .or_insert_with(|| FieldSpace {
                    field: f.field_name().to_owned(),
                    ..Default::default()
                });
            *slot(e) += f.total().get_bytes();
        }
    };
    let mut docs = 0u64;
    let mut store = 0u64;
    for s in usage.segments() {
        docs += u64::from(s.num_docs());
        store += s.store().total().get_bytes();
        add(s.termdict(), |f| &mut f.terms);
        add(s.postings(), |f| &mut f.postings);
        add(s.positions(), |f| &mut f.positions);
        add(s.fast_fields(), |f| &mut f.fast);
    }
    let mut fields: Vec<FieldSpace> = by.into_values().filter(|f| f.total() > 0).collect();
    fields.sort_by(|a, b| b.total().cmp(&a.total()).then(a.field.cmp(&b.field)));
    let total = usage.total().get_bytes();
    let in_fields: u64 = fields.iter().map(FieldSpace::total).sum();
    Ok(IndexSpace {
        docs,
        segments: usage.segments().len(),
        fields,
        store,
        other: total.saturating_sub(in_fields + store),
        total,
    })
}
