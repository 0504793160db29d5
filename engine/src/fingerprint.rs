//! Error fingerprints: one hex string per kind of error, so that "user 42 not found" and
//! "user 97 not found" group together while a different exception type does not.
//!
//! # Algorithm, version 2
//!
//! The version byte is hashed in first, so a change of rules yields new fingerprints rather
//! than silently regrouping old ones. A fingerprint is computed once, at ingest, and stored
//! with the log (`error_fingerprint`); it never changes afterwards, across restarts or
//! releases. A release that changes any rule below must bump [`ALGORITHM_VERSION`].
//!
//! A log gets a fingerprint when it carries an error: `error_type` or `error_message` is set,
//! or its `log_type` is `exception` ([`has_error`]). The hash input is:
//!
//! 1. [`ALGORITHM_VERSION`] as one byte;
//! 2. the error type, trimmed of surrounding whitespace (empty when absent); a NUL byte;
//! 3. the message (`error_message`, else `message`, else empty) masked by [`mask_message`]:
//!    * a quoted run (`"…"`, `'…'` or `` `…` ``, closed later in the message, opened at the
//!      start or after a character that is not a letter or digit) → `<str>`;
//!    * whitespace runs fold to one space, and the ends are trimmed;
//!    * the rest splits into words of letters, digits and `_ - . @ +` (so `/`, `:`, `=` and
//!      other punctuation separate words and survive as they are: a path keeps its shape);
//!      each word is masked by [`mask_word`], a trailing `.` kept aside:
//!      - a UUID (8-4-4-4-12 hex digits) → `<uuid>`;
//!      - an e-mail address (`@` inside, a `.` after it) → `<email>`;
//!      - `0x` and hex digits, or hex digits mixing letters and digits → `<hex>`;
//!      - a number (digits, optional sign, `.`s) → `<num>`;
//!      - any other word with a digit in it (an id: `usr_8f2k1`, `order-17`, `v2`) has each
//!        `_ - . + @`-separated part that holds a digit replaced by `<id>`;
//!      - a word without digits is kept: the message's shape survives.
//!
//!    So paths with ids group: `GET /users/42/orders/5f3a9c` → `GET /users/<num>/orders/<hex>`;
//! 4. the top three in-app stack frames ([`top_frames`]: lines that look like frames of
//!    Python, JavaScript, Java, .NET, Rust or Go traces, library and runtime frames skipped),
//!    each with line and column numbers dropped; each preceded by a NUL byte.
//!
//! The input is hashed with blake3; the fingerprint is the first 16 bytes of the hash in
//! lower-case hex (32 characters). Frames past the third in-app frame, line numbers, library
//! frames and the variable parts above never change a fingerprint; a different error type,
//! a different message shape or different top frames always do (barring a 128-bit collision).

use crate::model::{Field, LogType, NewLog};

/// The version of the rules above; hashed into every fingerprint.
pub const ALGORITHM_VERSION: u8 = 2;
/// How many in-app frames take part.
const TOP_FRAMES: usize = 3;

/// True when the log carries an error and so gets a fingerprint.
pub fn has_error(log: &NewLog) -> bool {
    log.log_type == LogType::Exception
        || log.get(Field::ErrorType).is_some()
        || log.get(Field::ErrorMessage).is_some()
}

/// The fingerprint of a log's error, or `None` when it carries none.
pub fn fingerprint(log: &NewLog) -> Option<String> {
    let (ty, masked) = title(log)?;
    let mut h = blake3::Hasher::new();
    h.update(&[ALGORITHM_VERSION]);
    h.update(ty.as_bytes());
    h.update(&[0]);
    h.update(masked.as_bytes());
    for frame in top_frames(log.get(Field::StackTrace).unwrap_or(""), TOP_FRAMES) {
        h.update(&[0]);
        h.update(frame.as_bytes());
    }
    let hash = h.finalize();
    Some(hex::encode(&hash.as_bytes()[..16]))
}

/// What an error group is called: its trimmed type (empty when absent) and its masked
/// message — the two text parts the fingerprint hashes. `None` when the log carries no error.
pub fn title(log: &NewLog) -> Option<(&str, String)> {
    if !has_error(log) {
        return None;
    }
    let ty = log.get(Field::ErrorType).unwrap_or("").trim();
    let msg = log
        .get(Field::ErrorMessage)
        .or_else(|| log.get(Field::Message))
        .unwrap_or("");
    Some((ty, mask_message(msg)))
}

