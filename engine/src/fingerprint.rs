//! Error fingerprints: one hex string per kind of error, so that "user 42 not found" and
//! "user 97 not found" group together while a different exception type does not.
//!
//! Algorithm, version 1 (the version is hashed in, so a future change of rules yields new
//! fingerprints rather than silently regrouping old ones):
//! 1. the error type, trimmed;
//! 2. the message (`error_message`, else `message`) with variable parts masked by
//!    [`mask_message`]: UUIDs, hex numbers, numbers, quoted strings, e-mail addresses;
//! 3. the top three in-app stack frames (library frames skipped), each reduced to file and
//!    function with line and column numbers dropped;
//!
//! joined with NUL separators and hashed with blake3; the fingerprint is the first 16 bytes
//! of the hash in lower-case hex.

use crate::model::{Field, LogType, NewLog};

pub const ALGORITHM_VERSION: u8 = 1;
const TOP_FRAMES: usize = 3;

/// True when the log carries an error and so gets a fingerprint.
pub fn has_error(log: &NewLog) -> bool {
    log.log_type == LogType::Exception
        || log.get(Field::ErrorType).is_some()
        || log.get(Field::ErrorMessage).is_some()
}

/// The fingerprint of a log's error, or `None` when it carries none.
pub fn fingerprint(log: &NewLog) -> Option<String> {
    if !has_error(log) {
        return None;
    }
    let ty = log.get(Field::ErrorType).unwrap_or("").trim();
    let msg = log
        .get(Field::ErrorMessage)
        .or_else(|| log.get(Field::Message))
        .unwrap_or("");
    let mut h = blake3::Hasher::new();
    h.update(&[ALGORITHM_VERSION]);
    h.update(ty.as_bytes());
    h.update(&[0]);
    h.update(mask_message(msg).as_bytes());
    for frame in top_frames(log.get(Field::StackTrace).unwrap_or(""), TOP_FRAMES) {
        h.update(&[0]);
        h.update(frame.as_bytes());
    }
    let hash = h.finalize();
    Some(
        hash.as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// Replaces the variable parts of a message with placeholders: `<uuid>`, `<hex>`, `<num>`,
/// `<str>`, `<email>`. Whitespace runs fold to one space.
pub fn mask_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let chars: Vec<char> = msg.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            if let Some(end) = chars[i + 1..].iter().position(|&d| d == c) {
                out.push_str("<str>");
                i += end + 2;
                continue;
            }
        }
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            i += 1;
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '@' || c == '+' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_-.@+".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push_str(&mask_word(&word));
            continue;
        }
        out.push(c);
        i += 1;
    }
    out.trim().to_string()
}

