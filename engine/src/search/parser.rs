//! The query language of `/logs/search`, parsed into an [`Expr`] with precise errors.
//!
//! ```text
//! query    := or
//! or       := and ("OR" and)*
//! and      := unary (("AND")? unary)*          adjacent terms are ANDed
//! unary    := ("NOT" | "-") unary | primary
//! primary  := "(" or ")" | phrase | field ":" value | word
//! value    := word | phrase | /regex/flags | (">" | ">=" | "<" | "<=") number
//!           | "[" number "TO" number "]"
//! ```
//! OR binds loosest, then AND, then NOT. Words and phrases match `message`, `error_message`,
//! `error_type` and `stack_trace` token by token (case-insensitive); `field:` narrows that.

use std::ops::Bound;

use crate::model::{Field, Importance, Level, LogType};

use super::tokenize::tokenize;

/// A parse error: the byte position in the query and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

/// The text fields words and phrases search by default.
pub const TEXT_FIELDS: [Field; 4] = [
    Field::Message,
    Field::ErrorMessage,
    Field::ErrorType,
    Field::StackTrace,
];

/// Fields matched exactly (the whole value, case-sensitive).
pub const KEYWORD_FIELDS: [Field; 9] = [
    Field::Service,
    Field::Environment,
    Field::Release,
    Field::Source,
    Field::Platform,
    Field::Language,
    Field::ErrorFingerprint,
    Field::TraceId,
    Field::SpanId,
];

/// Which enum a `level:`, `log_type:` or `importance:` term names, as a bit in a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumField {
    Level,
    LogType,
    Importance,
}

#[derive(Debug, Clone)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// Consecutive tokens in one of `fields` (one token: a word; more: a phrase).
    Text {
        fields: Vec<Field>,
        tokens: Vec<String>,
    },
    /// An exact keyword.
    Keyword {
        field: Field,
        value: String,
    },
    /// `level:error` and friends, as the enum's byte.
    Enum {
        field: EnumField,
        value: u8,
    },
    /// `attributes.a.b:value`: a string equal to value, or a number/boolean whose JSON text
    /// (or numeric value) equals it.
    Attr {
        path: Vec<String>,
        value: String,
    },
    /// `attributes.a.b:>250`, `[1 TO 5]`: a number in range.
    AttrRange {
        path: Vec<String>,
        lo: Bound<f64>,
        hi: Bound<f64>,
    },
    /// `message:/re/flags` over the field's whole text.
    Regex {
        field: Field,
        re: regex::Regex,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Or,
    And,
    Not,
    Minus,
    Word(String),
    Phrase(String),
    /// `name:` — the field name, then the value follows.
    FieldName(String),
    Regex(String, String),
    Cmp(&'static str),
    LBracket,
    RBracket,
    To,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | ':' | '[' | ']')
}

impl<'a> Lexer<'a> {
    fn err(&self, at: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            position: at,
            message: msg.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, ParseError> {
        let mut out = Vec::new();
        // After a field name, a value may be a regex or a comparison.
        let mut after_field = false;
        while let Some(c) = self.peek() {
            let start = self.pos;
            if c.is_whitespace() {
                self.pos += c.len_utf8();
                after_field = false;
                continue;
            }
            let tok = match c {
                '(' => {
                    self.pos += 1;
                    Tok::LParen
                }
                ')' => {
                    self.pos += 1;
                    Tok::RParen
                }
                '[' => {
                    self.pos += 1;
                    Tok::LBracket
                }
                ']' => {
                    self.pos += 1;
                    Tok::RBracket
                }
                '"' => Tok::Phrase(self.phrase()?),
                '/' if after_field => self.regex()?,
                '>' | '<' if after_field => {
                    let op = if self.src[self.pos..].starts_with(">=") {
                        ">="
                    } else if self.src[self.pos..].starts_with("<=") {
                        "<="
                    } else if c == '>' {
                        ">"
                    } else {
                        "<"
                    };
                    self.pos += op.len();
                    out.push((start, Tok::Cmp(op)));
                    continue; // the number follows, still a value
                }
                '-' if out
                    .last()
                    .is_none_or(|(_, t)| !matches!(t, Tok::FieldName(_)))
                    && self.src[self.pos + 1..]
                        .chars()
                        .next()
                        .is_some_and(|n| n == '(' || n == '"' || is_word_char(n)) =>
                {
                    self.pos += 1;
                    Tok::Minus
                }
                ':' => return Err(self.err(start, "expected a field name before ':'")),
                _ => {
                    let w = self.word();
                    if self.peek() == Some(':') {
                        self.pos += 1;
                        out.push((start, Tok::FieldName(w)));
                        after_field = true;
                        if self.peek().is_none_or(char::is_whitespace) {
                            return Err(self.err(self.pos, "expected a value after ':'"));
                        }
                        continue;
                    }
                    match w.as_str() {
                        "OR" => Tok::Or,
                        "AND" => Tok::And,
                        "NOT" => Tok::Not,
                        "TO" => Tok::To,
                        _ => Tok::Word(w),
                    }
                }
            };
            after_field = false;
            out.push((start, tok));
        }
        Ok(out)
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !is_word_char(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.src[start..self.pos].to_string()
    }

    fn phrase(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(s),
                '\\' => {
                    if let Some(n) = self.peek() {
                        self.pos += n.len_utf8();
                        s.push(n);
                    }
                }
                _ => s.push(c),
            }
        }
        Err(self.err(start, "unterminated phrase: expected a closing '\"'"))
    }

