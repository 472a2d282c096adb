//! The session poll under many drains in one backend: every server of a [`World`] holds one
//! long request, all are drained at once through the control API, and each server's task polls
//! its backend's `show stat` until its request ends. Counted: the `show stat` commands the
//! daemon sent meanwhile (its `haproxy_commands_total`), the rows they carried (commands × the
//! backend's servers), and how long after the last request ended the last drain was reported.

use std::time::{Duration, Instant};

use haproxy_drain::api::wire::{DrainBody, ReadyBody};

use super::exposition::sum;
use crate::support::roll::{get, World};
use crate::support::wait::wait_until;

#[derive(Debug, Clone)]
pub struct PollResult {
    pub draining: usize,
    pub hold: Duration,
    /// `show stat` commands sent by the daemon from the drains' start to their end.
    pub show_stat: f64,
    /// Rows those commands read: `show_stat` × servers in the backend.
    pub rows: f64,
    /// From sending the drains until the last one reported its end.
    pub all_drained: Duration,
    /// From the end of the last held request until the last drain reported (detection lag).
    pub lag: Duration,
    pub requests_ok: usize,
    pub requests_failed: Vec<String>,
    pub drains_failed: Vec<String>,
}

/// Holds one request of `hold` on every server, drains them all at once, waits for every drain,
/// then puts every server back (`ready`).
pub async fn drain_all_with_sessions(world: &World, hold: Duration) -> PollResult {
    let count = world.containers.len();
    let path = format!("/?delay_ms={}", hold.as_millis());
    let held: Vec<_> = (0..count)
        .map(|_| {
            let (frontend, path) = (world.frontend, path.clone());
            tokio::spawn(async move {
                let result = get(frontend, &path).await;
                (result, Instant::now())
            })
        })
        .collect();
    let backend = world.backend.clone();
    let client = world.haproxy_client();
    wait_until(hold / 2, "most servers to hold a session", || {
        let (client, backend) = (client.clone(), backend.clone());
        async move {
            let rows = client.show_stat().await.unwrap_or_default();
            let busy = rows
                .iter()
                .filter(|r| r.proxy == backend && r.name != "BACKEND" && r.sessions > 0)
                .count();
            busy * 10 >= count * 9
        }
    })
    .await;
    let commands = |text: &str| {
        sum(
            text,
            "haproxy_drain_haproxy_commands_total",
            &[("command", "show_stat")],
        )
    };
    let before = commands(&world.daemon.metrics_text().await);
    let started = Instant::now();
    let drains: Vec<_> = world
        .names()
        .into_iter()
        .map(|name| {
            let control = world.daemon.client();
            tokio::spawn(async move {
                let body = DrainBody {
                    target: name.clone(),
                    wait: true,
                    timeout_ms: Some(60_000),
                    force: true,
                };
                match control.drain(&body).await {
                    Ok(report) if report.drained => None,
                    Ok(report) => Some(format!("{name}: not drained: {report:?}")),
                    Err(error) => Some(format!("{name}: {error}")),
                }
            })
        })
        .collect();
    let mut drains_failed = Vec::new();
    for drain in drains {
        drains_failed.extend(drain.await.expect("drain task did not panic"));
    }
    let all_drained = started.elapsed();
    let drained_at = Instant::now();
    let after = commands(&world.daemon.metrics_text().await);
    let (mut requests_ok, mut requests_failed, mut last_end) = (0, Vec::new(), started);
    for request in held {
        let (result, ended) = request.await.expect("request task did not panic");
        last_end = last_end.max(ended);
        match result {
            Ok(_) => requests_ok += 1,
            Err(error) => requests_failed.push(error),
        }
    }
    for name in world.names() {
        let body = ReadyBody {
            target: name,
            wait: false,
            timeout_ms: None,
        };
        let _ = world.daemon.client().ready(&body).await;
    }
    world.wait_all_in_rotation(Duration::from_secs(120)).await;
    let show_stat = after - before;
    PollResult {
        draining: count,
        hold,
        show_stat,
        rows: show_stat * count as f64,
        all_drained,
        lag: drained_at.saturating_duration_since(last_end),
        requests_ok,
        requests_failed,
        drains_failed,
    }
}
