//! Reaction latency and `docker restart`, end to end: real Docker, real HAProxy, the real daemon.
//!
//! `cargo bench --bench reaction` starts the test stack (3 labelled testapp containers with
//! `ON_SIGTERM=graceful` on a fresh network, a real HAProxy with checks `inter 500ms fall 2
//! rise 2`, and `haproxy-drain run` — the release binary, found through
//! `env!("CARGO_BIN_EXE_haproxy-drain")`, which Cargo builds for benches), subscribes to Docker
//! events itself (bollard), and measures:
//!
//! 1. Docker event → HAProxy state change: the event's `timeNano` to the first
//!    `show servers state` reply showing the server out of READY, polled every ≈ 200 µs over the
//!    admin socket; for `docker kill` (its `kill` event) and `docker stop` (its `kill` event,
//!    signal 15). The daemon's own `haproxy_drain_reaction_latency_seconds` is scraped for
//!    comparison.
//! 2. A whole `docker restart`: from the command, from the container's `start` event and from the
//!    first TCP connect the app accepted, to the server back in rotation (READY, RUNNING, its
//!    original weight).
//!
//! Samples rotate over the 3 containers so a restarted one has time to come back before its next
//! turn. `REACTION_SAMPLES` / `RESTART_SAMPLES` override the sample counts (quick runs).
//! Everything is removed on exit, on panic too (the fixtures' drops).

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use haproxy_drain::haproxy::{AdminState, OpState, ServerState};
use support::docker::{docker_ok, APP_PORT};
use support::stack::{Stack, StackOptions, WEIGHT};

/// The stack's check settings (tests/it/support/stack.rs), for the restart target.
const CHECKS: &str = "inter 500ms fall 2 rise 2";
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Tokio's timer ticks at 1 ms, too coarse: the HAProxy poll sleeps with the thread instead.
const HAPROXY_POLL: Duration = Duration::from_micros(200);
const STEP_DEADLINE: Duration = Duration::from_secs(30);
const REACTION_METRIC: &str = "haproxy_drain_reaction_latency_seconds";
const RESTORE_METRIC: &str = "haproxy_drain_restore_start_to_rotation_seconds";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let latency_samples = samples_from_env("REACTION_SAMPLES", 30);
    let restart_samples = samples_from_env("RESTART_SAMPLES", 10);
    let began = Instant::now();
    let stack = Stack::start(StackOptions::default()).await;
    let events = EventLog::subscribe().await;
    let mut report = String::new();
    report.push_str("| Docker action → HAProxy state | samples | p50 | p99 | max | daemon histogram: count, mean, ≤ 5 ms |\n|---|---|---|---|---|---|\n");
    for how in [TakeOut::Kill, TakeOut::Stop] {
        let before = daemon_histogram(&stack, REACTION_METRIC).await;
        let mut latencies = Vec::new();
        for n in 0..latency_samples {
            latencies.push(take_out_sample(&stack, &events, n % stack.apps.len() + 1, how).await);
        }
        let daemon = daemon_histogram(&stack, REACTION_METRIC)
            .await
            .minus(&before);
        let stats = Stats::of(&mut latencies);
        report.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            how.label(),
            latencies.len(),
            ms(stats.p50),
            ms(stats.p99),
            ms(stats.max),
            daemon.summary()
        ));
    }
    let before = daemon_histogram(&stack, RESTORE_METRIC).await;
    let mut rows: [Vec<Duration>; 4] = Default::default();
    for n in 0..restart_samples {
        let sample = restart_sample(&stack, &events, n % stack.apps.len() + 1).await;
        for (row, value) in rows.iter_mut().zip(sample) {
            row.extend(value);
        }
    }
    let restore = daemon_histogram(&stack, RESTORE_METRIC)
        .await
        .minus(&before);
    report.push_str(&format!(
        "\n| `docker restart -t 10` (checks `{CHECKS}`) | samples | p50 | max |\n|---|---|---|---|\n"
    ));
    let labels = [
        "command issued → back in rotation",
        "container `start` event → back in rotation",
        "app first accepts a TCP connect → back in rotation",
        "command issued → app first accepts a TCP connect",
    ];
    for (label, values) in labels.iter().zip(rows.iter_mut()) {
        let stats = Stats::of(values);
        let (p50, max) = (ms(stats.p50), ms(stats.max));
        report.push_str(&format!("| {label} | {} | {p50} | {max} |\n", values.len()));
    }
    report.push_str(&format!(
        "\nDaemon's `{RESTORE_METRIC}` over the restarts: count {}, mean {}. \
         Target: answer → rotation within one check interval ({}). Bench wall time: {:.0} s.\n",
        restore.count,
        restore.mean(),
        ms(CHECK_INTERVAL),
        began.elapsed().as_secs_f64()
    ));
    println!("{report}");
}

