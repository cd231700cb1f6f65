//! Durations as `@upstash/ratelimit` users write them (see [`parse_duration`]).

/// Milliseconds per unit.
const UNITS: [(&str, f64); 6] = [
    ("ms", 1.0),
    ("s", 1_000.0),
    ("m", 60_000.0),
    ("h", 3_600_000.0),
    ("d", 86_400_000.0),
    ("w", 604_800_000.0),
];

/// Parses a duration as `@upstash/ratelimit` users write it into milliseconds: `"10 s"`, `"10s"`,
/// `"1 m"`, `"500 ms"`, `"1.5 h"`, `"1 d"`, `"1 w"`.
///
/// The grammar is that library's, so a window copied from code that uses it means the same here: a
/// number (digits, optionally a `.` and more digits), at most one whitespace character, and one of the
/// units `ms`, `s`, `m`, `h`, `d`, `w`, with nothing before or after. The result is rounded to the
/// nearest millisecond (halves up) and must be at least 1 ms. Units are case-sensitive: `m` is a
/// minute, and `M` is refused rather than guessed at.
///
/// # Errors
/// A message quoting the text and showing the accepted form.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let shown: String = text.chars().take(40).collect();
    let invalid = || {
        format!(
            "{shown:?} is not a duration such as \"10 s\", \"1m\", \"500 ms\", \"1 h\" or \"1 d\" \
             (a number, an optional space, then ms, s, m, h, d or w)"
        )
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(digits_end);
    if !is_decimal(number) {
        return Err(invalid());
    }
    let mut chars = rest.chars();
    let unit = match chars.next() {
        Some(c) if is_js_whitespace(c) => chars.as_str(),
        _ => rest,
    };
    let Some((_, per_unit)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(invalid());
    };
    // `number` is digits with at most one inner point, which `f64` parses exactly as JavaScript's
    // `parseFloat` does (both round to the nearest double), so the product and its rounding agree too.
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let ms = (value * per_unit).round();
    if ms < 1.0 {
        return Err(format!("{shown:?} is shorter than 1 ms"));
    }
    if !ms.is_finite() || ms >= u64::MAX as f64 {
        return Err(format!("{shown:?} is too long"));
    }
    // In range and whole, checked above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(ms as u64)
}

/// `\d+(\.\d+)?`
fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// What `\s` matches in a JavaScript regular expression: ECMAScript's white space and line terminators.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{000B}' | '\u{000C}' | '\r' | ' ' | '\u{00A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_upstash_users_write() {
        for (text, ms) in [
            ("10 s", 10_000),
            ("10s", 10_000),
            ("1 m", 60_000),
            ("1m", 60_000),
            ("500 ms", 500),
            ("500ms", 500),
            ("1 h", 3_600_000),
            ("1 d", 86_400_000),
            ("2 w", 1_209_600_000),
            ("1.5 s", 1_500),
            ("0.5 m", 30_000),
            ("1.0005 s", 1_001),
            ("0.5 ms", 1),
            ("2.5 ms", 3),
            ("0.0015 s", 2),
            ("1\u{FEFF}s", 1_000),
            ("007 s", 7_000),
            ("1\ts", 1_000),
            ("1\u{00A0}s", 1_000),
        ] {
            assert_eq!(parse_duration(text), Ok(ms), "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "10",
            "s",
            "10 sec",
            "10 S",
            "1 M",
            "1 min",
            "10  s",
            " 10 s",
            "10 s ",
            "-1 s",
            "+1 s",
            "1e3 ms",
            ".5 s",
            "5. s",
            "1.2.3 s",
            "1,5 s",
            "1 s 2 ms",
            "1\u{0085}s",
            "١ s",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("not a duration"), "{text:?}: {err}");
        }
        assert!(
            parse_duration("0 s")
                .unwrap_err()
                .contains("shorter than 1 ms")
        );
        assert!(parse_duration("0.4 ms").unwrap_err().contains("shorter"));
        let huge = format!("{} w", "9".repeat(30));
        assert!(parse_duration(&huge).unwrap_err().contains("too long"));
    }
}
