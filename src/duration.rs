//! Durations as operators write them and as they travel: `30s`/`500ms` in the config file, labels
//! and CLI flags; whole milliseconds on the wire, in logs and in progress records.
//!
//! The lowest layer: imports nothing from the crate, so every module may use it.

use std::time::Duration;

/// Parses `30s`, `500ms`, `1m30s`; the error names the text and gives examples.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a duration ({e}; examples: 30s, 500ms, 2m)"))
}

/// Whole milliseconds, saturating at `u64::MAX` (a `Duration` holds more than a `u64` of them).
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_operators_write_and_explains_what_it_cannot() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse(" 250ms "), Ok(Duration::from_millis(250)));
        let error = parse("soon").unwrap_err();
        assert!(
            error.contains("'soon'") && error.contains("examples"),
            "{error}"
        );
    }

    #[test]
    fn millis_saturate() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
