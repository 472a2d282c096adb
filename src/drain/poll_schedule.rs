//! When a drain polls its sessions next. Pure.
//!
//! Most drains end within one request's time, so a fixed `poll_interval` added up to that
//! interval to every drain (100 ms by default: the largest part of a `roll --surge` step after
//! the copy's start). The first polls come quickly and the wait grows with the time drained so
//! far; polls of one backend share their reads (`controller::next_read`), so a dense start
//! costs few reads.

use std::time::Duration;

/// The shortest wait between two session polls of a drain.
pub const FIRST_DRAIN_POLL: Duration = Duration::from_millis(10);

/// The wait before the next session poll of a drain that began `elapsed` ago: half the time
/// drained so far, at least [`FIRST_DRAIN_POLL`], at most `poll_interval`.
pub fn drain_poll_delay(poll_interval: Duration, elapsed: Duration) -> Duration {
    (elapsed / 2).clamp(FIRST_DRAIN_POLL.min(poll_interval), poll_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_at_first_then_the_configured_interval() {
        let ms = Duration::from_millis;
        #[rustfmt::skip]
        let table = [
            (ms(100), ms(0), ms(10)),
            (ms(100), ms(15), ms(10)),
            (ms(100), ms(60), ms(30)),
            (ms(100), ms(200), ms(100)),
            (ms(100), ms(30_000), ms(100)),
            // An interval below the first poll's wait wins.
            (ms(5), ms(0), ms(5)),
            (ms(5), ms(1_000), ms(5)),
        ];
        for (interval, elapsed, expected) in table {
            assert_eq!(
                drain_poll_delay(interval, elapsed),
                expected,
                "{interval:?} after {elapsed:?}"
            );
        }
    }
}
