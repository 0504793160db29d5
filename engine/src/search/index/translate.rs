//! Turning a parsed query and the `/logs` filters into a tantivy query whose matches
//! include every log they match (a superset: `eval` has the last word).

use std::ops::Bound;

use tantivy::query::{
    BooleanQuery, InvertedIndexRangeQuery, Occur, PhraseQuery, Query, RangeQuery, RegexQuery,
    TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use super::{has_positions, SearchIndex};
use crate::query::Filter;
use crate::search::parser::{EnumField, Expr, TEXT_FIELDS};

impl SearchIndex {
    /// A query whose matches include every log `e` matches (it may match more), or `None`
    /// when the index cannot narrow `e`.
    pub(super) fn translate(&self, e: &Expr) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        match e {
            Expr::And(v) => {
                let parts: Vec<_> = v.iter().filter_map(|x| self.translate(x)).collect();
                if parts.is_empty() {
                    return None;
                }
                Some(Box::new(BooleanQuery::new(
                    parts.into_iter().map(|q| (Occur::Must, q)).collect(),
                )))
            }
            Expr::Or(v) => {
                let parts: Option<Vec<_>> = v.iter().map(|x| self.translate(x)).collect();
                Some(Box::new(BooleanQuery::new(
                    parts?.into_iter().map(|q| (Occur::Should, q)).collect(),
                )))
            }
            // The complement of a superset is not a superset: leave NOT to `eval`.
            Expr::Not(_) => None,
            Expr::Text { fields, tokens } => {
                let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for field in fields {
                    let fi = TEXT_FIELDS.iter().position(|t| t == field)?;
                    let q: Box<dyn Query> = if tokens.len() == 1 {
                        Box::new(TermQuery::new(
                            self.text_term(fi, &tokens[0]),
                            IndexRecordOption::Basic,
                        ))
                    } else if !has_positions(*field) {
                        Box::new(BooleanQuery::new(
                            tokens
                                .iter()
                                .map(|t| {
                                    let q: Box<dyn Query> = Box::new(TermQuery::new(
                                        self.text_term(fi, t),
                                        IndexRecordOption::Basic,
                                    ));
                                    (Occur::Must, q)
                                })
                                .collect(),
                        ))
                    } else {
                        Box::new(PhraseQuery::new(
                            tokens.iter().map(|t| self.text_term(fi, t)).collect(),
                        ))
                    };
                    any.push((Occur::Should, q));
                }
                Some(Box::new(BooleanQuery::new(any)))
            }
            Expr::Keyword { field, value } => {
                let (_, tf) = f.keywords.iter().find(|(k, _)| k == field)?;
                Some(Box::new(TermQuery::new(
                    Term::from_field_text(*tf, value),
                    IndexRecordOption::Basic,
                )))
            }
            Expr::Enum { field, value } => Some(Box::new(TermQuery::new(
                self.enum_term(*field, *value)?,
                IndexRecordOption::Basic,
            ))),
            Expr::Attr { path, value } => {
                let p = path.join(".");
                let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                let mut push = |t: Term| {
                    any.push((
                        Occur::Should,
                        Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                    ))
                };
                let mut t = Term::from_field_json_path(f.attrs, &p, false);
                t.append_type_and_str(value);
                push(t);
                if let Ok(v) = value.parse::<f64>() {
                    if v.is_finite() {
                        for t in numeric_terms(f.attrs, &p, v) {
                            push(t);
                        }
                    }
                }
                if value == "true" || value == "false" {
                    let mut t = Term::from_field_json_path(f.attrs, &p, false);
                    t.append_type_and_fast_value(value == "true");
                    push(t);
                }
                Some(Box::new(BooleanQuery::new(any)))
            }
            Expr::AttrRange { path, lo, hi } => {
                let p = path.join(".");
                let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                // Numbers are indexed as i64 when integral and in range, else as f64 (or u64
                // past i64::MAX): cover each typed range of the path.
                let term = |v: Box<dyn Fn(&mut Term)>| {
                    let mut t = Term::from_field_json_path(f.attrs, &p, false);
                    v(&mut t);
                    t
                };
                let bound_i = |b: &Bound<f64>, up: bool| -> Bound<Term> {
                    let v = match b {
                        Bound::Unbounded => {
                            if up {
                                i64::MAX
                            } else {
                                i64::MIN
                            }
                        }
                        Bound::Included(x) | Bound::Excluded(x) => {
                            if up {
                                x.floor().clamp(i64::MIN as f64, i64::MAX as f64) as i64
                            } else {
                                x.ceil().clamp(i64::MIN as f64, i64::MAX as f64) as i64
                            }
                        }
                    };
                    Bound::Included(term(Box::new(move |t| t.append_type_and_fast_value(v))))
                };
                any.push((
                    Occur::Should,
                    Box::new(InvertedIndexRangeQuery::new(
                        bound_i(lo, false),
                        bound_i(hi, true),
                    )),
                ));
                let bound_f = |b: &Bound<f64>, up: bool| -> Bound<Term> {
                    let v = match b {
                        Bound::Unbounded => {
                            if up {
                                f64::MAX
                            } else {
                                f64::MIN
                            }
                        }
                        Bound::Included(x) | Bound::Excluded(x) => *x,
                    };
                    Bound::Included(term(Box::new(move |t| t.append_type_and_fast_value(v))))
                };
                any.push((
                    Occur::Should,
                    Box::new(InvertedIndexRangeQuery::new(
                        bound_f(lo, false),
                        bound_f(hi, true),
                    )),
                ));
                let reaches_u64 = match hi {
                    Bound::Unbounded => true,
                    Bound::Included(x) | Bound::Excluded(x) => *x >= i64::MAX as f64,
                };
                if reaches_u64 {
                    let lo_t = term(Box::new(|t| t.append_type_and_fast_value(0u64)));
                    let hi_t = term(Box::new(|t| t.append_type_and_fast_value(u64::MAX)));
                    any.push((
                        Occur::Should,
                        Box::new(InvertedIndexRangeQuery::new(
                            Bound::Included(lo_t),
                            Bound::Included(hi_t),
                        )),
                    ));
                }
                Some(Box::new(BooleanQuery::new(any)))
            }
            Expr::Regex { field, re } => {
                let fi = TEXT_FIELDS.iter().position(|t| t == field)?;
                regex_narrowing(re.as_str(), f.text[fi])
            }
        }
    }

    pub(super) fn enum_term(&self, field: EnumField, value: u8) -> Option<Term> {
        let (i, name) = match field {
            EnumField::Level => (0, crate::model::Level::from_u8(value)?.as_str()),
            EnumField::LogType => (1, crate::model::LogType::from_u8(value)?.as_str()),
            EnumField::Importance => (2, crate::model::Importance::from_u8(value)?.as_str()),
        };
        Some(Term::from_field_text(self.fields.enums[i], name))
    }

    /// The `/logs` filters that the index can apply exactly.
    pub(super) fn filter_queries(&self, filter: &Filter) -> Vec<Box<dyn Query>> {
        let mut out: Vec<Box<dyn Query>> = Vec::new();
        let masks = [
            (EnumField::Level, filter.levels, 5),
            (EnumField::LogType, filter.log_types, 4),
            (EnumField::Importance, filter.importances, 3),
        ];
        for (field, mask, n) in masks {
            let Some(mask) = mask else { continue };
            let any: Vec<(Occur, Box<dyn Query>)> = (0..n)
                .filter(|b| mask & (1 << b) != 0)
                .filter_map(|b| self.enum_term(field, b))
                .map(|t| {
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>,
                    )
                })
                .collect();
            out.push(Box::new(BooleanQuery::new(any)));
        }
        for (field, value) in &filter.fields {
            if let Some((_, tf)) = self.fields.keywords.iter().find(|(k, _)| k == field) {
                out.push(Box::new(TermQuery::new(
                    Term::from_field_text(*tf, value),
                    IndexRecordOption::Basic,
                )));
            }
        }
        if filter.start.is_some() || filter.end.is_some() {
            let lo = filter.start.map_or(Bound::Unbounded, |s| {
                Bound::Included(Term::from_field_i64(self.fields.ts, s))
            });
            let hi = filter.end.map_or(Bound::Unbounded, |e| {
                Bound::Excluded(Term::from_field_i64(self.fields.ts, e))
            });
            if !matches!((&lo, &hi), (Bound::Unbounded, Bound::Unbounded)) {
                out.push(Box::new(RangeQuery::new(lo, hi)));
            }
        }
        out
    }
}

