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
//!    comparison, and once more over `docker kill`s that the bench does not poll this hard (the
//!    poll costs CPU on a small machine; that row shows how much it slows the daemon).
//! 2. A whole `docker restart`: from the command, from the container's `start` event and from the
//!    first TCP connect the app accepted, to the server back in rotation (READY, RUNNING, its
//!    original weight).
//!
//! Samples rotate over the 3 containers so a restarted one has time to come back before its next
//! turn. `REACTION_SAMPLES` / `RESTART_SAMPLES` override the sample counts (quick runs).
//! Everything is removed on exit, on panic too (the fixtures' drops).

#[path = "../tests/it/support/mod.rs"]
mod support;

#[path = "reaction/probes.rs"]
mod probes;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use haproxy_drain::haproxy::{AdminState, OpState, ServerState};
use probes::{
    ms, nanos_between, now_nanos, samples_from_env, ConnectProber, EventLog, Histogram, Stats,
};
use support::docker::{docker_ok, APP_PORT};
use support::stack::{Stack, StackOptions, WEIGHT};

/// The stack's check settings (tests/it/support/stack.rs), for the restart target.
const CHECKS: &str = "inter 500ms fall 2 rise 2";
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Tokio's timer ticks at 1 ms, too coarse: the HAProxy poll sleeps with the thread instead.
const HAPROXY_POLL: Duration = Duration::from_micros(200);
/// The reaction-latency target (p99).
const TARGET: Duration = Duration::from_millis(5);
const STEP_DEADLINE: Duration = Duration::from_secs(30);
const REACTION_METRIC: &str = "haproxy_drain_reaction_latency_seconds";
const RESTORE_METRIC: &str = "haproxy_drain_restore_start_to_rotation_seconds";

fn main() {
    support::block_on(run());
}

async fn run() {
    let latency_samples = samples_from_env("REACTION_SAMPLES", 50);
    let restart_samples = samples_from_env("RESTART_SAMPLES", 10);
    let began = Instant::now();
    let stack = Stack::start(StackOptions::default()).await;
    let events = EventLog::subscribe().await;
    let mut report = String::from(
        "| Docker event → HAProxy state | samples | p50 | p99 | max | ≤ 5 ms | poll window p50 | \
         Docker → a subscriber p50 | daemon's histogram: count, mean, ≤ 5 ms |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for how in [TakeOut::Kill, TakeOut::Stop, TakeOut::KillUnwatched] {
        report.push_str(&take_out_phase(&stack, &events, how, latency_samples).await);
    }
    report.push_str(&restart_phase(&stack, &events, restart_samples).await);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    report.push_str(&format!(
        "Bench wall time {:.0} s; load average at the end {load}.\n",
        began.elapsed().as_secs_f64()
    ));
    println!("{report}");
}

/// `samples` take-outs rotating over the apps; one table row.
async fn take_out_phase(stack: &Stack, events: &EventLog, how: TakeOut, samples: usize) -> String {
    all_in_rotation(stack).await;
    let before = daemon_histogram(stack, REACTION_METRIC).await;
    let (mut latencies, mut windows, mut deliveries) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..samples {
        let sample = take_out_sample(stack, events, n % stack.apps.len() + 1, how).await;
        latencies.extend(sample.latency);
        windows.extend(sample.window);
        deliveries.push(sample.delivery);
    }
    all_in_rotation(stack).await;
    let daemon = daemon_histogram(stack, REACTION_METRIC)
        .await
        .minus(&before);
    let within = latencies.iter().filter(|l| **l <= TARGET).count();
    let [p50, p99, max, within] = match latencies.is_empty() {
        true => ["-", "-", "-", "-"].map(String::from),
        false => {
            let stats = Stats::of(&mut latencies);
            [
                ms(stats.p50),
                ms(stats.p99),
                ms(stats.max),
                within.to_string(),
            ]
        }
    };
    let window = match windows.is_empty() {
        true => "-".to_string(),
        false => ms(Stats::of(&mut windows).p50),
    };
    let delivery = ms(Stats::of(&mut deliveries).p50);
    let daemon = daemon.summary();
    let label = how.label();
    format!("| {label} | {samples} | {p50} | {p99} | {max} | {within} | {window} | {delivery} | {daemon} |\n")
}

/// `samples` restarts rotating over the apps; a table and the daemon's own view of them.
async fn restart_phase(stack: &Stack, events: &EventLog, samples: usize) -> String {
    all_in_rotation(stack).await;
    let before = daemon_histogram(stack, RESTORE_METRIC).await;
    let mut rows: [Vec<Duration>; 4] = Default::default();
    for n in 0..samples {
        let sample = restart_sample(stack, events, n % stack.apps.len() + 1).await;
        for (row, value) in rows.iter_mut().zip(sample) {
            row.extend(value);
        }
    }
    all_in_rotation(stack).await;
    let restore = daemon_histogram(stack, RESTORE_METRIC).await.minus(&before);
    let mut table = format!(
        "\n| `docker restart -t 10`, checks `{CHECKS}` | samples | p50 | max |\n|---|---|---|---|\n"
    );
    let labels = [
        "command issued → back in rotation",
        "container `start` event → back in rotation",
        "app first accepts a TCP connect → back in rotation",
        "command issued → app first accepts a TCP connect",
    ];
    for (label, values) in labels.iter().zip(rows.iter_mut()) {
        let stats = Stats::of(values);
        let (p50, max) = (ms(stats.p50), ms(stats.max));
        table.push_str(&format!("| {label} | {} | {p50} | {max} |\n", values.len()));
    }
    // Stats::of sorted them; the spread shows the check schedule's steps.
    let each: Vec<String> = rows[2]
        .iter()
        .map(|d| format!("{}", d.as_millis()))
        .collect();
    table.push_str(&format!(
        "\nAnswer → rotation, each restart (ms): {}.\n",
        each.join(", ")
    ));
    table.push_str(&format!(
        "\nThe daemon's `{RESTORE_METRIC}` over these restarts: count {}, mean {}. \
         Target: answer → rotation within one check interval ({}).\n",
        restore.count,
        restore.mean(),
        ms(CHECK_INTERVAL),
    ));
    table
}

