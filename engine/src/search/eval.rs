//! The meaning of a query, evaluated on one stored log. The index only narrows candidates;
//! every result is checked here, so this file is the definition of what matches.

use std::ops::Bound;

use crate::model::{Field, LogRecord};
use crate::query::lookup_attr;

use super::parser::{EnumField, Expr};
use super::tokenize::tokenize;

/// True when `needle` occurs as consecutive tokens of `hay`.
fn contains_run(hay: &[String], needle: &[String]) -> bool {
    if needle.len() == 1 {
        return hay.iter().any(|t| *t == needle[0]);
    }
    hay.windows(needle.len()).any(|w| w == needle)
}

fn in_range(v: f64, lo: &Bound<f64>, hi: &Bound<f64>) -> bool {
    (match lo {
        Bound::Included(l) => v >= *l,
        Bound::Excluded(l) => v > *l,
        Bound::Unbounded => true,
    }) && (match hi {
        Bound::Included(h) => v <= *h,
        Bound::Excluded(h) => v < *h,
        Bound::Unbounded => true,
    })
}

/// A log evaluated lazily: fields are tokenized and attributes parsed only when asked.
struct Doc<'a> {
    rec: &'a LogRecord,
    tokens: [Option<Vec<String>>; 4],
    attrs: Option<Option<serde_json::Value>>,
}

impl Doc<'_> {
    fn tokens(&mut self, f: Field) -> &[String] {
        let i = super::parser::TEXT_FIELDS
            .iter()
            .position(|t| *t == f)
            .unwrap_or(0);
        let rec = self.rec;
        self.tokens[i].get_or_insert_with(|| rec.get(f).map(tokenize).unwrap_or_default())
    }
    fn attrs(&mut self) -> Option<&serde_json::Value> {
        let rec = self.rec;
        self.attrs
            .get_or_insert_with(|| {
                rec.get(Field::Attributes)
                    .and_then(|t| serde_json::from_str(t).ok())
            })
            .as_ref()
    }
}

fn eval(e: &Expr, d: &mut Doc<'_>) -> bool {
    match e {
        Expr::And(v) => v.iter().all(|x| eval(x, d)),
        Expr::Or(v) => v.iter().any(|x| eval(x, d)),
        Expr::Not(x) => !eval(x, d),
        Expr::Text { fields, tokens } => fields.iter().any(|f| contains_run(d.tokens(*f), tokens)),
        Expr::Keyword { field, value } => d.rec.get(*field) == Some(value.as_str()),
        Expr::Enum { field, value } => {
            let l = &d.rec.log;
            *value
                == match field {
                    EnumField::Level => l.level as u8,
                    EnumField::LogType => l.log_type as u8,
                    EnumField::Importance => l.importance as u8,
                }
        }
        Expr::Attr { path, value } => {
            let m = crate::query::AttrMatch {
                path: path.clone(),
                value: value.clone(),
            };
            d.attrs().is_some_and(|o| crate::query::attr_matches(o, &m))
        }
        Expr::AttrRange { path, lo, hi } => d
            .attrs()
            .and_then(|o| lookup_attr(o, path))
            .and_then(serde_json::Value::as_f64)
            .is_some_and(|v| in_range(v, lo, hi)),
        Expr::Regex { field, re } => d.rec.get(*field).is_some_and(|t| re.is_match(t)),
    }
}

/// True when the log matches the query.
pub fn matches(e: &Expr, rec: &LogRecord) -> bool {
    let mut d = Doc {
        rec,
        tokens: Default::default(),
        attrs: None,
    };
    eval(e, &mut d)
}
