//! `haproxy-drain roll` vs the classic deploy loop, on 3 containers under the same load.
//!
//! `cargo bench --bench roll_vs_classic` builds one world (3 healthchecked testapp containers on a
//! user network, a real HAProxy, `haproxy-drain run`, a load generator of 6 workers each looping
//! `GET /?delay_ms=20` with a new connection per request), then measures, one after another:
//!
//! 1. `haproxy-drain roll a b c` (restart: drain, stop, start, health-gated restore);
//! 2. `haproxy-drain roll a b c --image v2` (the same with a recreate), then `roll --surge`
//!    back to v1 and `roll --max-surge 3` to v2 again (with the slow app: `roll --surge`
//!    without an image);
//! 3. the classic loop (run first, on fresh containers), with the daemon stopped so it cannot
//!    help: per container
//!    `set weight 0` → `sleep 5` → `docker restart` → `set weight <original>`.
//!
//! Twice: with an app that listens at once after `start`, and with one that needs 1.5 s
//! (`STARTUP_DELAY_MS`), like most real apps. Each phase gets a fresh load generator; it prints
//! markdown tables (wall time, requests served, failed) for docs/benchmarks.md.

/// The test fixtures, at the paths they expect (`crate::support::…`).
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use haproxy_drain::haproxy::types::WeightSpec;
use support::capacity::{Capacity, CapacitySampler};
use support::docker::{docker, IMAGE_HC, IMAGE_V2};
use support::roll::{blocking, Load, Tally, World, WEIGHT};

/// The classic method's fixed wait for in-flight requests, per container.
const CLASSIC_SLEEP: Duration = Duration::from_secs(5);
const WORKERS: usize = 6;
const PATH: &str = "/?delay_ms=20";

struct Row {
    method: String,
    wall: Duration,
    tally: Tally,
    capacity: Capacity,
    /// A surge's step lines: how long each part took (the admit line splits the gate).
    admits: Vec<String>,
}

fn main() {
    support::block_on(run());
}

async fn run() {
    let instant = scenario(&[("ON_SIGTERM", "exit")], true).await;
    print_table("app listens at once after start", &instant);
    // Most real apps need a while after `start` before they accept connections.
    let slow = scenario(
        &[("ON_SIGTERM", "exit"), ("STARTUP_DELAY_MS", "1500")],
        false,
    )
    .await;
    print_table("app needs 1.5 s after start to listen", &slow);
}

/// One fresh world: the classic loop with the daemon stopped (first, on the containers'
/// original addresses: the script cannot follow an address that changes), then the rolls.
async fn scenario(env: &[(&str, &str)], with_image: bool) -> Vec<Row> {
    let mut world = World::start(3, IMAGE_HC, env).await;
    // Without the daemon: nothing drains on the Docker events, as in a plain deploy script.
    world.daemon.kill_hard();
    let classic = measure_classic(&world).await;
    world.daemon.restart().await;
    world.wait_all_in_rotation(Duration::from_secs(30)).await;
    // The classic loop restores weights before its restarted apps are up: let HAProxy see every
    // server UP again before the next method is measured.
    wait_haproxy_all_up(&world).await;
    let mut rows = vec![measure_roll(&world, "haproxy-drain roll (restart)", &[]).await];
    world.wait_all_in_rotation(Duration::from_secs(30)).await;
    if with_image {
        let image = ["--image", IMAGE_V2];
        rows.push(measure_roll(&world, "haproxy-drain roll --image (recreate)", &image).await);
        world.wait_all_in_rotation(Duration::from_secs(30)).await;
        let back = ["--image", IMAGE_HC, "--surge"];
        rows.push(measure_roll(&world, "haproxy-drain roll --image --surge", &back).await);
        world.wait_all_in_rotation(Duration::from_secs(30)).await;
        let all = ["--image", IMAGE_V2, "--max-surge", "3"];
        rows.push(measure_roll(&world, "haproxy-drain roll --image --max-surge 3", &all).await);
    } else {
        rows.push(measure_roll(&world, "haproxy-drain roll --surge", &["--surge"]).await);
    }
    rows.push(classic);
    rows
}

async fn wait_haproxy_all_up(world: &World) {
    let deadline = Instant::now() + Duration::from_secs(60);
    // First every app answering again (Docker's health check), so that HAProxy's next checks
    // pass; then every server UP.
    while (0..world.containers.len())
        .any(|i| world.inspect(i, "{{.State.Health.Status}}") != "healthy")
    {
        assert!(
            Instant::now() < deadline,
            "the apps never got healthy again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let mut up = 0;
        for index in 0..world.containers.len() {
            let (status, weight) = world.status_and_weight(index).await;
            if status.starts_with("UP") && weight > 0 {
                up += 1;
            }
        }
        if up == world.containers.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never saw every server UP again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print_table(title: &str, rows: &[Row]) {
    println!("\n{title}:\n");
    let classic = rows.last().map_or(1.0, |r| r.wall.as_secs_f64());
    println!("| method | wall time | ÷ classic | requests served | failed requests | fewest servers in rotation |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.2} s | {:.2} | {} | {} | {} of 3 |",
            row.method,
            row.wall.as_secs_f64(),
            row.wall.as_secs_f64() / classic,
            row.tally.ok,
            row.tally.failed,
            row.capacity.min_in_rotation.unwrap_or(0)
        );
        for line in &row.admits {
            println!("    {line}");
        }
        println!("    at the fewest: {:?}", row.capacity.at_min);
        if !row.tally.errors.is_empty() {
            eprintln!(
                "{} failures (first ones): {:?}",
                row.method, row.tally.errors
            );
        }
    }
}

async fn measure_roll(world: &World, method: &str, extra: &[&str]) -> Row {
    let capacity = CapacitySampler::start(world.haproxy_client(), &world.backend);
    let load = Load::start(world.frontend, WORKERS, PATH);
    let started = Instant::now();
    let output = world.roll_cli(extra).await;
    let wall = started.elapsed();
    let tally = load.stop().await;
    let capacity = capacity.stop().await;
    // Every step of a surge, with its time: where the rest of the roll goes.
    let admits = if extra.contains(&"--surge") || extra.contains(&"--max-surge") {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.trim_start().starts_with('+'))
            .map(|line| line.trim().to_string())
            .collect()
    } else {
        Vec::new()
    };
    assert!(
        output.status.success(),
        "{method} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Row {
        method: method.to_string(),
        wall,
        tally,
        capacity,
        admits,
    }
}

async fn measure_classic(world: &World) -> Row {
    let client = world.haproxy_client();
    let capacity = CapacitySampler::start(world.haproxy_client(), &world.backend);
    let load = Load::start(world.frontend, WORKERS, PATH);
    let started = Instant::now();
    for index in 0..world.containers.len() {
        let server = world.server(index);
        client
            .set_weight(&server, WeightSpec::Absolute(0))
            .await
            .expect("set weight 0");
        // The method under test: a fixed wait instead of watching the sessions.
        tokio::time::sleep(CLASSIC_SLEEP).await;
        let name = world.name(index);
        blocking(move || docker(&["restart", &name]).expect("docker restart")).await;
        client
            .set_weight(&server, WeightSpec::Absolute(WEIGHT))
            .await
            .expect("restore weight");
    }
    let wall = started.elapsed();
    let tally = load.stop().await;
    Row {
        method: "classic: weight 0, sleep 5, docker restart, weight back".to_string(),
        wall,
        tally,
        capacity: capacity.stop().await,
        admits: Vec::new(),
    }
}
