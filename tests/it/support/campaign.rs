//! The fault campaign (issue 8): rollouts of 3 containers under load (`haproxy-drain roll` to the
//! other image version, through a real HAProxy without `retry-on`), each with at most one fault
//! injected at a random moment of the roll:
//!
//! - `kill`: SIGKILL the daemon, start it again 0–2 s later with the same state file;
//! - `reload`: a master-worker reload of HAProxy (every runtime change is lost);
//! - `cut`: every connection through the Docker socket proxy closed (the event stream breaks,
//!   and so does any Docker API call the roll had in flight).
//!
//! A roll that a fault broke is run again (what an operator or a CI job does), up to
//! [`ROLL_ATTEMPTS`] times. After each rollout: every server in rotation (READY, RUNNING) at its
//! original weight and on its container's current address, every container running the target
//! image, and — on the drain-aware paths (no fault, `kill`, `cut`) — 0 failed requests and no
//! HAProxy sample showing a server in rotation between its container's `kill` event and its next
//! `start`. After a `reload`, HAProxy serves its config file's state until the daemon notices
//! (≤ 250 ms): failures and such samples are counted and reported, not asserted.
//!
//! Used by benches/fault_campaign.rs (50 rollouts) and tests/it/shutdown_campaign.rs (4).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use super::docker::{IMAGE_SIGTERM, IMAGE_SIGTERM_V2};
use super::load::Load;
use super::proxy::SocketProxy;
use super::rotation::out_of_rotation_window;
use super::shutdown_world::{ShutdownWorld, WorldOptions};

pub const ROLL_ATTEMPTS: usize = 3;
const LOAD_CLIENTS: usize = 6;
const LOAD_PATH: &str = "/?delay_ms=50";
const IN_ROTATION_DEADLINE: Duration = Duration::from_secs(40);
const DAEMON_CONFIG: &str = "reconcile_interval = \"1s\"\n[defaults]\ndrain_timeout = \"5s\"\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    None,
    KillDaemon,
    ReloadHaproxy,
    CutEvents,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::KillDaemon => "kill daemon",
            Fault::ReloadHaproxy => "reload HAProxy",
            Fault::CutEvents => "cut Docker stream",
        }
    }

    /// The daemon drains before anything stops serving: no request may fail.
    pub fn drain_aware(self) -> bool {
        self != Fault::ReloadHaproxy
    }
}

#[derive(Debug, Clone)]
pub struct CampaignOptions {
    pub rollouts: usize,
    pub kills: usize,
    pub reloads: usize,
    pub cuts: usize,
    pub seed: u64,
}

impl CampaignOptions {
    /// Issue 8's campaign: 50 rollouts, 25 daemon kills, 10 reloads, 10 stream cuts.
    pub fn full(seed: u64) -> Self {
        Self {
            rollouts: 50,
            kills: 25,
            reloads: 10,
            cuts: 10,
            seed,
        }
    }

    /// One rollout without a fault, then one of each.
    pub fn short(seed: u64) -> Self {
        Self {
            rollouts: 4,
            kills: 1,
            reloads: 1,
            cuts: 1,
            seed,
        }
    }

    /// The first rollout has no fault (it measures how long a roll takes, for the random
    /// moments); the others are shuffled.
    fn schedule(&self, rng: &mut Rng) -> Vec<Fault> {
        let mut faults: Vec<Fault> = std::iter::repeat_n(Fault::KillDaemon, self.kills)
            .chain(std::iter::repeat_n(Fault::ReloadHaproxy, self.reloads))
            .chain(std::iter::repeat_n(Fault::CutEvents, self.cuts))
            .collect();
        faults.truncate(self.rollouts.saturating_sub(1));
        while faults.len() + 1 < self.rollouts {
            faults.push(Fault::None);
        }
        for i in (1..faults.len()).rev() {
            faults.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut schedule = vec![Fault::None];
        schedule.extend(faults);
        schedule.truncate(self.rollouts);
        schedule
    }
}

/// xorshift64*: reproducible from the printed seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A seed from `CAMPAIGN_SEED`, else from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("CAMPAIGN_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

#[derive(Debug, Clone)]
pub struct Rollout {
    pub n: usize,
    pub fault: Fault,
    /// When the fault was injected, from the roll's start.
    pub fault_at: Duration,
    /// `kill`: how long the daemon stayed down before it was started again.
    pub down_for: Duration,
    pub roll_attempts: usize,
    pub ok: u64,
    pub failed: u64,
    pub failures: Vec<String>,
    /// HAProxy samples showing a server in rotation while its container was stopping.
    pub in_rotation_while_stopping: usize,
    /// Containers that no longer existed after the rollout (run again by the campaign).
    pub lost: usize,
    pub took: Duration,
    pub problems: Vec<String>,
}

pub struct CampaignReport {
    pub seed: u64,
    pub rollouts: Vec<Rollout>,
    pub took: Duration,
}

impl CampaignReport {
    pub fn problems(&self) -> Vec<String> {
        self.rollouts
            .iter()
            .flat_map(|r| {
                r.problems
                    .iter()
                    .map(move |p| format!("rollout {} ({}): {p}", r.n, r.fault.name()))
            })
            .collect()
    }

