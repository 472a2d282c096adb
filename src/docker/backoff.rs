//! Exponential reconnect backoff, hand-written.
//!
//! Why not `backon`: it retries a closure until it succeeds, but the watcher needs the opposite
//! shape — a long-lived loop that resets after every success and whose sleep must `select!` on
//! shutdown. These few lines are that, and are trivially testable with paused tokio time.

use std::time::Duration;

use crate::shutdown::Shutdown;

/// First delay after a failure.
pub const RECONNECT_INITIAL: Duration = Duration::from_millis(100);
/// Delays double up to this.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// 100 ms doubling to 5 s: the Docker event stream's policy.
    pub fn reconnect() -> Self {
        Self::new(RECONNECT_INITIAL, RECONNECT_MAX)
    }

    /// The delay to wait now; the following one doubles (capped).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// After a success the next failure starts from the initial delay again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// Sleeps `delay` unless shutdown fires first; false when it did.
    pub async fn sleep(&self, delay: Duration, shutdown: &mut Shutdown) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = shutdown.recv() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn delays_double_to_the_cap_and_reset_after_success() {
        let mut backoff = Backoff::reconnect();
        let mut shutdown = Shutdown::never();
        let mut waited = Vec::new();
        for _ in 0..8 {
            let started = Instant::now();
            let delay = backoff.next_delay();
            assert!(backoff.sleep(delay, &mut shutdown).await);
            waited.push(started.elapsed().as_millis());
        }
        assert_eq!(waited, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);

        backoff.reset();
        let started = Instant::now();
        let delay = backoff.next_delay();
        assert!(backoff.sleep(delay, &mut shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_the_sleep() {
        let (trigger, mut shutdown) = crate::shutdown::channel();
        let backoff = Backoff::reconnect();
        let started = Instant::now();
        trigger.fire();
        assert!(!backoff.sleep(Duration::from_secs(5), &mut shutdown).await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
