//! When the post-restore watch calls a server clearly worse than its peers (`[watch_limits]`).

use serde::Deserialize;

/// Thresholds of the post-restore watch; every one has a default, each can be set in the
/// config file's `[watch_limits]` table.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchLimits {
    /// No verdict before the server has answered this many requests in the window.
    pub min_requests: u64,
    /// An error rate (5xx, connection and response errors per request) the server must reach
    /// before it is worse at all: 0.2 is one request in five.
    pub max_error_rate: f64,
    /// How far above its peers' error rate the server must be (0.1: ten points).
    pub error_margin: f64,
    /// The server's average response time must be this many times its peers'…
    pub rtime_factor: f64,
    /// …and this many milliseconds above it.
    pub rtime_margin_ms: u64,
}

impl Default for WatchLimits {
    fn default() -> Self {
        Self {
            min_requests: 20,
            max_error_rate: 0.2,
            error_margin: 0.1,
            rtime_factor: 4.0,
            rtime_margin_ms: 500,
        }
    }
}

impl Eq for WatchLimits {}

impl WatchLimits {
    /// Why these limits cannot work, if they cannot.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.min_requests == 0 {
            return Some(("min_requests", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Some(("max_error_rate", "must be between 0 and 1"));
        }
        if !(0.0..=1.0).contains(&self.error_margin) {
            return Some(("error_margin", "must be between 0 and 1"));
        }
        if self.rtime_factor.is_nan() || self.rtime_factor < 1.0 {
            return Some(("rtime_factor", "must be 1 or more"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_cannot_work_are_named() {
        let base = WatchLimits::default();
        #[rustfmt::skip]
        let table = [
            (base, None),
            (WatchLimits { min_requests: 0, ..base }, Some("min_requests")),
            (WatchLimits { max_error_rate: 1.5, ..base }, Some("max_error_rate")),
            (WatchLimits { max_error_rate: f64::NAN, ..base }, Some("max_error_rate")),
            (WatchLimits { error_margin: -0.1, ..base }, Some("error_margin")),
            (WatchLimits { rtime_factor: 0.5, ..base }, Some("rtime_factor")),
            (WatchLimits { rtime_factor: f64::NAN, ..base }, Some("rtime_factor")),
            (WatchLimits { max_error_rate: 0.0, error_margin: 1.0, ..base }, None),
        ];
        for (limits, expected) in table {
            assert_eq!(limits.problem().map(|(key, _)| key), expected, "{limits:?}");
        }
    }
}
