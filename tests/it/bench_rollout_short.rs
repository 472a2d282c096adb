//! The short variant of the rollout bench (`benches/rollout.rs`), so the harness cannot rot:
//! every scenario once, 2 containers, 50 ms requests; the drain-aware scenarios lose nothing,
//! and the report and its plot are written. The app keeps accepting 300 ms after SIGTERM (the
//! README's lame-duck advice): a plain `docker restart` signals the app when we hear of it, and an
//! app that closes its listener at once can refuse a request HAProxy sent in between.

use std::time::{Duration, Instant};

use crate::support::bench::report::{markdown, measure};
use crate::support::bench::{plot, scenarios};
use crate::support::docker::IMAGE_HC;
use crate::support::roll::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rollout_scenario_runs_and_the_drain_aware_ones_lose_nothing() {
    let began = Instant::now();
    let env = [("ON_SIGTERM", "graceful"), ("STOP_DELAY_MS", "300")];
    let mut world = World::start(2, IMAGE_HC, &env).await;
    let mut runs = Vec::new();
    for scenario in scenarios::scenarios() {
        let run = measure(&mut world, &scenario, 50, 4).await;
        if scenario.daemon {
            assert_eq!(run.failed, 0, "{}: {:?}", run.scenario, run.errors);
        }
        assert!(run.served > 0, "{}: no request served", run.scenario);
        assert!(run.wall < Duration::from_secs(60), "{}", run.scenario);
        runs.push(run);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let table = markdown(&runs);
    assert!(table.contains("haproxy-drain roll"), "{table}");
    let png = dir.path().join("rollout.png");
    plot::draw(&runs, &png).expect("plot");
    let bytes = std::fs::read(&png).expect("png written");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!("{table}\nshort rollout bench took {:?}", began.elapsed());
}
