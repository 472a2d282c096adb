//! Slow start against a real HAProxy: the weights `show stat` reports over time while a restored
//! server ramps back (`haproxy-drain.ramp`), and an operator's `set weight` in the middle of it
//! standing.

use std::time::{Duration, Instant};

use haproxy_drain::haproxy::WeightSpec;

use crate::support::docker::IMAGE_HC;
use crate::support::roll::{World, WEIGHT};

const RAMP: Duration = Duration::from_secs(2);

/// Two servers ramping over 2 s, not watched (the watch has its own tests).
async fn world() -> World {
    let labels = [("haproxy-drain.ramp", "2s"), ("haproxy-drain.watch", "0s")];
    World::start_with(2, IMAGE_HC, &[], &labels, &[]).await
}

fn cli_ok(world: &World, args: &[&str]) {
    let output = tokio::task::block_in_place(|| world.daemon.cli(args));
    assert!(
        output.status.success(),
        "{args:?}: {}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        world.daemon.log()
    );
}

/// Takes app1 out (an API drain) and hands it back; returns when `ready` was asked.
async fn out_and_back(world: &World) {
    let name = world.name(0);
    cli_ok(world, &["drain", &name, "--wait"]);
    let (status, _) = world.status_and_weight(0).await;
    assert!(status.starts_with("MAINT"), "drained app1 is {status}");
    cli_ok(world, &["ready", &name]);
}

