//! `drain` / `ready` through the real daemon: real Docker containers, a real HAProxy, the CLI
//! binary on the control socket.

use std::time::{Duration, Instant};

use crate::support::docker::IMAGE_HC;
use crate::support::roll::{get, World};
use crate::support::wait::wait_until;

/// Long requests through HAProxy; with round robin about half land on each of two servers.
fn long_requests(
    world: &World,
    count: usize,
    delay_ms: u64,
) -> Vec<tokio::task::JoinHandle<Result<String, String>>> {
    (0..count)
        .map(|_| {
            let frontend = world.frontend;
            let path = format!("/?delay_ms={delay_ms}");
            tokio::spawn(async move { get(frontend, &path).await })
        })
        .collect()
}

async fn wait_sessions_on_first(world: &World) {
    wait_until(
        Duration::from_secs(5),
        "long requests in flight on app1",
        || async { world.sessions(0).await >= 1 },
    )
    .await;
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_wait_returns_only_once_sessions_are_zero_and_times_out_with_the_count() {
    let world = World::start(2, IMAGE_HC, &[]).await;
    let name = world.name(0);

    // 1. `drain --wait` with long requests in flight on app1: returns after they finished.
    let in_flight = long_requests(&world, 4, 2500);
    wait_sessions_on_first(&world).await;
    let started = Instant::now();
    let output = blocking_cli(&world, &["drain", &name, "--wait", "--timeout", "20s"]).await;
    let waited = started.elapsed();
    // Read HAProxy right away: the sessions must already be 0 when the command returns.
    let sessions_at_return = world.sessions(0).await;
    assert!(
        output.status.success(),
        "drain failed: {}\n{}",
        text(&output.stderr),
        world.daemon.log()
    );
    assert_eq!(sessions_at_return, 0);
    assert!(
        waited >= Duration::from_millis(1000),
        "drain --wait returned after {waited:?}, before the 2.5 s requests could finish"
    );
    assert!(
        text(&output.stdout).contains("drained, 0 sessions"),
        "{}",
        text(&output.stdout)
    );
    for request in in_flight {
        let answer = request.await.expect("request task");
        assert!(
            answer.is_ok(),
            "a request in flight during the drain failed: {answer:?}"
        );
    }
    let (status, _) = world.status_and_weight(0).await;
    assert!(
        status == "DRAIN" || status == "MAINT",
        "app1 is {status} after the drain"
    );

    // 2. `ready --wait`: back in rotation at its original weight.
    let output = blocking_cli(&world, &["ready", &name, "--wait", "--timeout", "20s"]).await;
    assert!(
        output.status.success(),
        "ready failed: {}",
        text(&output.stderr)
    );
    let (status, weight) = world.status_and_weight(0).await;
    assert!(status.starts_with("UP"), "app1 is {status} after ready");
    assert_eq!(weight, crate::support::roll::WEIGHT);

    // 3. A drain whose timeout is shorter than the requests: non-zero, with the session count.
    let in_flight = long_requests(&world, 4, 4000);
    wait_sessions_on_first(&world).await;
    let output = blocking_cli(&world, &["drain", &name, "--wait", "--timeout", "500ms"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("session(s) still open"), "{stderr}");
    for request in in_flight {
        let _ = request.await;
    }
    let output = blocking_cli(&world, &["ready", &name, "--wait", "--timeout", "20s"]).await;
    assert!(
        output.status.success(),
        "ready failed: {}",
        text(&output.stderr)
    );
}

/// The CLI against the world's daemon, off the async worker (the tests run multi-threaded).
async fn blocking_cli(world: &World, args: &[&str]) -> std::process::Output {
    tokio::task::block_in_place(|| world.daemon.cli(args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_refuses_draining_the_last_ready_server() {
    let world = World::start(2, IMAGE_HC, &[]).await;
    let (first, second) = (world.name(0), world.name(1));

    let output = blocking_cli(&world, &["drain", &first, "--wait"]).await;
    assert!(
        output.status.success(),
        "first drain: {}",
        text(&output.stderr)
    );

    // `status` through the daemon: the container joined, and who holds the server out.
    let output = blocking_cli(&world, &["status"]).await;
    let table = text(&output.stdout);
    assert!(output.status.success(), "status: {}", text(&output.stderr));
    let row = table
        .lines()
        .find(|line| line.starts_with(first.as_str()))
        .unwrap_or_else(|| panic!("no row for {first}:\n{table}"));
    assert!(row.contains("haproxy-drain"), "{table}");
    let output = blocking_cli(&world, &["status", "--json"]).await;
    let views: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status JSON");
    let drained = views
        .as_array()
        .expect("an array")
        .iter()
        .find(|v| v["container"] == first.as_str())
        .expect("the drained container is listed");
    assert_eq!(drained["owner"], "haproxy-drain");
    assert_eq!(drained["weight"], crate::support::roll::WEIGHT);

    let output = blocking_cli(&world, &["drain", &second, "--wait"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("budget"), "{stderr}");
    let (status, weight) = world.status_and_weight(1).await;
    assert!(status.starts_with("UP"), "the refused server is {status}");
    assert_eq!(weight, crate::support::roll::WEIGHT);

    let output = blocking_cli(&world, &["ready", &first, "--wait", "--timeout", "20s"]).await;
    assert!(output.status.success(), "ready: {}", text(&output.stderr));
    // With both in rotation again, the second one may go.
    let output = blocking_cli(&world, &["drain", &second, "--wait"]).await;
    assert!(
        output.status.success(),
        "drain after ready: {}",
        text(&output.stderr)
    );
}