    /// A markdown table of the counts per fault, and the totals.
    pub fn summary(&self) -> String {
        #[derive(Default)]
        struct Row {
            rollouts: usize,
            reruns: usize,
            ok: u64,
            failed: u64,
            in_rotation: usize,
            lost: usize,
            with_problems: usize,
        }
        let mut rows: BTreeMap<Fault, Row> = BTreeMap::new();
        for r in &self.rollouts {
            let row = rows.entry(r.fault).or_default();
            row.rollouts += 1;
            row.reruns += r.roll_attempts.saturating_sub(1);
            row.ok += r.ok;
            row.failed += r.failed;
            row.in_rotation += r.in_rotation_while_stopping;
            row.lost += r.lost;
            row.with_problems += usize::from(!r.problems.is_empty());
        }
        let mut out = String::from(
            "| fault | rollouts | rolls run again | requests ok | failed | in rotation while stopping (samples) | containers lost | rollouts with a problem |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for (fault, row) in &rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                fault.name(),
                row.rollouts,
                row.reruns,
                row.ok,
                row.failed,
                row.in_rotation,
                row.lost,
                row.with_problems
            );
        }
        let _ = writeln!(
            out,
            "\n{} rollouts of 3 containers in {:.0} s (seed {}; CAMPAIGN_SEED={} replays it).",
            self.rollouts.len(),
            self.took.as_secs_f64(),
            self.seed,
            self.seed
        );
        out
    }
}

pub async fn run(options: CampaignOptions) -> CampaignReport {
    let began = Instant::now();
    eprintln!(
        "fault campaign: {options:?} (CAMPAIGN_SEED={} replays it)",
        options.seed
    );
    let mut rng = Rng::new(options.seed);
    let schedule = options.schedule(&mut rng);
    let proxy = SocketProxy::start();
    let mut world = ShutdownWorld::start(WorldOptions {
        apps: 3,
        env: vec![("ON_SIGTERM".into(), "graceful".into())],
        stop_timeout: 3,
        daemon_config: DAEMON_CONFIG.to_string(),
        docker_host: Some(proxy.url()),
        ..WorldOptions::default()
    })
    .await;
    let mut roll_estimate = Duration::from_secs(4);
    let mut rollouts = Vec::new();
    for (n, fault) in schedule.into_iter().enumerate() {
        let image = if n % 2 == 0 {
            IMAGE_SIGTERM_V2
        } else {
            IMAGE_SIGTERM
        };
        let fault_at = Duration::from_millis(rng.below(roll_estimate.as_millis() as u64));
        let down_for = Duration::from_millis(rng.below(2001));
        let rollout = rollout(&mut world, &proxy, n, fault, fault_at, down_for, image).await;
        if n == 0 {
            roll_estimate = rollout.took.max(Duration::from_secs(1));
        }
        eprintln!(
            "rollout {n:>2} {:<17} at {:>5} ms: {} attempt(s), {} ok, {} failed, {} in-rotation samples while stopping, {:.1} s{}",
            fault.name(),
            fault_at.as_millis(),
            rollout.roll_attempts,
            rollout.ok,
            rollout.failed,
            rollout.in_rotation_while_stopping,
            rollout.took.as_secs_f64(),
            if rollout.problems.is_empty() { String::new() } else { format!(" PROBLEMS: {:?}", rollout.problems) }
        );
        rollouts.push(rollout);
    }
    CampaignReport {
        seed: options.seed,
        rollouts,
        took: began.elapsed(),
    }
}

fn roll_command(world: &ShutdownWorld, image: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_haproxy-drain"));
    command
        .arg("roll")
        .args(world.names())
        .args(["--image", image, "--timeout", "30s"])
        .env(
            "HAPROXY_DRAIN_CONTROL_SOCKET",
            world.daemon.control_socket(),
        );
    command
}

