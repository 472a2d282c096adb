//! One measured rollout, the run of a scenario that produces it, and the markdown tables over
//! repeated runs: median and min–max of each measure, and the ratios to the classic scenario.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::cost::{Cost, CostSampler};
use super::exposition::{add, buckets, delta, quantile};
use super::load::{p99, LatencyLoad};
use super::rotation::{mean, RotationSampler};
use super::scenarios::{Scenario, CLASSIC};
use crate::support::roll::{World, WEIGHT};

/// One run of one scenario at one request delay.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub scenario: String,
    pub delay_ms: u64,
    pub failed: u64,
    pub served: u64,
    pub wall: Duration,
    /// Mean over containers of the time HAProxy had each out of rotation.
    pub out_of_rotation: Duration,
    /// p99 latency during the rollout ÷ p99 of the steady window before it.
    pub p99_ratio: f64,
    /// The daemon's CPU and peak RSS during the rollout, when it ran.
    pub daemon: Option<Cost>,
    /// Docker event → HAProxy took the server out, as the daemon's histogram observed it
    /// during the run (cumulative buckets, seconds); empty when the daemon did not run.
    pub reaction: Vec<(f64, f64)>,
    pub errors: Vec<String>,
}

/// Runs `scenario` once under a load of `workers` at `delay_ms`: a steady window first, then
/// the rollout, sampled all along.
pub async fn measure(
    world: &mut World,
    scenario: &Scenario,
    delay_ms: u64,
    workers: usize,
) -> Measurement {
    if !scenario.daemon {
        world.daemon.kill_hard();
    }
    let path = format!("/?delay_ms={delay_ms}");
    let load = LatencyLoad::start(world.frontend, workers, &path, Duration::from_secs(600));
    let steady = Duration::from_secs(2) + Duration::from_millis(6 * delay_ms);
    tokio::time::sleep(steady).await; // the steady-state window is a span of time, not a wait
    let sampler = RotationSampler::start(world.haproxy_client(), &world.backend, WEIGHT);
    let cost = world
        .daemon
        .pid()
        .filter(|_| scenario.daemon)
        .map(CostSampler::start);
    let reaction_before = reaction_buckets(world, scenario).await;
    let from = load.now();
    let started = Instant::now();
    (scenario.rollout)(world).await;
    let wall = started.elapsed();
    let reaction = delta(&reaction_before, &reaction_buckets(world, scenario).await);
    let to = load.now();
    let daemon = match cost {
        Some(cost) => Some(cost.stop().await),
        None => None,
    };
    let out = sampler.stop().await;
    let recorded = load.stop().await;
    if !scenario.daemon {
        world.daemon.restart().await;
    }
    world.wait_all_in_rotation(Duration::from_secs(60)).await;
    let during: Vec<_> = recorded.window(from, to).collect();
    let base = p99(recorded.window(Duration::ZERO, from)).as_secs_f64();
    Measurement {
        scenario: scenario.name.to_string(),
        delay_ms,
        failed: recorded.samples.iter().filter(|s| !s.ok).count() as u64,
        served: recorded.samples.iter().filter(|s| s.ok).count() as u64,
        wall,
        out_of_rotation: mean(&out),
        p99_ratio: p99(during.into_iter()).as_secs_f64() / base.max(1e-9),
        daemon,
        reaction,
        errors: recorded.errors,
    }
}

/// The daemon's reaction histogram for this world's backend (nothing when it does not run).
async fn reaction_buckets(world: &World, scenario: &Scenario) -> Vec<(f64, f64)> {
    if !scenario.daemon {
        return Vec::new();
    }
    let text = world.daemon.metrics_text().await;
    let filter = [("action", "take_out"), ("proxy", world.backend.as_str())];
    buckets(&text, REACTION, &filter)
}

const REACTION: &str = "haproxy_drain_reaction_latency_seconds";