async fn all_in_rotation(stack: &Stack) {
    for i in 1..=stack.apps.len() {
        stack.wait_in_rotation(i).await;
    }
}

#[derive(Clone, Copy)]
enum TakeOut {
    Kill,
    Stop,
    /// `docker kill` without the 200 µs poll (only the stack's 20 ms one): the daemon's own
    /// histogram then shows how much the bench's polling load slows the daemon down.
    KillUnwatched,
}

impl TakeOut {
    fn label(self) -> &'static str {
        match self {
            TakeOut::Kill => "`docker kill` (SIGKILL): `kill` event → server leaves READY",
            TakeOut::Stop => "`docker stop` (graceful app): `kill` (15) event → leaves READY",
            TakeOut::KillUnwatched => "`docker kill`, not polled every 200 µs: daemon's view only",
        }
    }
}

/// One take-out, timed from Docker's `kill` event. The container is started again before the
/// next sample; its next turn waits for it to be back in rotation.
struct TakeOutSample {
    /// To the first reply showing the server out of READY (an upper bound); None unpolled.
    latency: Option<Duration>,
    /// The poll window the change fell in (the measurement's resolution).
    window: Option<Duration>,
    /// `timeNano` to the bench's own event subscriber receiving the event.
    delivery: Duration,
}

async fn take_out_sample(
    stack: &Stack,
    events: &EventLog,
    i: usize,
    how: TakeOut,
) -> TakeOutSample {
    stack.wait_in_rotation(i).await;
    let container = stack.apps[i - 1].id.clone();
    let issued = now_nanos();
    let args: Vec<String> = match how {
        TakeOut::Kill | TakeOut::KillUnwatched => {
            vec!["kill".into(), "-s".into(), "KILL".into(), container.clone()]
        }
        TakeOut::Stop => vec!["stop".into(), "-t".into(), "10".into(), container.clone()],
    };
    let command = tokio::task::spawn_blocking(move || {
        docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    });
    let out = match how {
        TakeOut::KillUnwatched => {
            stack.wait_state(i, "out of READY", |s| !is_ready(s)).await;
            None
        }
        _ => Some(poll_haproxy(stack, i, "out of READY", |s| !is_ready(s)).await),
    };
    command.await.expect("docker command thread");
    let event = events.wait(&container, "kill", issued).await;
    docker_ok(&["start", &container]);
    TakeOutSample {
        latency: out.as_ref().map(|o| nanos_between(event.nanos, o.seen)),
        window: out.as_ref().map(|o| nanos_between(o.before, o.seen)),
        delivery: nanos_between(event.nanos, event.arrived),
    }
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
    let back = poll_haproxy(stack, i, "back in rotation", in_rotation)
        .await
        .seen;
    command.await.expect("docker restart thread");
    let started = events.wait(&container, "start", issued).await.nanos;
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

/// When HAProxy first showed a change: after `before` (the send time of the last poll that still
/// showed the old state) and by `seen` (the arrival of the first reply showing the new one).
struct Observation {
    before: i64,
    seen: i64,
}

/// Polls `show servers state` every ≈ 200 µs until server `i` satisfies `check`. Runs on a thread
/// of its own with its own runtime, so neither the bench's other tasks nor tokio's 1 ms timer
/// blur the timing. Times are Unix nanos, Docker's clock.
async fn poll_haproxy(
    stack: &Stack,
    i: usize,
    what: &str,
    check: fn(&ServerState) -> bool,
) -> Observation {
    let client = stack.client();
    let backend = stack.backend.clone();
    let id = stack.server(i);
    let what = format!("{id} {what}");
    let poll = move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let runtime = runtime.expect("poller runtime");
        let deadline = Instant::now() + STEP_DEADLINE;
        let mut before = now_nanos();
        loop {
            let sent = now_nanos();
            let states = runtime.block_on(client.show_servers_state(Some(&backend)));
            let seen = now_nanos();
            if states.is_ok_and(|states| states.iter().any(|s| s.id == id && check(s))) {
                return Observation { before, seen };
            }
            before = sent;
            assert!(Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(HAPROXY_POLL);
        }
    };
    tokio::task::spawn_blocking(poll)
        .await
        .expect("HAProxy poller")
}

async fn daemon_histogram(stack: &Stack, name: &str) -> Histogram {
    Histogram::parse(&stack.daemon.metrics_text().await, name)
}