async fn rollout(
    world: &mut ShutdownWorld,
    proxy: &SocketProxy,
    n: usize,
    fault: Fault,
    fault_at: Duration,
    down_for: Duration,
    image: &'static str,
) -> Rollout {
    let mut problems = Vec::new();
    for i in 0..world.apps.len() {
        if let Err(err) = world.try_wait_in_rotation(i, IN_ROTATION_DEADLINE).await {
            problems.push(format!("before the rollout: {err}"));
        }
    }
    let log_from = world.daemon.log().len();
    let load = Load::start(world.frontend, LOAD_CLIENTS, LOAD_PATH);
    let t0 = SystemTime::now();
    let started = Instant::now();
    let mut attempts = 0;
    let mut outputs = Vec::new();
    let mut succeeded = false;
    let mut injected = fault == Fault::None;
    while attempts < ROLL_ATTEMPTS {
        attempts += 1;
        let mut command = roll_command(world, image);
        let roll = tokio::task::spawn_blocking(move || command.output());
        if !injected {
            injected = true;
            // A roll that ends first still gets its fault, between the roll and the checks.
            let moment = Instant::now() + fault_at;
            while Instant::now() < moment && !roll.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            inject(world, proxy, fault, down_for).await;
        }
        let output = match roll.await {
            Ok(Ok(output)) => output,
            other => {
                problems.push(format!("the roll CLI did not run: {other:?}"));
                break;
            }
        };
        let success = output.status.success();
        outputs.push(format!(
            "attempt {attempts}: {:?}\n{}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
        if success {
            succeeded = true;
            break;
        }
        if fault == Fault::None || fault == Fault::ReloadHaproxy {
            problems.push(format!(
                "the roll failed with no fault that breaks it: {}",
                outputs.join("\n")
            ));
            break;
        }
    }
    let took = started.elapsed();
    let mut lost = 0;
    if !succeeded {
        problems.push(format!(
            "no roll succeeded in {attempts} attempts:\n{}",
            outputs.join("\n")
        ));
    }
    for i in 0..world.apps.len() {
        if !world.exists(i) {
            // The daemon brings back a container its killed roll had set aside
            // (`RollManager::finish_interrupted`): a lost one is a regression. Recorded, then
            // run again so the campaign goes on.
            problems.push(format!(
                "{} was lost: it no longer exists after the roll(s)",
                world.apps[i].name
            ));
            lost += 1;
            world.run_again(i, image).await;
        }
        if let Err(err) = world.try_wait_in_rotation(i, IN_ROTATION_DEADLINE).await {
            problems.push(err);
            continue;
        }
        let running = world.inspect(i, "{{.State.Running}} {{.Config.Image}}");
        if running != format!("true {image}") {
            problems.push(format!(
                "{}: {running}, expected running {image}",
                world.apps[i].name
            ));
        }
    }
    let report = load.stop().await;
    let in_rotation = in_rotation_while_stopping(world, t0);
    if fault.drain_aware() {
        if report.failed > 0 {
            problems.push(format!(
                "{} failed requests: {:?}",
                report.failed, report.failures
            ));
        }
        if in_rotation > 0 {
            problems.push(format!(
                "{in_rotation} samples in rotation while a container was stopping"
            ));
        }
    }
    if report.ok == 0 {
        problems.push("no request succeeded".into());
    }
    if !problems.is_empty() {
        let log = world.daemon.log();
        let decisions: Vec<&str> = log
            .get(log_from..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&world.backend) && !l.contains("DEBUG"))
            .collect();
        problems.push(format!("daemon decisions:\n{}", decisions.join("\n")));
    }
    world.rotation.forget_before(SystemTime::now());
    Rollout {
        n,
        fault,
        fault_at,
        down_for: if fault == Fault::KillDaemon {
            down_for
        } else {
            Duration::ZERO
        },
        roll_attempts: attempts,
        ok: report.ok,
        failed: report.failed,
        failures: report.failures,
        in_rotation_while_stopping: in_rotation,
        lost,
        took,
        problems,
    }
}

async fn inject(world: &mut ShutdownWorld, proxy: &SocketProxy, fault: Fault, down_for: Duration) {
    match fault {
        Fault::None => {}
        Fault::KillDaemon => {
            world.daemon.kill_hard();
            // The fault itself: the daemon stays dead this long (not a wait for anything).
            tokio::time::sleep(down_for).await;
            world.daemon.restart().await;
        }
        Fault::ReloadHaproxy => {
            world.haproxy.reload().await;
        }
        Fault::CutEvents => {
            proxy.cut_all();
        }
    }
}

/// For every container `kill` event since `t0`: samples showing that server in rotation between
/// the event and the container's next `start` (a roll drains before it stops: no allowance).
fn in_rotation_while_stopping(world: &ShutdownWorld, t0: SystemTime) -> usize {
    let mut count = 0;
    for app in &world.apps {
        let samples = world.rotation.since(&app.server, t0);
        for kill in world
            .events
            .named(&app.name, t0)
            .iter()
            .filter(|e| e.action == "kill")
        {
            let Some(start) = world.events.first(&app.name, "start", kill.at) else {
                continue;
            };
            count += out_of_rotation_window(&samples, kill.at, start.at).violations();
        }
    }
    count
}
