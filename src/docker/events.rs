//! The container event stream: subscribe, convert, reconnect with backoff, replay with `since`.
//!
//! One task per [`DockerClient::watch`] call. It pings the engine, subscribes to `/events`
//! (filtered server-side to the container actions below), announces [`WatchItem::Connected`],
//! then forwards converted events. When the stream ends or fails it announces
//! [`WatchItem::Disconnected`], waits (exponential backoff, reset after every successful
//! connection — see [`STABLE_AFTER`] — interruptible by shutdown) and subscribes again with `since` = the `timeNano` of
//! the last event delivered. The daemon replays from a 256-event ring shared by everything on the
//! host, so replay is best-effort: the consumer relists on every `Connected`.
//!
//! The first subscription also passes `since` = now (our clock; the engine is normally on the same
//! host), so an event that happens while the request is in flight is not lost in the gap between
//! "subscribed" and "the consumer relisted".

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::client::DockerClient;
use super::event_convert::{container_event, since_param};
use super::filter::LabelFilters;
use super::types::{ContainerEvent, WatchItem};
use super::watch_log::{
    EngineUnreachable, EventIgnored, EventReceived, ReplayedDuplicate, StreamBroken,
    StreamConnected, WatchCounters, WatchStats,
};
use crate::shutdown::Shutdown;

/// Enough for a burst (a `docker compose down` of a big stack) without unbounded memory; when
/// full, the watcher waits for the consumer.
pub const WATCH_CHANNEL_CAPACITY: usize = 1024;

/// The actions subscribed to. `health_status` matches `health_status: healthy|unhealthy`.
pub const WATCHED_ACTIONS: &[&str] = &[
    "kill",
    "die",
    "stop",
    "start",
    "restart",
    "destroy",
    "health_status",
    "pause",
    "unpause",
    "rename",
    "create",
];

impl DockerClient {
    /// Starts the event watcher; it runs until `shutdown` fires or the receiver is dropped.
    pub fn watch(&self, shutdown: Shutdown) -> mpsc::Receiver<WatchItem> {
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
        tokio::spawn(run_watcher(self.clone(), tx, shutdown));
        rx
    }

    /// Counters of every watcher started from this client (or its clones).
    pub fn watch_stats(&self) -> WatchStats {
        self.counters.snapshot()
    }
}

/// Where the stream left off, so a replay neither skips nor repeats events.
#[derive(Debug, Default)]
struct Cursor {
    last_time_nano: Option<i64>,
    /// (id, action) of the events delivered at exactly `last_time_nano`.
    at_last: Vec<(String, String)>,
    /// True after a reconnect until the first event newer than the cursor.
    replaying: bool,
}

impl Cursor {
    fn is_duplicate(&self, event: &ContainerEvent, action: &str) -> bool {
        let Some(last) = self.last_time_nano else {
            return false;
        };
        self.replaying
            && (event.time_nano < last
                || (event.time_nano == last
                    && self
                        .at_last
                        .iter()
                        .any(|(id, a)| *id == event.id && a == action)))
    }

    fn advance(&mut self, event: &ContainerEvent, action: String) {
        if self.last_time_nano == Some(event.time_nano) {
            self.at_last.push((event.id.clone(), action));
        } else {
            self.replaying = false;
            self.last_time_nano = Some(event.time_nano);
            self.at_last = vec![(event.id.clone(), action)];
        }
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn events_options(since_nano: i64, labels: &LabelFilters) -> EventsOptions {
    let mut filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        (
            "event".to_string(),
            WATCHED_ACTIONS
                .iter()
                .map(|action| action.to_string())
                .collect(),
        ),
    ]);
    labels.add_to(&mut filters);
    EventsOptions {
        since: Some(since_param(since_nano)),
        until: None,
        filters: Some(filters),
    }
}

/// Sends unless shutdown fires first; false when the watcher should stop.
async fn deliver(tx: &mpsc::Sender<WatchItem>, item: WatchItem, shutdown: &mut Shutdown) -> bool {
    tokio::select! {
        sent = tx.send(item) => sent.is_ok(),
        _ = shutdown.recv() => false,
    }
}

/// A stream that delivered an event or stayed up this long counts as a success: the backoff
/// starts over. One that breaks sooner (the engine answers pings but drops `/events`) keeps
/// growing the delay, so a flapping engine is not hammered with relists.
pub const STABLE_AFTER: Duration = Duration::from_secs(1);

/// Whether a broken stream had been a successful connection (see [`STABLE_AFTER`]).
pub fn was_stable(lived: Duration, events_delivered: u64) -> bool {
    events_delivered > 0 || lived >= STABLE_AFTER
}

/// How one subscription ended.
enum StreamEnd {
    Broken {
        error: String,
        events_delivered: u64,
    },
    /// Shutdown fired or the consumer went away.
    Stop,
}