/// p50 / p99 of the reactions of every run, in ms (bucket upper bounds).
fn reaction_cell(list: &[&Measurement]) -> String {
    let mut all = Vec::new();
    for run in list {
        add(&mut all, &run.reaction);
    }
    match (quantile(&all, 0.5), quantile(&all, 0.99)) {
        (Some(p50), Some(p99)) => format!("≤ {:.1} / ≤ {:.1}", p50 * 1e3, p99 * 1e3),
        _ => "-".to_string(),
    }
}

/// Median and min–max of `values`, formatted with `f`.
fn spread(values: &mut [f64], f: impl Fn(f64) -> String) -> String {
    values.sort_by(|a, b| a.total_cmp(b));
    let (min, max) = (values[0], values[values.len() - 1]);
    format!("{} ({}–{})", f(median(values)), f(min), f(max))
}

pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Per delay, per scenario (in first-seen order): the measurements.
pub fn grouped(runs: &[Measurement]) -> BTreeMap<u64, Vec<(String, Vec<&Measurement>)>> {
    let mut groups: BTreeMap<u64, Vec<(String, Vec<&Measurement>)>> = BTreeMap::new();
    for run in runs {
        let rows = groups.entry(run.delay_ms).or_default();
        match rows.iter_mut().find(|(name, _)| *name == run.scenario) {
            Some((_, list)) => list.push(run),
            None => rows.push((run.scenario.clone(), vec![run])),
        }
    }
    groups
}

/// The rollout tables, one per request delay.
pub fn markdown(runs: &[Measurement]) -> String {
    let mut out = String::new();
    for (delay, rows) in grouped(runs) {
        let classic_wall = rows
            .iter()
            .find(|(name, _)| name == CLASSIC)
            .map(|(_, list)| {
                let mut walls: Vec<f64> = list.iter().map(|m| m.wall.as_secs_f64()).collect();
                walls.sort_by(|a, b| a.total_cmp(b));
                median(&walls)
            });
        out.push_str(&format!(
            "\nRequests `GET /?delay_ms={delay}`:\n\n| scenario | runs | failed requests, median (min–max) | \
             rollout wall time | time out of rotation per container | p99 during ÷ steady p99 | \
             wall time ÷ classic | daemon CPU during (% of a core) | daemon peak RSS | \
             Docker event → HAProxy take-out, p50 / p99 (ms) |\n\
             |---|---|---|---|---|---|---|---|---|---|\n"
        ));
        for (name, list) in rows {
            let pick = |f: fn(&Measurement) -> f64| list.iter().map(|m| f(m)).collect::<Vec<f64>>();
            let mut failed = pick(|m| m.failed as f64);
            let mut wall = pick(|m| m.wall.as_secs_f64());
            let mut out_rot = pick(|m| m.out_of_rotation.as_secs_f64());
            let mut ratio = pick(|m| m.p99_ratio);
            let mut walls_sorted = wall.clone();
            walls_sorted.sort_by(|a, b| a.total_cmp(b));
            let to_classic = classic_wall
                .map(|c| format!("{:.2}", median(&walls_sorted) / c.max(1e-9)))
                .unwrap_or_else(|| "-".into());
            let costs: Vec<Cost> = list.iter().filter_map(|m| m.daemon).collect();
            let (cpu, rss) = if costs.is_empty() {
                ("-".to_string(), "-".to_string())
            } else {
                let mut cpu: Vec<f64> = costs.iter().map(|c| c.cpu_percent).collect();
                let rss = costs.iter().map(|c| c.peak_rss_kib).max().unwrap_or(0);
                (
                    spread(&mut cpu, |v| format!("{v:.1}")),
                    format!("{:.1} MiB", rss as f64 / 1024.0),
                )
            };
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {to_classic} | {cpu} | {rss} | {} |\n",
                list.len(),
                spread(&mut failed, |v| format!("{v:.0}")),
                spread(&mut wall, |v| format!("{v:.1} s")),
                spread(&mut out_rot, |v| format!("{v:.2} s")),
                spread(&mut ratio, |v| format!("{v:.2}")),
                reaction_cell(&list),
            ));
        }
    }
    out
}
