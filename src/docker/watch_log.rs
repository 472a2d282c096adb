//! What the event watcher reports about itself: each occurrence is a struct whose `emit` writes
//! one structured log line and bumps one counter, so logs and [`WatchStats`] cannot drift apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::duration;

/// Counters behind [`WatchStats`], shared by every watcher of one client.
#[derive(Debug, Default)]
pub struct WatchCounters {
    connects: AtomicU64,
    connect_failures: AtomicU64,
    disconnects: AtomicU64,
    events: AtomicU64,
    ignored_events: AtomicU64,
    replayed_duplicates: AtomicU64,
}

/// A snapshot of the watcher's counters, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchStats {
    /// Successful (re)subscriptions.
    pub connects: u64,
    /// Attempts where the engine did not answer the ping.
    pub connect_failures: u64,
    /// Live streams that ended or failed.
    pub disconnects: u64,
    /// Container events delivered to the consumer.
    pub events: u64,
    /// Events that could not be converted (no ID, no action, not a container).
    pub ignored_events: u64,
    /// Replayed events already delivered before the reconnect, dropped.
    pub replayed_duplicates: u64,
}

impl WatchCounters {
    pub fn snapshot(&self) -> WatchStats {
        WatchStats {
            connects: self.connects.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            ignored_events: self.ignored_events.load(Ordering::Relaxed),
            replayed_duplicates: self.replayed_duplicates.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub struct StreamConnected<'a> {
    pub endpoint: &'a str,
    pub replayed_since: Option<i64>,
}

impl StreamConnected<'_> {
    pub fn emit(&self, counters: &WatchCounters) {
        bump(&counters.connects);
        tracing::info!(endpoint = %self.endpoint, replayed_since = self.replayed_since,
            "docker event stream connected; containers will be relisted");
    }
}

pub struct EngineUnreachable<'a> {
    pub endpoint: &'a str,
    pub error: &'a str,
    pub retry_in: Duration,
}

impl EngineUnreachable<'_> {
    pub fn emit(&self, counters: &WatchCounters) {
        bump(&counters.connect_failures);
        tracing::warn!(endpoint = %self.endpoint, error = %self.error,
            retry_in_ms = duration::millis(self.retry_in), "docker engine not reachable, retrying");
    }
}

pub struct StreamBroken<'a> {
    pub endpoint: &'a str,
    pub error: &'a str,
    pub lived: Duration,
    pub retry_in: Duration,
}

impl StreamBroken<'_> {
    pub fn emit(&self, counters: &WatchCounters) {
        bump(&counters.disconnects);
        tracing::warn!(endpoint = %self.endpoint, error = %self.error,
            lived_ms = duration::millis(self.lived), retry_in_ms = duration::millis(self.retry_in),
            "docker event stream broken, reconnecting");
    }
}

pub struct EventIgnored<'a> {
    pub action: &'a str,
}

impl EventIgnored<'_> {
    pub fn emit(&self, counters: &WatchCounters) {
        bump(&counters.ignored_events);
        tracing::debug!(action = %self.action, "docker event ignored: no container ID or action");
    }
}

pub struct ReplayedDuplicate<'a> {
    pub id: &'a str,
    pub action: &'a str,
}

impl ReplayedDuplicate<'_> {
    pub fn emit(&self, counters: &WatchCounters) {
        bump(&counters.replayed_duplicates);
        tracing::debug!(id = %self.id, action = %self.action,
            "replayed docker event already delivered, dropped");
    }
}

pub struct EventReceived<'a> {
    pub event: &'a super::types::ContainerEvent,
}

impl EventReceived<'_> {
    pub fn emit(&self, counters: &WatchCounters) {
        bump(&counters.events);
        tracing::debug!(container = %self.event.name, id = %self.event.id,
            action = ?self.event.action, time_nano = self.event.time_nano, "docker event");
    }
}