#[derive(Clone, Copy)]
enum TakeOut {
    Kill,
    Stop,
}

impl TakeOut {
    fn label(self) -> &'static str {
        match self {
            TakeOut::Kill => "`docker kill` (SIGKILL): `kill` event → server leaves READY",
            TakeOut::Stop => "`docker stop` (graceful app): `kill` (15) event → leaves READY",
        }
    }
}

/// One take-out: latency from Docker's `kill` event to HAProxy showing the server out of READY.
/// The container is started again before returning; its next turn waits for it in rotation.
async fn take_out_sample(stack: &Stack, events: &EventLog, i: usize, how: TakeOut) -> Duration {
    stack.wait_in_rotation(i).await;
    let container = stack.apps[i - 1].id.clone();
    let issued = now_nanos();
    let args: Vec<String> = match how {
        TakeOut::Kill => vec!["kill".into(), "-s".into(), "KILL".into(), container.clone()],
        TakeOut::Stop => vec!["stop".into(), "-t".into(), "10".into(), container.clone()],
    };
    let command = tokio::task::spawn_blocking(move || {
        docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    });
    let out = poll_haproxy(stack, i, "out of READY", |s| !is_ready(s)).await;
    command.await.expect("docker command thread");
    let event = events.wait(&container, "kill", issued).await;
    docker_ok(&["start", &container]);
    nanos_between(event, out)
}

/// One `docker restart`: [command → rotation, start event → rotation, answer → rotation,
/// command → answer]; the answer ones are absent when no connect succeeded after the start.
async fn restart_sample(stack: &Stack, events: &EventLog, i: usize) -> [Option<Duration>; 4] {
    stack.wait_in_rotation(i).await;
    let app = &stack.apps[i - 1];
    let container = app.id.clone();
    let ip = app.ip().expect("a running app has an address");
    let prober = ConnectProber::start(SocketAddr::new(ip, APP_PORT));
    let issued = now_nanos();
    let restart_target = container.clone();
    let command =
        tokio::task::spawn_blocking(move || docker_ok(&["restart", "-t", "10", &restart_target]));
    poll_haproxy(stack, i, "out of READY", |s| !is_ready(s)).await;
    let back = poll_haproxy(stack, i, "back in rotation", in_rotation).await;
    command.await.expect("docker restart thread");
    let started = events.wait(&container, "start", issued).await;
    let answered = prober.first_success_after(started);
    assert_eq!(app.ip(), Some(ip), "the app kept its address");
    [
        Some(nanos_between(issued, back)),
        Some(nanos_between(started, back)),
        answered.map(|a| nanos_between(a, back)),
        answered.map(|a| nanos_between(issued, a)),
    ]
}

fn is_ready(state: &ServerState) -> bool {
    state.admin.as_admin_state() == AdminState::Ready
}

fn in_rotation(state: &ServerState) -> bool {
    is_ready(state) && state.op_state == OpState::Running && state.weight == WEIGHT
}

/// Polls `show servers state` until server `i` satisfies `check`; returns the wall-clock time
/// (Unix nanos, Docker's clock) at which the reply showing it arrived: an upper bound, ≤ one
/// poll period (plus one round trip) after the change.
async fn poll_haproxy(
    stack: &Stack,
    i: usize,
    what: &str,
    check: impl Fn(&ServerState) -> bool,
) -> i64 {
    let client = stack.client();
    let id = stack.server(i);
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        let states = client.show_servers_state(Some(&stack.backend)).await;
        let seen = now_nanos();
        if states.is_ok_and(|states| states.iter().any(|s| s.id == id && check(s))) {
            return seen;
        }
        assert!(Instant::now() < deadline, "timed out: {id} {what}");
        std::thread::sleep(HAPROXY_POLL);
    }
}