fn is_uuid(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Masks one word; words made of letters only are kept, so the message's shape survives.
fn mask_word(w: &str) -> String {
    let trimmed = w.trim_end_matches('.');
    let tail = &w[trimmed.len()..];
    let w = trimmed;
    if w.is_empty() {
        return tail.to_string();
    }
    let masked = if is_uuid(w) {
        "<uuid>".to_string()
    } else if w.contains('@') && w.contains('.') && !w.starts_with('@') {
        "<email>".to_string()
    } else if (w.starts_with("0x") || w.starts_with("0X"))
        && w.len() > 2
        && w[2..].bytes().all(|c| c.is_ascii_hexdigit())
    {
        "<hex>".to_string()
    } else if w.len() >= 8
        && w.bytes().all(|c| c.is_ascii_hexdigit())
        && w.bytes().any(|c| c.is_ascii_digit())
    {
        "<hex>".to_string()
    } else if w
        .trim_start_matches(['-', '+'])
        .bytes()
        .all(|c| c.is_ascii_digit() || c == b'.')
        && w.bytes().any(|c| c.is_ascii_digit())
    {
        "<num>".to_string()
    } else if w.bytes().any(|c| c.is_ascii_digit()) {
        // Identifiers with ids in them (`order_123`, `/users/42/edit`): mask digit runs.
        let mut s = String::new();
        let mut in_digits = false;
        for ch in w.chars() {
            if ch.is_ascii_digit() {
                if !in_digits {
                    s.push_str("<num>");
                }
                in_digits = true;
            } else {
                s.push(ch);
                in_digits = false;
            }
        }
        s
    } else {
        w.to_string()
    };
    masked + tail
}

/// Markers of frames that belong to libraries or the runtime, not to the application.
const LIBRARY_MARKERS: &[&str] = &[
    "site-packages",
    "dist-packages",
    "node_modules",
    "/usr/lib/",
    "/lib/python",
    "<frozen",
    "internal/",
    "java.",
    "javax.",
    "sun.",
    "jdk.",
    "kotlin.",
    "/rustc/",
    ".cargo/registry",
    "runtime/",
    "System.",
    "Microsoft.",
];

/// The top `n` in-app frames of a stack trace, each with line and column numbers removed.
pub fn top_frames(stack: &str, n: usize) -> Vec<String> {
    stack
        .lines()
        .map(str::trim)
        .filter(|l| looks_like_frame(l))
        .filter(|l| !LIBRARY_MARKERS.iter().any(|m| l.contains(m)))
        .take(n)
        .map(strip_line_numbers)
        .collect()
}

fn looks_like_frame(l: &str) -> bool {
    l.starts_with("File \"") || l.starts_with("at ") || (l.contains(".rs:") || l.contains(".go:"))
}

/// Removes `line N`, `:N` and `:N:M` so a frame survives edits elsewhere in the file.
fn strip_line_numbers(l: &str) -> String {
    let mut out = String::with_capacity(l.len());
    let b: Vec<char> = l.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == ':' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    let out = out.replace(", line ", ", ");
    // Python: `File "x.py", 12, in f` after the replace; drop the bare number.
    out.split(", ")
        .filter(|p| !p.bytes().all(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Importance, Level};

    fn err(ty: &str, msg: &str, stack: &str) -> NewLog {
        let mut l = NewLog::new(0, Level::Error, LogType::Exception, Importance::High);
        l.set(Field::ErrorType, ty).set(Field::ErrorMessage, msg);
        if !stack.is_empty() {
            l.set(Field::StackTrace, stack);
        }
        l
    }

    #[test]
    fn numbers_are_masked() {
        assert_eq!(
            fingerprint(&err("NotFound", "user 42 not found", "")),
            fingerprint(&err("NotFound", "user 97 not found", ""))
        );
    }

    #[test]
    fn hex_uuid_quotes_and_emails_are_masked() {
        for (a, b) in [
            ("ptr 0xdeadbeef freed", "ptr 0x1234 freed"),
            ("commit a1b2c3d4e5f6 bad", "commit 0f9e8d7c6b5a bad"),
            (
                "order 123e4567-e89b-12d3-a456-426614174000 missing",
                "order 00000000-0000-0000-0000-000000000000 missing",
            ),
            ("key 'abc' unknown", "key 'zzz top' unknown"),
            ("no user bob@example.com", "no user alice@corp.io"),
            ("GET /users/42/edit failed", "GET /users/7/edit failed"),
        ] {
            assert_eq!(mask_message(a), mask_message(b), "{a} vs {b}");
            assert_eq!(fingerprint(&err("E", a, "")), fingerprint(&err("E", b, "")));
        }
    }

    #[test]
    fn different_types_differ() {
        assert_ne!(
            fingerprint(&err("ValueError", "bad", "")),
            fingerprint(&err("KeyError", "bad", ""))
        );
        assert_ne!(
            fingerprint(&err("E", "disk full", "")),
            fingerprint(&err("E", "disk empty", ""))
        );
    }

    #[test]
    fn line_numbers_and_frames_beyond_the_top_are_ignored() {
        let a = "Traceback:\n  File \"app/a.py\", line 10, in f\n  File \"app/b.py\", line 20, in g\n  File \"app/c.py\", line 30, in h\n  File \"app/d.py\", line 40, in i";
        let b = "Traceback:\n  File \"app/a.py\", line 11, in f\n  File \"app/b.py\", line 21, in g\n  File \"/usr/lib/python3/site-packages/x.py\", line 1, in lib\n  File \"app/c.py\", line 99, in h\n  File \"app/zzz.py\", line 1, in other";
        assert_eq!(
            fingerprint(&err("E", "m", a)),
            fingerprint(&err("E", "m", b))
        );
        let c = "  File \"app/x.py\", line 10, in f";
        assert_ne!(
            fingerprint(&err("E", "m", a)),
            fingerprint(&err("E", "m", c))
        );
    }

    #[test]
    fn logs_without_errors_have_no_fingerprint() {
        let l = NewLog::new(0, Level::Error, LogType::Logger, Importance::High);
        assert_eq!(fingerprint(&l), None);
        let f = fingerprint(&err("E", "m", "")).unwrap();
        assert_eq!(f.len(), 32);
        assert!(f.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
