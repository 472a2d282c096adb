//! Every container of a [`World`] restarted at once (one engine API `restart` each, all sent
//! together): each must be drained and restored by haproxy-drain — seen in its metrics per
//! server and in HAProxy's rotation — with no event lost (Docker's own event list for these
//! containers against what the daemon drained and restored), and the time until all are back.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cost::{Cost, CostSampler};
use super::exposition::per_server;
use super::rotation::RotationSampler;
use crate::support::docker::docker;
use crate::support::roll::{World, WEIGHT};
use crate::support::wait::wait_for;

const CONVERGE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct StormResult {
    pub containers: usize,
    /// From sending the restarts until every server is back in rotation in HAProxy, and the
    /// daemon shows it restored.
    pub converged: Duration,
    /// Servers the daemon drained / restored (`drains_started` / `restores{result="ok"}` grew).
    pub drained: usize,
    pub restored: usize,
    /// Servers HAProxy showed out of rotation at some point.
    pub seen_out: usize,
    /// Docker's events for these containers during the storm, by action.
    pub docker_events: HashMap<String, usize>,
    pub daemon: Cost,
    /// Restart requests the engine did not answer with 204.
    pub refused: Vec<String>,
}

/// `POST path` on the engine's Unix socket (`DOCKER_HOST=unix://…` or the default socket);
/// the HTTP status.
pub async fn engine_post(path: &str) -> Result<u16, String> {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".to_string());
    let mut stream = tokio::net::UnixStream::connect(&socket)
        .await
        .map_err(|e| format!("connect {socket}: {e}"))?;
    let request = format!("POST {path} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send {path}: {e}"))?;
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(120), stream.read_to_string(&mut reply))
        .await
        .map_err(|_| format!("{path}: no answer within 120 s"))?
        .map_err(|e| format!("{path}: {e}"))?;
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{path}: not HTTP: {reply:.80}"))
}

/// Restarts every container of `world` at once and waits until all are back.
pub async fn restart_all(world: &World) -> StormResult {
    let metrics = |name: &'static str, filter: &'static [(&'static str, &'static str)]| {
        let backend = world.backend.clone();
        async move { per_server(&world.daemon.metrics_text().await, name, &backend, filter) }
    };
    let drains_before = metrics("haproxy_drain_drains_started_total", &[]).await;
    let restores_before = metrics("haproxy_drain_restores_total", &[("result", "restored")]).await;
    let events = EventTap::start(&world.backend);
    let sampler = RotationSampler::start(world.haproxy_client(), &world.backend, WEIGHT);
    let cost = CostSampler::start(world.daemon.pid().expect("daemon runs"));
    let started = Instant::now();
    let requests: Vec<_> = world
        .names()
        .into_iter()
        .map(|name| {
            tokio::spawn(async move {
                match engine_post(&format!("/containers/{name}/restart?t=10")).await {
                    Ok(204) => None,
                    Ok(status) => Some(format!("{name}: HTTP {status}")),
                    Err(error) => Some(error),
                }
            })
        })
        .collect();
    let mut refused = Vec::new();
    for request in requests {
        if let Some(problem) = request.await.expect("restart task did not panic") {
            refused.push(problem);
        }
    }
    let servers: Vec<String> = (0..world.containers.len())
        .map(|i| world.server(i).server)
        .collect();
    let grew = |before: &HashMap<String, f64>, now: &HashMap<String, f64>| {
        servers
            .iter()
            .filter(|s| {
                now.get(*s).copied().unwrap_or(0.0) > before.get(*s).copied().unwrap_or(0.0)
            })
            .count()
    };
    let (metrics, grew, servers_ref) = (&metrics, &grew, &servers);
    let (drains_before, restores_before) = (&drains_before, &restores_before);
    let (drained, restored) = wait_for(
        CONVERGE_TIMEOUT,
        "every restarted container drained, restored and back in rotation",
        move || async move {
            let servers = servers_ref;
            let drains = metrics("haproxy_drain_drains_started_total", &[]).await;
            let restores = metrics("haproxy_drain_restores_total", &[("result", "restored")]).await;
            let (drained, restored) = (
                grew(drains_before, &drains),
                grew(restores_before, &restores),
            );
            let all_up = world.haproxy_client().show_stat().await.is_ok_and(|rows| {
                servers.iter().all(|s| {
                    rows.iter().any(|r| {
                        r.proxy == world.backend
                            && &r.name == s
                            && r.status_text == "UP"
                            && r.weight == Some(WEIGHT)
                    })
                })
            });
            (all_up && restored == servers.len()).then_some((drained, restored))
        },
    )
    .await;
    let converged = started.elapsed();
    let daemon = cost.stop().await;
    let out = sampler.stop().await;
    StormResult {
        containers: servers.len(),
        converged,
        drained,
        restored,
        seen_out: out.values().filter(|d| !d.is_zero()).count(),
        docker_events: events.stop(),
        daemon,
        refused,
    }
}

/// `docker events` for the containers labelled with one backend, streamed live from before
/// the storm: the engine keeps only its last 256 events for a `--since … --until …` query,
/// fewer than 100 restarts produce.
struct EventTap {
    child: Option<Child>,
}

impl EventTap {
    /// Streams from the engine's clock now: `--since` replays what happened before the CLI
    /// subscribed, so the stream has no gap at its start (and needs no start-up wait).
    fn start(backend: &str) -> Self {
        let since = docker(&["info", "--format", "{{.SystemTime}}"]).unwrap_or_default();
        let child = Command::new("docker")
            .args([
                "events",
                "--since",
                &since,
                "--filter",
                "type=container",
                "--filter",
            ])
            .arg(format!("label=haproxy-drain.backend={backend}"))
            .args(["--format", "{{.Action}}"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Self { child }
    }

    /// Stops the stream; its events by action.
    fn stop(mut self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        let Some(mut child) = self.child.take() else {
            return counts;
        };
        let _ = child.kill();
        let Ok(output) = child.wait_with_output() else {
            return counts;
        };
        for action in String::from_utf8_lossy(&output.stdout).lines() {
            let action = action.split(':').next().unwrap_or(action).trim();
            *counts.entry(action.to_string()).or_default() += 1;
        }
        counts
    }
}

impl Drop for EventTap {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