    fn regex(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(start, "unterminated regex: expected a closing '/'"));
            };
            self.pos += c.len_utf8();
            match c {
                '/' => break,
                '\\' if self.peek() == Some('/') => {
                    self.pos += 1;
                    s.push('/');
                }
                _ => s.push(c),
            }
        }
        let fstart = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        Ok(Tok::Regex(s, self.src[fstart..self.pos].to_string()))
    }
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    i: usize,
    end: usize,
}

/// Most regexes compile within this; larger ones are refused (bounded cost).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Deepest nesting of parentheses and NOTs accepted.
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(_, t)| t)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |(p, _)| *p)
    }
    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            position: self.pos(),
            message: msg.into(),
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.i += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut parts = vec![self.unary(depth)?];
        loop {
            match self.peek() {
                None | Some(Tok::Or) | Some(Tok::RParen) => break,
                Some(Tok::And) => {
                    self.i += 1;
                    parts.push(self.unary(depth)?);
                }
                _ => parts.push(self.unary(depth)?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("query nests deeper than {MAX_DEPTH} levels")));
        }
        match self.peek() {
            Some(Tok::Not) | Some(Tok::Minus) => {
                self.i += 1;
                Ok(Expr::Not(Box::new(self.unary(depth + 1)?)))
            }
            _ => self.primary(depth),
        }
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let at = self.pos();
        let Some((_, tok)) = self.toks.get(self.i).cloned() else {
            return Err(self.err("expected a word, a phrase, a field term or '('"));
        };
        self.i += 1;
        match tok {
            Tok::LParen => {
                let e = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("expected ')'"));
                }
                self.i += 1;
                Ok(e)
            }
            Tok::Word(w) => text(TEXT_FIELDS.to_vec(), &w, at),
            Tok::Phrase(p) => text(TEXT_FIELDS.to_vec(), &p, at),
            Tok::FieldName(name) => self.field_value(&name, at),
            Tok::RParen => Err(ParseError {
                position: at,
                message: "unexpected ')'".into(),
            }),
            other => Err(ParseError {
                position: at,
                message: format!(
                    "expected a word, a phrase, a field term or '(', found {}",
                    describe(&other)
                ),
            }),
        }
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        let at = self.pos();
        match self.toks.get(self.i).cloned() {
            Some((_, Tok::Word(w))) => {
                self.i += 1;
                w.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or(ParseError {
                        position: at,
                        message: format!("expected a number, found {w:?}"),
                    })
            }
            _ => Err(self.err("expected a number")),
        }
    }

    fn field_value(&mut self, name: &str, at: usize) -> Result<Expr, ParseError> {
        let vat = self.pos();
        let Some((_, tok)) = self.toks.get(self.i).cloned() else {
            return Err(self.err("expected a value after ':'"));
        };
        if let Some(path) = name.strip_prefix("attributes.") {
            let path: Vec<String> = path.split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                return Err(ParseError {
                    position: at,
                    message: "attribute path has an empty segment".into(),
                });
            }
            self.i += 1;
            return match tok {
                Tok::Word(v) | Tok::Phrase(v) => Ok(Expr::Attr { path, value: v }),
                Tok::Cmp(op) => {
                    let v = self.number()?;
                    let (lo, hi) = match op {
                        ">" => (Bound::Excluded(v), Bound::Unbounded),
                        ">=" => (Bound::Included(v), Bound::Unbounded),
                        "<" => (Bound::Unbounded, Bound::Excluded(v)),
                        _ => (Bound::Unbounded, Bound::Included(v)),
                    };
                    Ok(Expr::AttrRange { path, lo, hi })
                }
                Tok::LBracket => {
                    let lo = self.number()?;
                    if self.peek() != Some(&Tok::To) {
                        return Err(self.err("expected 'TO' in a range"));
                    }
                    self.i += 1;
                    let hi = self.number()?;
                    if self.peek() != Some(&Tok::RBracket) {
                        return Err(self.err("expected ']' to close the range"));
                    }
                    self.i += 1;
                    Ok(Expr::AttrRange {
                        path,
                        lo: Bound::Included(lo),
                        hi: Bound::Included(hi),
                    })
                }
                other => Err(ParseError {
                    position: vat,
                    message: format!(
                        "expected a value, a comparison or a [a TO b] range, found {}",
                        describe(&other)
                    ),
                }),
            };
        }
        if let Some(field) = TEXT_FIELDS.iter().copied().find(|f| f.name() == name) {
            self.i += 1;
            return match tok {
                Tok::Word(v) | Tok::Phrase(v) => text(vec![field], &v, vat),
                Tok::Regex(re, flags) => regex(field, &re, &flags, vat),
                other => Err(ParseError {
                    position: vat,
                    message: format!(
                        "expected a word, a phrase or a /regex/, found {}",
                        describe(&other)
                    ),
                }),
            };
        }
        let value = match tok {
            Tok::Word(v) | Tok::Phrase(v) => v,
            other => {
                return Err(ParseError {
                    position: vat,
                    message: format!("expected a value, found {}", describe(&other)),
                })
            }
        };
        self.i += 1;
        let bad_enum = |expected: &str| ParseError {
            position: vat,
            message: format!("{name}: expected one of {expected}"),
        };
        match name {
            "level" => Ok(Expr::Enum {
                field: EnumField::Level,
                value: Level::parse(&value)
                    .ok_or_else(|| bad_enum("debug, info, warning, error, critical"))?
                    as u8,
            }),
            "log_type" => Ok(Expr::Enum {
                field: EnumField::LogType,
                value: LogType::parse(&value)
                    .ok_or_else(|| bad_enum("console, logger, exception, custom"))?
                    as u8,
            }),
            "importance" => Ok(Expr::Enum {
                field: EnumField::Importance,
                value: Importance::parse(&value)
                    .ok_or_else(|| bad_enum("low, standard, high"))? as u8,
            }),
            _ => match KEYWORD_FIELDS.iter().copied().find(|f| f.name() == name) {
                Some(field) => Ok(Expr::Keyword { field, value }),
                None => Err(ParseError {
                    position: at,
                    message: format!(
                        "unknown field {name:?}: expected level, log_type, importance, message, error_message, error_type, stack_trace, service, environment, release, source, platform, language, error_fingerprint, trace_id, span_id or attributes.<path>"
                    ),
                }),
            },
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Or => "'OR'".into(),
        Tok::And => "'AND'".into(),
        Tok::Not => "'NOT'".into(),
        Tok::Minus => "'-'".into(),
        Tok::To => "'TO'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Word(w) => format!("{w:?}"),
        Tok::Phrase(p) => format!("phrase {p:?}"),
        Tok::FieldName(f) => format!("field {f:?}"),
        Tok::Regex(r, _) => format!("regex /{r}/"),
        Tok::Cmp(c) => format!("'{c}'"),
    }
}