/// Container events as Docker reports them, recorded by a background task.
struct EventLog {
    seen: Arc<Mutex<Vec<(String, String, i64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventLog {
    /// Subscribes from now on (with `since`, so nothing between the call and the stream is lost).
    async fn subscribe() -> Self {
        let docker = Docker::connect_with_local_defaults().expect("Docker client");
        let now = now_nanos();
        let options = EventsOptions {
            since: Some(format!(
                "{}.{:09}",
                now / 1_000_000_000,
                now % 1_000_000_000
            )),
            until: None,
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                (
                    "label".to_string(),
                    vec![format!("hdt.pid={}", std::process::id())],
                ),
            ])),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut stream = docker.events(Some(options));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
                        let id = event.actor.and_then(|a| a.id).unwrap_or_default();
                        let action = event.action.unwrap_or_default();
                        let nanos = event.time_nano.unwrap_or_default();
                        sink.lock().expect("event log").push((id, action, nanos));
                    }
                    Err(err) => eprintln!("Docker event stream: {err}"),
                }
            }
        });
        Self { seen, task }
    }

    /// `timeNano` of the first `action` event of `container` at or after `after`.
    async fn wait(&self, container: &str, action: &str, after: i64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .seen
                .lock()
                .expect("event log")
                .iter()
                .find_map(|(id, a, t)| {
                    (id == container && a == action && *t >= after).then_some(*t)
                });
            if let Some(nanos) = found {
                return nanos;
            }
            assert!(
                Instant::now() < deadline,
                "no `{action}` event for {container}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to the app's address over and over (20 ms timeout each: a stopped container's
/// address black-holes SYNs) and records when connects succeed.
struct ConnectProber {
    successes: Arc<Mutex<Vec<i64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectProber {
    fn start(addr: SocketAddr) -> Self {
        let successes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&successes);
        let task = tokio::spawn(async move {
            loop {
                let attempt = tokio::net::TcpStream::connect(addr);
                if let Ok(Ok(_stream)) =
                    tokio::time::timeout(Duration::from_millis(20), attempt).await
                {
                    sink.lock().expect("probe log").push(now_nanos());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        Self { successes, task }
    }

    fn first_success_after(&self, after: i64) -> Option<i64> {
        let successes = self.successes.lock().expect("probe log");
        successes.iter().copied().find(|t| *t >= after)
    }
}

impl Drop for ConnectProber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Count and sum of a histogram, summed over its label sets, and how many were ≤ 5 ms.
#[derive(Default)]
struct Histogram {
    count: f64,
    sum: f64,
    within_5ms: f64,
}

impl Histogram {
    fn minus(&self, before: &Histogram) -> Histogram {
        Histogram {
            count: self.count - before.count,
            sum: self.sum - before.sum,
            within_5ms: self.within_5ms - before.within_5ms,
        }
    }

    fn mean(&self) -> String {
        if self.count == 0.0 {
            return "-".to_string();
        }
        ms(Duration::from_secs_f64(self.sum / self.count))
    }

    fn summary(&self) -> String {
        format!("{}, {}, {}", self.count, self.mean(), self.within_5ms)
    }
}

async fn daemon_histogram(stack: &Stack, name: &str) -> Histogram {
    let text = stack.daemon.metrics_text().await;
    let mut histogram = Histogram::default();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let metric = series.split('{').next().unwrap_or_default();
        if metric == format!("{name}_count") {
            histogram.count += value;
        } else if metric == format!("{name}_sum") {
            histogram.sum += value;
        } else if metric == format!("{name}_bucket") && series.contains("le=\"0.005\"") {
            histogram.within_5ms += value;
        }
    }
    histogram
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    /// Nearest-rank percentiles; panics on no samples (a bench with none measured nothing).
    fn of(samples: &mut [Duration]) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        samples.sort();
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).max(1) - 1];
        Stats {
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

fn samples_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn now_nanos() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

fn nanos_between(from: i64, to: i64) -> Duration {
    Duration::from_nanos(u64::try_from(to - from).unwrap_or(0))
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