/// The typed terms a number may be indexed as in a JSON field.
fn numeric_terms(field: tantivy::schema::Field, path: &str, v: f64) -> Vec<Term> {
    let mut out = Vec::new();
    let mut t = Term::from_field_json_path(field, path, false);
    if v.fract() == 0.0 && v >= i64::MIN as f64 && v <= i64::MAX as f64 {
        t.append_type_and_fast_value(v as i64);
    } else if v.fract() == 0.0 && v >= 0.0 && v <= u64::MAX as f64 {
        t.append_type_and_fast_value(v as u64);
    } else {
        t.append_type_and_fast_value(v);
    }
    out.push(t);
    out
}

/// A term-dictionary regex over a text field that every message `re` matches must contain a
/// token of: the longest letters-and-digits run of each required literal. `None` when the
/// regex requires no literal (then a bounded scan answers it).
fn regex_narrowing(re: &str, field: tantivy::schema::Field) -> Option<Box<dyn Query>> {
    use regex_syntax::hir::literal::Extractor;
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(re)
        .ok()?;
    let seq = Extractor::new().extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() {
        return None;
    }
    // Case variants and character classes expand into many literals that share their
    // longest token: look each distinct token up once.
    let mut best_tokens = std::collections::BTreeSet::new();
    for lit in lits {
        let text = String::from_utf8_lossy(lit.as_bytes()).to_lowercase();
        let best = text
            .split(|c: char| !c.is_alphanumeric())
            .max_by_key(|t| t.len())
            .filter(|t| t.len() >= 2)?;
        best_tokens.insert(best.to_string());
    }
    if best_tokens.len() > 16 {
        return None;
    }
    let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for best in best_tokens {
        let pattern = format!(".*{}.*", regex_syntax::escape(&best));
        any.push((
            Occur::Should,
            Box::new(RegexQuery::from_pattern(&pattern, field).ok()?),
        ));
    }
    Some(Box::new(BooleanQuery::new(any)))
}