fn text(fields: Vec<Field>, s: &str, at: usize) -> Result<Expr, ParseError> {
    let tokens = tokenize(s);
    if tokens.is_empty() {
        return Err(ParseError {
            position: at,
            message: format!("{s:?} has no letters or digits to search for"),
        });
    }
    Ok(Expr::Text { fields, tokens })
}

fn regex(field: Field, re: &str, flags: &str, at: usize) -> Result<Expr, ParseError> {
    let mut b = regex::RegexBuilder::new(re);
    b.size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT);
    for f in flags.chars() {
        match f {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            _ => {
                return Err(ParseError {
                    position: at,
                    message: format!("unknown regex flag {f:?}: expected i, m or s"),
                })
            }
        };
    }
    let re = b.build().map_err(|e| ParseError {
        position: at,
        message: format!(
            "invalid regex: {}",
            e.to_string().lines().last().unwrap_or("")
        ),
    })?;
    Ok(Expr::Regex { field, re })
}

/// Parses a search query.
pub fn parse(q: &str) -> Result<Expr, ParseError> {
    if q.trim().is_empty() {
        return Err(ParseError {
            position: 0,
            message: "empty query: expected a word, a phrase, a field term or '('".into(),
        });
    }
    let toks = Lexer { src: q, pos: 0 }.tokens()?;
    let mut p = Parser {
        toks,
        i: 0,
        end: q.len(),
    };
    let e = p.or(0)?;
    if p.i < p.toks.len() {
        return Err(p.err(match p.peek() {
            Some(Tok::RParen) => "unexpected ')'".to_string(),
            Some(t) => format!("unexpected {}", describe(t)),
            None => "unexpected end".to_string(),
        }));
    }
    Ok(e)
}
