//! The one way time-valued flags are read: `500ms`, `2s`, `1m`, `1h 30m` (humantime's forms)
//! or a plain number, which is seconds (`0.5` = 500 ms). Every `--x <DURATION>` flag uses
//! [`parse`] as its clap `value_parser`, so a bad value is a clap usage error (exit 2) that
//! names the accepted forms.
//!
//! Two variants exist only for compatibility: [`parse_bare_ms`] for the hidden old spellings
//! whose bare number meant milliseconds (`--processing-delay-ms 20`), and [`parse_with_unit`]
//! for flags that kept their name but used to take milliseconds (`lab up
//! --remote-probe-interval 60000`): there a bare number is refused rather than silently read
//! as 60,000 seconds.

use std::time::Duration;

/// What every duration error says, so the user sees the accepted forms at once.
const FORMS: &str = "use a number with a unit (500ms, 2s, 1m, 1h) or a plain number of seconds (0.5 = 500ms)";

/// A duration flag: a number with a unit, or a plain number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    parse_bare_in(text, 1.0).map_err(|why| format!("{why}: {FORMS}"))
}

/// An old `-ms` spelling: a plain number is milliseconds; a unit is honoured as written.
pub fn parse_bare_ms(text: &str) -> Result<Duration, String> {
    parse_bare_in(text, 1e-3)
        .map_err(|why| format!("{why}: use a number of milliseconds, or a number with a unit (500ms, 2s, 1m)"))
}

/// A flag that used to take milliseconds under the same name: a unit is required.
pub fn parse_with_unit(text: &str) -> Result<Duration, String> {
    if plain_number(text.trim()).is_some() {
        return Err(format!(
            "{text:?} has no unit, and this flag used to take milliseconds: write {text}ms, or seconds as {text}s"
        ));
    }
    parse_bare_in(text, 1.0).map_err(|why| format!("{why}: use a number with a unit (500ms, 2s, 1m, 1h)"))
}

/// Whole milliseconds of `d`, saturating (the unit OVN's own settings take).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn plain_number(text: &str) -> Option<f64> {
    // Only digits and one dot: "inf", "1e3" or "-1" are not durations.
    let digits = text.chars().all(|c| c.is_ascii_digit() || c == '.') && text.chars().any(|c| c.is_ascii_digit());
    digits.then(|| text.parse::<f64>().ok()).flatten()
}

/// `text` as a duration; a plain number counts `bare_unit_s` seconds per unit.
fn parse_bare_in(text: &str, bare_unit_s: f64) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty duration".into());
    }
    if let Some(n) = plain_number(text) {
        return Duration::try_from_secs_f64(n * bare_unit_s).map_err(|_| format!("{text:?} is too large"));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse(" 3s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn bad_input_names_the_accepted_forms() {
        for bad in ["", "fast", "-1", "1e3", "inf", "2 parsecs", "1.2.3", "ms"] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("500ms, 2s, 1m"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn old_millisecond_spelling_reads_bare_numbers_as_ms() {
        assert_eq!(parse_bare_ms("20"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_bare_ms("1.5"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_bare_ms("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_bare_ms("x").is_err());
    }

    #[test]
    fn former_millisecond_flags_need_a_unit() {
        let e = parse_with_unit("60000").expect_err("bare number");
        assert!(e.contains("60000ms"), "{e}");
        assert_eq!(parse_with_unit("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_with_unit("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn millis_rounds_down_and_saturates() {
        assert_eq!(millis(Duration::from_micros(1999)), 1);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
