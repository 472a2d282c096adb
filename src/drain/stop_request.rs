//! A remembered request to end the container's current run.
//!
//! Docker has no "stopping" state: between the first terminating `kill` and the exit, list and
//! inspect still say `running` with the old `State.StartedAt`. Ground truth alone therefore
//! cannot tell a container that serves from one that is shutting down, so the machine remembers
//! the request and treats the run as ending until Docker reports a run that started later (a
//! `start` event, or `StartedAt` after the request).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Docker's stop timeout when the container sets none (`docker stop` without `-t`).
pub const DOCKER_DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// When the stop was asked for, in Unix nanoseconds: Docker's event time for a `kill`, our
    /// own clock for a roll. Docker's `StartedAt` is compared with it (same host, same clock).
    pub at_unix_nanos: i64,
    /// Until then the run counts as ending. A `docker kill -s TERM` that the app ignores is never
    /// followed by SIGKILL; after the container's stop timeout plus the drain timeout the run is
    /// taken to go on, and the server is restored (logged and counted).
    pub hold_until_unix_ms: u64,
}

impl StopRequest {
    /// A request at `at_unix_nanos`, held for the container's stop timeout (Docker's default
    /// when it has none) plus the server's drain timeout.
    pub fn new(
        at_unix_nanos: i64,
        stop_timeout: Option<Duration>,
        drain_timeout: Duration,
    ) -> Self {
        let hold = stop_timeout.unwrap_or(DOCKER_DEFAULT_STOP_TIMEOUT) + drain_timeout;
        let at_ms = u64::try_from(at_unix_nanos.max(0) / 1_000_000).unwrap_or(0);
        Self {
            at_unix_nanos,
            hold_until_unix_ms: at_ms.saturating_add(hold.as_millis() as u64),
        }
    }

    /// Two requests (SIGTERM, then Docker's SIGKILL; or a new stop after a run we never saw
    /// start): the later one dates the request, since every run that started before it was asked
    /// to end by it (dating by the first let an unseen run between the two count as new); the
    /// hold lasts as long as the longer of the two.
    pub fn merge(self, later: StopRequest) -> StopRequest {
        StopRequest {
            at_unix_nanos: self.at_unix_nanos.max(later.at_unix_nanos),
            hold_until_unix_ms: self.hold_until_unix_ms.max(later.hold_until_unix_ms),
        }
    }

    /// A run that started after the request is a new run: the request no longer applies.
    pub fn ended_by(&self, started_at_unix_nanos: Option<i64>) -> bool {
        started_at_unix_nanos.is_some_and(|started| started > self.at_unix_nanos)
    }

    pub fn expired(&self, unix_ms: u64) -> bool {
        unix_ms >= self.hold_until_unix_ms
    }

    /// Time left until [`Self::expired`], for the machine's wake-up.
    pub fn remaining(&self, unix_ms: u64) -> Duration {
        Duration::from_millis(self.hold_until_unix_ms.saturating_sub(unix_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn holds_for_the_stop_timeout_plus_the_drain_timeout() {
        let at = 1_800_000_000 * SEC;
        let r = StopRequest::new(at, None, Duration::from_secs(30));
        assert_eq!(r.hold_until_unix_ms, 1_800_000_040_000);
        let r = StopRequest::new(at, Some(Duration::from_secs(3)), Duration::from_secs(5));
        assert_eq!(r.hold_until_unix_ms, 1_800_000_008_000);
        assert!(!r.expired(1_800_000_007_999));
        assert!(r.expired(1_800_000_008_000));
        assert_eq!(r.remaining(1_800_000_007_000), Duration::from_secs(1));
    }

    #[test]
    fn only_a_later_start_ends_the_request() {
        let r = StopRequest::new(100 * SEC, None, Duration::ZERO);
        for (started, ended) in [
            (None, false),
            (Some(99 * SEC), false),
            (Some(100 * SEC), false),
            (Some(100 * SEC + 1), true),
        ] {
            assert_eq!(r.ended_by(started), ended, "started {started:?}");
        }
    }

    #[test]
    fn merge_keeps_the_later_request_and_the_longest_hold() {
        let term = StopRequest::new(100 * SEC, Some(Duration::from_secs(60)), Duration::ZERO);
        let kill = StopRequest::new(102 * SEC, Some(Duration::from_secs(1)), Duration::ZERO);
        let merged = term.merge(kill);
        assert_eq!(merged.at_unix_nanos, 102 * SEC);
        assert_eq!(merged.hold_until_unix_ms, term.hold_until_unix_ms);
        assert_eq!(kill.merge(term), merged);
        // A run that started between the two (never seen) was asked to end by the second.
        assert!(!merged.ended_by(Some(101 * SEC)));
        assert!(merged.ended_by(Some(103 * SEC)));
    }
}
