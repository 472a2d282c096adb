//! The post-restore watch of one server: its own task, sampling the backend's counters until
//! the window ends or the server is clearly worse than its peers (`drain::watch::judge`).
//!
//! A bad server is taken out by its own task, as a drain with [`Trigger::Watch`] that is sticky:
//! the ownership record says why it is out (`status` shows it `failed`), survives a restart,
//! and only `ready` hands the server back — a reconciliation or a new start of the same bad
//! container does not. The watch ends quietly when the server leaves rotation for any other
//! reason (a drain, a stop: the next restore starts a new watch).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::WeakSender;
use tokio::time::Instant;

use super::server_msg::ServerMsg;
use super::Context;
use crate::drain::watch::{judge, Reading, Verdict};
use crate::drain::{Input, Trigger};
use crate::haproxy::{RowKind, ServerId, StatRow};

/// How often the backend's counters are read during a watch.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// Starts watching `id` for `window`; `server` is its task, which carries out the drain.
pub fn spawn(id: ServerId, ctx: Arc<Context>, window: Duration, server: WeakSender<ServerMsg>) {
    tokio::spawn(async move {
        let Some(baseline) = read(&ctx, &id).await.map(|(reading, _)| reading) else {
            tracing::warn!(server = %id, "cannot read the backend's counters; this restore is not watched");
            return;
        };
        let started = Instant::now();
        tracing::debug!(server = %id, window_ms = window.as_millis() as u64, "post-restore watch started");
        loop {
            let window_over = started.elapsed() >= window;
            let next = (started + window).min(Instant::now() + SAMPLE_INTERVAL);
            if !window_over {
                tokio::time::sleep_until(next).await;
            }
            let window_over = started.elapsed() >= window;
            let Some((now, in_rotation)) = read(&ctx, &id).await else {
                if window_over {
                    return;
                }
                continue;
            };
            if !in_rotation {
                tracing::debug!(server = %id, "out of rotation again; the post-restore watch ends");
                return;
            }
            let limits = &ctx.config.watch_limits;
            match judge(&id.server, &baseline, &now, limits, window_over) {
                Verdict::Pending { .. } => {}
                Verdict::Passed { requests } => {
                    tracing::info!(server = %id, requests, "post-restore watch passed");
                    return;
                }
                Verdict::NotEnoughRequests { requests } => {
                    tracing::info!(server = %id, requests, min_requests = limits.min_requests, "post-restore watch over with too few requests to judge; left in rotation");
                    return;
                }
                Verdict::Bad { reason } => {
                    tracing::warn!(server = %id, %reason, after_ms = started.elapsed().as_millis() as u64, "post-restore watch: clearly worse than its peers; draining it and marking it failed until `ready`");
                    fail(&server, &id).await;
                    return;
                }
            }
        }
    });
}

/// Hands the drain to the server's task (the task is gone when the server is: nothing to do).
async fn fail(server: &WeakSender<ServerMsg>, id: &ServerId) {
    let Some(server) = server.upgrade() else {
        return;
    };
    let input = Input::Stopping {
        trigger: Trigger::Watch,
        sticky: true,
        timeout: None,
        stop: None,
    };
    let msg = ServerMsg::Drain {
        input,
        waiter: None,
    };
    if server.send(msg).await.is_err() {
        tracing::debug!(server = %id, "server task gone before the watch's drain");
    }
}

/// The backend's counters summed over every HAProxy that answers, and whether `id` is in
/// rotation on any of them.
async fn read(ctx: &Context, id: &ServerId) -> Option<(Reading, bool)> {
    // Shared with every other watcher and poller of the backend: a storm of restores in one
    // backend costs one read per round, not one per server.
    let rows = match ctx.fleet.fresh_backend_stats(&id.backend).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::debug!(server = %id, %error, "post-restore watch: cannot read the backend");
            return None;
        }
    };
    Some(reading(&rows, &id.server))
}

/// One [`Reading`] from the rows of several HAProxies: counters add up, the response time is
/// the worst one.
fn reading(rows: &[StatRow], server: &str) -> (Reading, bool) {
    let mut reading = Reading::new();
    let mut in_rotation = false;
    for row in rows.iter().filter(|r| r.kind == RowKind::Server) {
        let sum = reading.entry(row.name.clone()).or_default();
        sum.requests += row.traffic.requests;
        sum.errors += row.traffic.errors;
        sum.rtime_ms = sum.rtime_ms.max(row.traffic.rtime_ms);
        if row.name == server {
            in_rotation |= row.status.is_up() && row.weight.is_some_and(|w| w > 0);
        }
    }
    (reading, in_rotation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::{ServerStatus, Traffic};

    fn row(name: &str, status: ServerStatus, weight: u32, requests: u64, errors: u64) -> StatRow {
        StatRow {
            proxy: "be".into(),
            name: name.into(),
            kind: RowKind::Server,
            status_text: status.to_string(),
            status,
            weight: Some(weight),
            user_weight: Some(weight),
            sessions: 0,
            queued: 0,
            total_sessions: requests,
            check_status: String::new(),
            check_health: None,
            check_rise: None,
            check_fall: None,
            last_change: None,
            addr: String::new(),
            traffic: Traffic {
                requests,
                errors,
                rtime_ms: Some(errors),
            },
        }
    }

    #[test]
    fn readings_add_up_over_haproxies_and_see_rotation() {
        let rows = [
            row("a", ServerStatus::Up, 10, 5, 1),
            row("a", ServerStatus::Up, 10, 7, 2),
            row("b", ServerStatus::Drain, 10, 3, 0),
        ];
        let (reading, in_rotation) = reading(&rows, "a");
        assert!(in_rotation);
        assert_eq!(
            reading["a"],
            Traffic {
                requests: 12,
                errors: 3,
                rtime_ms: Some(2)
            }
        );
        assert!(!super::reading(&rows, "b").1, "DRAIN is out of rotation");
        let zero = [row("a", ServerStatus::NoCheck, 0, 1, 0)];
        assert!(!super::reading(&zero, "a").1, "weight 0 is out of rotation");
    }
}
