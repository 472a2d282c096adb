//! Readings of the clocks the drain machine and Docker's times are compared with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::drain::Clock;

/// Monotonic for deadlines, wall-clock for what is persisted.
pub fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

/// Unix nanoseconds, the unit of Docker's `timeNano` and `StartedAt` (same host, same clock).
pub fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Time since a Docker `timeNano`, for the reaction latency (0 if the clocks disagree).
pub fn since_unix_nanos(nanos: i64) -> Duration {
    Duration::from_nanos(unix_nanos_now().saturating_sub(nanos).max(0) as u64)
}

/// Sleeps until the deadline; forever without one (a machine with nothing to wait for).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
