//! RFC 3339 timestamps to and from microseconds since the Unix epoch, UTC, through `jiff`.
//!
//! The engine keeps time as `i64` microseconds (what segments, indexes and rollups store);
//! these are the only places it becomes text.

use jiff::Timestamp;

/// `2026-11-22T12:26:36.123000Z`: UTC, always six fractional digits, so that the text sorts
/// like the number. Outside jiff's range (years -9999..=9999) it is clamped to the range's end.
pub fn format_micros(us: i64) -> String {
    format!("{:.6}", timestamp(us))
}

/// `2026-11-22`: the UTC date of `us`.
pub fn format_date(us: i64) -> String {
    timestamp(us)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

/// Parses an RFC 3339 timestamp with an offset (`Z` or `±hh:mm`); digits past the
/// microsecond are dropped, however many there are (RFC 3339 sets no limit; jiff reads nine).
/// Anything without an offset, or not a real date and time, is `None`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t: Timestamp = match long_fraction(s) {
        Some((digits_end, cut)) => format!("{}{}", &s[..cut], &s[digits_end..]).parse().ok()?,
        None => s.parse().ok()?,
    };
    // Floor, not jiff's toward-zero as_microsecond: before 1970 that would be a microsecond
    // late, and the text would not sort like the number.
    i64::try_from(t.as_nanosecond().div_euclid(1000)).ok()
}

/// Where a fraction of seconds longer than nine digits ends, and where its ninth digit ends.
fn long_fraction(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let dot = b.iter().position(|&c| c == b'.' || c == b',')?;
    let digits = b[dot + 1..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    (digits > 9).then_some((dot + 1 + digits, dot + 1 + 9))
}

fn timestamp(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(if us < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-22T12:26:36.123Z"),
            Some(1_795_350_396_123_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T14:26:36.123+02:00"),
            parse_rfc3339("2026-11-22T12:26:36.123Z")
        );
        assert_eq!(
            format_micros(1_795_350_396_123_000),
            "2026-11-22T12:26:36.123000Z"
        );
        assert_eq!(format_date(1_795_350_396_123_000), "2026-11-22");
        assert_eq!(format_micros(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.9999995Z"), Some(-1));
        // More digits than nanoseconds: still RFC 3339, cut like the rest.
        assert_eq!(
            parse_rfc3339("2026-11-22T12:26:36.1234567891234Z"),
            Some(1_795_350_396_123_456)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T14:26:36.123456789999+02:00"),
            Some(1_795_350_396_123_456)
        );
        assert_eq!(parse_rfc3339("2026-11-22T12:26:36.1234567891Zjunk"), None);
        assert_eq!(
            format_micros(i64::MAX),
            "9999-12-30T22:00:00.999999Z",
            "jiff's last instant"
        );
        assert_eq!(format_micros(i64::MIN), "-009999-01-02T01:59:59.000000Z");
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22T12:26:36",
            "2026-11-22T12:26:36.Z",
            "2026-11-22T12:26:36Zjunk",
            "2026-11-22T25:00:00Z",
            "２026-11-22T12:26:36Z",
            "2026-11-22T12:26:36.123",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(us in -62_000_000_000_000_000i64..253_000_000_000_000_000i64) {
            prop_assert_eq!(parse_rfc3339(&format_micros(us)), Some(us));
        }

        #[test]
        fn text_sorts_like_the_number(a in 0i64..253_000_000_000_000_000, b in 0i64..253_000_000_000_000_000) {
            prop_assert_eq!(format_micros(a).cmp(&format_micros(b)), a.cmp(&b));
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_rfc3339(&s);
        }
    }
}