/// Replaces the variable parts of a message with placeholders: `<str>`, `<uuid>`, `<email>`,
/// `<hex>`, `<num>`, `<id>` (rules in the module doc). Whitespace runs fold to one space.
pub fn mask_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let chars: Vec<char> = msg.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A quote opens a run only where a word cannot go on, so the apostrophe of "can't"
        // does not swallow the rest of the message.
        let opens = i == 0 || !chars[i - 1].is_alphanumeric();
        if (c == '"' || c == '\'' || c == '`') && opens {
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

/// Masks one word (letters, digits and `_ - . @ +`); see the module doc for the rules.
/// Words without digits, UUIDs or e-mail addresses are returned unchanged.
pub fn mask_word(w: &str) -> String {
    let trimmed = w.trim_end_matches('.');
    let tail = &w[trimmed.len()..];
    let w = trimmed;
    if w.is_empty() {
        return tail.to_string();
    }
    let has_digit = w.bytes().any(|c| c.is_ascii_digit());
    let masked = if is_uuid(w) {
        "<uuid>".to_string()
    } else if is_email(w) {
        "<email>".to_string()
    } else if (w.starts_with("0x") || w.starts_with("0X"))
        && w.len() > 2
        && w[2..].bytes().all(|c| c.is_ascii_hexdigit())
    {
        "<hex>".to_string()
    } else if !has_digit {
        w.to_string()
    } else if w
        .trim_start_matches(['-', '+'])
        .bytes()
        .all(|c| c.is_ascii_digit() || c == b'.')
    {
        "<num>".to_string()
    } else if w.bytes().all(|c| c.is_ascii_hexdigit()) {
        // Digits and a–f letters mixed: a hash, a short commit, a hex id.
        "<hex>".to_string()
    } else {
        // An identifier with an id in it (`order_123`, `usr_8f2k1`, `v2`): every part
        // that holds a digit is the variable one.
        let mut s = String::with_capacity(w.len());
        let mut start = 0;
        for (i, c) in w.char_indices() {
            if matches!(c, '_' | '-' | '.' | '+' | '@') {
                push_id_part(&mut s, &w[start..i]);
                s.push(c);
                start = i + 1;
            }
        }
        push_id_part(&mut s, &w[start..]);
        s
    };
    masked + tail
}

fn push_id_part(out: &mut String, part: &str) {
    if part.bytes().any(|c| c.is_ascii_digit()) {
        out.push_str("<id>");
    } else {
        out.push_str(part);
    }
}

fn is_email(w: &str) -> bool {
    match w.find('@') {
        Some(at) if at > 0 => w[at + 1..].contains('.'),
        _ => false,
    }
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
    fn paths_with_ids_are_masked() {
        for (a, b) in [
            (
                "GET /users/42/orders/5f3a9c failed",
                "GET /users/7/orders/e81b20 failed",
            ),
            (
                "no such file /var/data/usr_8f2k1/blob",
                "no such file /var/data/usr_3a/blob",
            ),
            (
                "lock held by job-17 on shard:3",
                "lock held by job-9042 on shard:12",
            ),
        ] {
            assert_eq!(mask_message(a), mask_message(b), "{a} vs {b}");
        }
        assert_eq!(
            mask_message("GET /users/42/orders/5f3a9c failed"),
            "GET /users/<num>/orders/<hex> failed"
        );
        assert_eq!(mask_word("usr_8f2k1"), "usr_<id>");
        assert_eq!(mask_word("order-17."), "order-<id>.");
        // Paths keep their shape: a different route is a different error.
        assert_ne!(
            mask_message("GET /users/42 failed"),
            mask_message("GET /orders/42 failed")
        );
    }

    #[test]
    fn masking_keeps_words_and_apostrophes() {
        assert_eq!(
            mask_message("can't open  'a b'   for user 42"),
            "can't open <str> for user <num>"
        );
        assert_eq!(mask_message("plain words stay"), "plain words stay");
        assert_eq!(
            mask_message("id 123e4567-e89b-12d3-a456-426614174000 from x@y.io at 0xFF"),
            "id <uuid> from <email> at <hex>"
        );
    }

    #[test]
    fn fingerprints_are_stable_across_releases() {
        // Pinned: a change here regroups every stored error. Bump ALGORITHM_VERSION with
        // any change of rules, then update this value.
        let f = fingerprint(&err(
            "KeyError",
            "user 42 not found",
            "  File \"app/a.py\", line 10, in f",
        ))
        .unwrap();
        assert_eq!(f, PINNED);
    }
    const PINNED: &str = "a0b9d36fd528525cf557b5e0dc8dd922";

    #[test]
    fn logs_without_errors_have_no_fingerprint() {
        let l = NewLog::new(0, Level::Error, LogType::Logger, Importance::High);
        assert_eq!(fingerprint(&l), None);
        let f = fingerprint(&err("E", "m", "")).unwrap();
        assert_eq!(f.len(), 32);
        assert!(f.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
