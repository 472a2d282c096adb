//! The gate's purpose, measured: the docker CLI stopping an app that exits at once on SIGTERM,
//! through the gate (nothing lost) and straight at the engine (in-flight requests lost), under
//! load through a real HAProxy; then restart, kill and rm -f through the gate.

use std::time::{Duration, Instant};

use crate::gate_world::{assert_ok, docker_at, engine_host, gate_count, GateSocket};
use crate::support::docker::IMAGE_HC;
use crate::support::roll::{blocking, Load, World};
use crate::support::wait::wait_for;

/// Short requests for throughput and slow ones, so that every server has requests in flight
/// when it is stopped (HAProxy here has no retry-on: a cut request fails visibly).
const LOAD: [(usize, &str); 2] = [(3, "/?delay_ms=20"), (6, "/?delay_ms=400")];

async fn world(gate: &GateSocket) -> World {
    World::start_with(3, IMAGE_HC, &[("ON_SIGTERM", "exit")], &[], &[gate.flag()]).await
}

async fn wait_in_flight(world: &World, index: usize) {
    wait_for(
        Duration::from_secs(10),
        "requests in flight on the server",
        || async { (world.sessions(index).await > 0).then_some(()) },
    )
    .await;
}

/// `docker <args>` at `host`, off the async runtime (the load keeps running meanwhile).
async fn docker_off(host: String, args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_at(&host, &args)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_stop_through_the_gate_loses_nothing_and_straight_at_the_engine_loses_in_flight() {
    let gate = GateSocket::new();
    let world = world(&gate).await;
    let (first, second) = (world.name(0), world.name(1));

    let load = Load::start_mix(world.frontend, &LOAD);
    wait_in_flight(&world, 0).await;
    let started = Instant::now();
    let stop = docker_off(gate.host(), &["stop", &first]).await;
    let gated_took = started.elapsed();
    let gated = load.stop().await;
    assert_ok(&stop, "docker stop through the gate");

    assert_ok(
        &docker_off(gate.host(), &["start", &world.name(0)]).await,
        "docker start through the gate",
    );
    world.wait_all_in_rotation(Duration::from_secs(30)).await;

    let load = Load::start_mix(world.frontend, &LOAD);
    wait_in_flight(&world, 1).await;
    let started = Instant::now();
    let stop = docker_off(engine_host(), &["stop", &second]).await;
    let direct_took = started.elapsed();
    let direct = load.stop().await;
    assert_ok(&stop, "docker stop straight at the engine");

    eprintln!(
        "through the gate: {} ok, {} failed, stop took {gated_took:?}; straight at the engine: {} ok, {} failed {:?}, stop took {direct_took:?}",
        gated.ok, gated.failed, direct.ok, direct.failed, direct.errors
    );
    let log = world.daemon.log();
    assert_eq!(
        gated.failed, 0,
        "requests failed although the stop went through the gate: {gated:?}\n{log}"
    );
    assert!(gated.ok > 0, "{gated:?}");
    assert!(
        direct.failed > 0,
        "the stop straight at the engine was expected to cut in-flight requests: {direct:?}"
    );
    let metrics = world.daemon.metrics_text().await;
    assert_eq!(gate_count(&metrics, "stop", "drained"), 1.0, "{metrics}");
    assert!(
        log.contains("docker gate: drained before forwarding"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_kill_and_rm_f_through_the_gate_lose_nothing() {
    let gate = GateSocket::new();
    let world = world(&gate).await;
    let load = Load::start_mix(world.frontend, &LOAD);

    wait_in_flight(&world, 0).await;
    let out = docker_off(gate.host(), &["restart", &world.name(0)]).await;
    assert_ok(&out, "docker restart through the gate");
    world.wait_all_in_rotation(Duration::from_secs(30)).await;

    wait_in_flight(&world, 1).await;
    let out = docker_off(gate.host(), &["kill", &world.name(1)]).await;
    assert_ok(&out, "docker kill (default signal) through the gate");
    assert_ok(
        &docker_off(gate.host(), &["start", &world.name(1)]).await,
        "docker start through the gate",
    );
    world.wait_all_in_rotation(Duration::from_secs(30)).await;

    wait_in_flight(&world, 2).await;
    let out = docker_off(gate.host(), &["rm", "-f", &world.name(2)]).await;
    assert_ok(&out, "docker rm -f through the gate");
    let tally = load.stop().await;

    let log = world.daemon.log();
    assert_eq!(tally.failed, 0, "requests failed: {tally:?}\n{log}");
    assert!(tally.ok > 0, "{tally:?}");
    let metrics = world.daemon.metrics_text().await;
    for kind in ["restart", "kill", "remove"] {
        assert_eq!(
            gate_count(&metrics, kind, "drained"),
            1.0,
            "{kind} was not drained first:\n{metrics}"
        );
    }
}