/// (ms since `ready`, status, weight) every 20 ms until `done` says stop or 8 s pass.
async fn sample(
    world: &World,
    done: impl Fn(&[(u64, String, u32)]) -> bool,
) -> Vec<(u64, String, u32)> {
    let started = Instant::now();
    let mut samples = Vec::new();
    while !done(&samples) {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "no end after 8 s: {samples:?}\ndaemon log:\n{}",
            world.daemon.log()
        );
        let (status, weight) = world.status_and_weight(0).await;
        samples.push((started.elapsed().as_millis() as u64, status, weight));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_server_comes_back_in_steps_up_to_its_weight() {
    let world = world().await;
    out_and_back(&world).await;
    let samples = sample(&world, |s| {
        s.last()
            .is_some_and(|(_, status, w)| status.starts_with("UP") && *w == WEIGHT)
    })
    .await;
    let serving: Vec<&(u64, String, u32)> = samples
        .iter()
        .filter(|(_, status, _)| status.starts_with("UP"))
        .collect();
    let weights: Vec<u32> = serving.iter().map(|(_, _, w)| *w).collect();
    let log = world.daemon.log();
    assert!(
        weights.iter().all(|w| *w >= 1),
        "in rotation at weight 0: {samples:?}"
    );
    assert!(
        weights.windows(2).all(|pair| pair[0] <= pair[1]),
        "the weight went down: {samples:?}"
    );
    let steps: std::collections::BTreeSet<u32> =
        weights.iter().copied().filter(|w| *w < WEIGHT).collect();
    assert!(
        steps.len() >= 4,
        "expected several steps below {WEIGHT}, saw {steps:?}: {samples:?}\n{log}"
    );
    assert!(
        weights.first().is_some_and(|w| *w <= 2),
        "it starts low: {samples:?}"
    );
    let first_up = serving.first().map(|(ms, _, _)| *ms).unwrap_or(0);
    let at_full = serving.last().map(|(ms, _, _)| *ms).unwrap_or(0);
    let ramp_ms = at_full - first_up;
    // Ten steps of 200 ms: the last one is due 1.8 s after the first.
    assert!(
        (1_500..=3_500).contains(&ramp_ms),
        "full weight {ramp_ms} ms after it came back: {samples:?}"
    );
    eprintln!(
        "ramp: back in rotation at {first_up} ms, full weight {ramp_ms} ms later, steps {steps:?}"
    );
    // The record is gone with the last step: a restart of the daemon would not touch it.
    let views = world.daemon.client().servers().await.expect("status");
    let app1 = views
        .iter()
        .find(|v| v.server == "app1")
        .expect("app1 known");
    assert_eq!(app1.phase, "in_rotation");
    assert_eq!(app1.weight, WEIGHT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_weight_during_the_ramp_wins() {
    let world = world().await;
    out_and_back(&world).await;
    // Wait until a step has just landed (the next one is ~200 ms away: HAProxy has no
    // compare-and-set, so a change between a step's read and its write would be lost), then
    // set a weight of our own.
    sample(&world, |s| match s {
        [.., (_, _, before), (_, status, now)] => {
            status.starts_with("UP") && before != now && (2..WEIGHT - 3).contains(now)
        }
        _ => false,
    })
    .await;
    world
        .haproxy_client()
        .set_weight(&world.server(0), WeightSpec::Absolute(7))
        .await
        .expect("set weight");
    let changed = Instant::now();
    // Past the ramp's end: the weight must still be the operator's.
    let samples = sample(&world, |_| {
        changed.elapsed() > RAMP + Duration::from_secs(1)
    })
    .await;
    assert!(
        samples.iter().all(|(_, _, w)| *w == 7),
        "the ramp touched the operator's weight: {samples:?}\ndaemon log:\n{}",
        world.daemon.log()
    );
    let log = world.daemon.log();
    assert!(
        log.contains("weight changed during the slow start"),
        "the daemon says why it stopped ramping:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_ramp_sets_the_original_weight_when_it_restarts() {
    let mut world = world().await;
    out_and_back(&world).await;
    sample(&world, |s| {
        s.last()
            .is_some_and(|(_, status, w)| status.starts_with("UP") && (1..WEIGHT / 2).contains(w))
    })
    .await;
    world.daemon.kill_hard();
    let state = std::fs::read_to_string(world.daemon.state_file()).unwrap_or_default();
    assert!(
        state.contains("\"ramping\": true"),
        "the record of a ramp in progress is on disk: {state}"
    );
    let (_, stuck) = world.status_and_weight(0).await;
    assert!(stuck < WEIGHT, "nobody ramps while the daemon is down");
    world.daemon.restart().await;
    let restarted = Instant::now();
    let samples = sample(&world, |s| {
        s.last()
            .is_some_and(|(_, status, w)| status.starts_with("UP") && *w == WEIGHT)
    })
    .await;
    let took = restarted.elapsed();
    assert!(
        samples
            .iter()
            .all(|(_, status, _)| status.starts_with("UP")),
        "the restart took it out of rotation: {samples:?}"
    );
    eprintln!("ramp: stuck at {stuck} while the daemon was down, {WEIGHT} again {took:?} after its restart");
    let state = std::fs::read_to_string(world.daemon.state_file()).unwrap_or_default();
    assert!(!state.contains("ramping"), "the record is gone: {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_mid_ramp_wins_and_the_next_restore_goes_back_to_the_original_weight() {
    let world = world().await;
    out_and_back(&world).await;
    sample(&world, |s| {
        s.last()
            .is_some_and(|(_, status, w)| status.starts_with("UP") && (2..WEIGHT / 2).contains(w))
    })
    .await;
    // Drained in the middle of the ramp: out at once, and the ramp does not bring it back.
    out_and_back(&world).await;
    let samples = sample(&world, |s| {
        s.last()
            .is_some_and(|(_, status, w)| status.starts_with("UP") && *w == WEIGHT)
    })
    .await;
    let up: Vec<u32> = samples
        .iter()
        .filter(|(_, status, _)| status.starts_with("UP"))
        .map(|(_, _, w)| *w)
        .collect();
    assert!(
        up.first().is_some_and(|w| *w <= 2),
        "the second restore ramps again from the bottom: {samples:?}"
    );
}

/// `static-rr` takes only 0% and 100%: HAProxy refuses the first step, and the server is back
/// at its whole weight at once — not held, not taken out again by the next reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_static_algorithm_the_weight_comes_back_whole() {
    use crate::support::daemon::Daemon;
    use crate::support::docker::{unique_name, ContainerSpec, TestNetwork, APP_PORT};
    use crate::support::haproxy::HaproxyFixture;
    use crate::support::roll::blocking;

    let backend = unique_name("be").replace('-', "_");
    let label_backend = backend.clone();
    let (network, app) = blocking(move || {
        let network = TestNetwork::create();
        let app = ContainerSpec::new("app1")
            .image(IMAGE_HC)
            .network(&network)
            .label("haproxy-drain.backend", &label_backend)
            .label("haproxy-drain.server", "app1")
            .label("haproxy-drain.port", &APP_PORT.to_string())
            .label("haproxy-drain.ramp", "2s")
            .label("haproxy-drain.watch", "0s")
            .run();
        app.wait_healthy(Duration::from_secs(30));
        (network, app)
    })
    .await;
    let ip = app.ip().expect("address");
    let sections = format!(
        "backend {backend}\n    balance static-rr\n    option httpchk GET /health\n    \
         default-server inter 500ms fastinter 100ms fall 2 rise 1 weight {WEIGHT}\n    \
         server app1 {ip}:{APP_PORT} check\n"
    );
    let haproxy = HaproxyFixture::start(&sections).await;
    // A reconciliation every second: a restore it saw as failed would show within the test.
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("haproxy-drain.toml");
    std::fs::write(&config, "reconcile_interval = \"1s\"\n").expect("config file");
    let daemon = Daemon::start(
        &[haproxy.admin_url().to_string()],
        &[format!("--config={}", config.display())],
    )
    .await;
    let client = haproxy.admin_client();
    let id = haproxy_drain::haproxy::ServerId::new(backend.as_str(), "app1");
    let name = app.name().to_string();
    for args in [
        vec!["drain", &name, "--wait", "--force"],
        vec!["ready", &name, "--wait"],
    ] {
        let output = tokio::task::block_in_place(|| daemon.cli(&args));
        assert!(
            output.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            daemon.log()
        );
    }
    let back = Instant::now();
    while back.elapsed() < RAMP + Duration::from_secs(2) {
        let weight = client.get_weight(&id).await.expect("get weight").current;
        let state = client.show_stat().await.expect("show stat");
        let row = state
            .iter()
            .find(|r| r.proxy == backend && r.name == "app1")
            .expect("row");
        assert!(
            row.status_text.starts_with("UP") && weight == WEIGHT,
            "{} at weight {weight} {:?} after ready\n{}",
            row.status_text,
            back.elapsed(),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = daemon.log();
    assert!(!log.contains("restore did not reach"), "{log}");
    drop(daemon);
    drop(haproxy);
    drop(app);
    drop(network);
}