async fn run_watcher(client: DockerClient, tx: mpsc::Sender<WatchItem>, mut shutdown: Shutdown) {
    let endpoint = client.endpoint().to_string();
    let counters = client.counters.clone();
    let mut backoff = Backoff::reconnect();
    let mut cursor = Cursor::default();
    // Disconnected is announced once per outage, not once per failed attempt; every outage after
    // the first begins with a broken stream, which announces it.
    let mut announced_down = false;

    while !shutdown.is_fired() {
        let ping = tokio::select! {
            ping = client.ping() => ping,
            _ = shutdown.recv() => return,
        };
        if let Err(err) = ping {
            let error = err.to_string();
            let retry_in = backoff.next_delay();
            EngineUnreachable {
                endpoint: &endpoint,
                error: &error,
                retry_in,
            }
            .emit(&counters);
            if !announced_down {
                announced_down = true;
                if !deliver(&tx, WatchItem::Disconnected { error }, &mut shutdown).await {
                    return;
                }
            }
            if !backoff.sleep(retry_in, &mut shutdown).await {
                return;
            }
            continue;
        }

        // The first subscription starts now; later ones resume from the last event delivered,
        // or from the first subscription's start when none was.
        let first_subscription = cursor.last_time_nano.is_none();
        let since = *cursor.last_time_nano.get_or_insert_with(now_nanos);
        let replayed_since = (!first_subscription).then_some(since);
        let stream = client
            .docker
            .events(Some(events_options(since, &client.filters)));
        cursor.replaying = !first_subscription;
        StreamConnected {
            endpoint: &endpoint,
            replayed_since,
        }
        .emit(&counters);
        if !deliver(&tx, WatchItem::Connected { replayed_since }, &mut shutdown).await {
            return;
        }

        let connected_at = Instant::now();
        let (error, events_delivered) =
            match pump(stream, &mut cursor, &counters, &tx, &mut shutdown).await {
                StreamEnd::Broken {
                    error,
                    events_delivered,
                } => (error, events_delivered),
                StreamEnd::Stop => return,
            };
        let lived = connected_at.elapsed();
        if was_stable(lived, events_delivered) {
            backoff.reset();
        }
        let retry_in = backoff.next_delay();
        StreamBroken {
            endpoint: &endpoint,
            error: &error,
            lived,
            retry_in,
        }
        .emit(&counters);
        announced_down = true;
        if !deliver(&tx, WatchItem::Disconnected { error }, &mut shutdown).await {
            return;
        }
        if !backoff.sleep(retry_in, &mut shutdown).await {
            return;
        }
    }
}

/// Forwards converted, de-duplicated events until the stream ends.
async fn pump(
    mut stream: impl Stream<Item = Result<EventMessage, bollard::errors::Error>> + Unpin,
    cursor: &mut Cursor,
    counters: &WatchCounters,
    tx: &mpsc::Sender<WatchItem>,
    shutdown: &mut Shutdown,
) -> StreamEnd {
    let mut events_delivered = 0;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = shutdown.recv() => return StreamEnd::Stop,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                let error = err.to_string();
                return StreamEnd::Broken {
                    error,
                    events_delivered,
                };
            }
            None => {
                let error = "the engine closed the event stream".to_string();
                return StreamEnd::Broken {
                    error,
                    events_delivered,
                };
            }
        };
        let raw_action = message.action.clone().unwrap_or_default();
        let Some(event) = container_event(message) else {
            EventIgnored {
                action: &raw_action,
            }
            .emit(counters);
            continue;
        };
        if cursor.is_duplicate(&event, &raw_action) {
            ReplayedDuplicate {
                id: &event.id,
                action: &raw_action,
            }
            .emit(counters);
            continue;
        }
        cursor.advance(&event, raw_action);
        EventReceived { event: &event }.emit(counters);
        events_delivered += 1;
        if !deliver(tx, WatchItem::Event(event), shutdown).await {
            return StreamEnd::Stop;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, time_nano: i64) -> ContainerEvent {
        ContainerEvent {
            id: id.into(),
            name: id.into(),
            action: crate::docker::EventAction::Start,
            attributes: HashMap::new(),
            time_nano,
        }
    }

    #[test]
    fn replay_drops_what_was_delivered_and_keeps_what_is_new() {
        let mut cursor = Cursor::default();
        cursor.advance(&event("a", 10), "start".into());
        cursor.advance(&event("b", 10), "start".into());
        cursor.replaying = true;

        assert!(cursor.is_duplicate(&event("a", 9), "die"));
        assert!(cursor.is_duplicate(&event("a", 10), "start"));
        assert!(
            !cursor.is_duplicate(&event("a", 10), "kill"),
            "same ns, other action"
        );
        assert!(
            !cursor.is_duplicate(&event("c", 10), "start"),
            "same ns, other container"
        );
        cursor.advance(&event("c", 11), "start".into());
        assert!(!cursor.replaying);
        assert!(
            !cursor.is_duplicate(&event("a", 5), "start"),
            "live events always pass"
        );
    }

    #[test]
    fn only_a_stream_that_delivered_or_lasted_resets_the_backoff() {
        assert!(
            !was_stable(Duration::from_millis(5), 0),
            "dropped at once: keep backing off"
        );
        assert!(
            was_stable(Duration::from_millis(5), 1),
            "delivered an event"
        );
        assert!(was_stable(STABLE_AFTER, 0), "stayed up");
    }

    #[test]
    fn the_filter_asks_for_containers_since_the_cursor() {
        let options = events_options(1_795_675_465_042_273_331, &LabelFilters::default());
        assert_eq!(options.since.as_deref(), Some("1795675465.042273331"));
        let filters = options.filters.unwrap_or_default();
        assert_eq!(filters.get("type"), Some(&vec!["container".to_string()]));
        assert!(filters["event"].contains(&"health_status".to_string()));
    }
}
