//! `haproxy-drain roll` end to end, under continuous load through HAProxy.

use std::process::Output;
use std::sync::Mutex;

use crate::support::docker::{ensure_test_images, IMAGE_HC, IMAGE_V2};
use crate::support::roll::{blocking, Load, Tally, World, WEIGHT};

/// testapp whose `/health` answers 500: its Docker healthcheck never passes.
pub const IMAGE_UNHEALTHY: &str = "haproxy-drain-testapp:roll-unhealthy";
/// Short requests for throughput, and long ones so that every drain has sessions to wait for:
/// were the container stopped before they finished, an app that exits at once would fail them.
const LOAD: [(usize, &str); 2] = [(4, "/?delay_ms=20"), (3, "/?delay_ms=300")];

pub fn ensure_unhealthy_image() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if *built {
        return;
    }
    ensure_test_images();
    let dockerfile = format!("FROM {IMAGE_HC}\nENV FAIL_HEALTH=1 APP_VERSION=broken\n");
    let mut child = std::process::Command::new("docker")
        .args(["build", "--quiet", "-t", IMAGE_UNHEALTHY, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker build runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(dockerfile.as_bytes())
            .expect("write Dockerfile");
    }
    let output = child.wait_with_output().expect("docker build finishes");
    assert!(
        output.status.success(),
        "building {IMAGE_UNHEALTHY}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    *built = true;
}

async fn roll(world: &World, extra: &[&str]) -> Output {
    let names = world.names();
    let mut args: Vec<&str> = vec!["roll"];
    args.extend(names.iter().map(String::as_str));
    args.extend(extra);
    tokio::task::block_in_place(|| world.daemon.cli(&args))
}

fn ids(world: &World) -> Vec<String> {
    (0..world.containers.len())
        .map(|i| world.inspect(i, "{{.Id}}"))
        .collect()
}

fn report(output: &Output, tally: &Tally, world: &World) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\nload: {tally:?}\ndaemon log (tail):\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        tail(&world.daemon.log(), 60)
    )
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every container recreated from v2 with its own settings kept, every server back at weight 10
/// on the container's current address, and not one request lost.
async fn roll_to_v2_under_load(on_sigterm: &str) {
    let world = World::start(3, IMAGE_HC, &[("ON_SIGTERM", on_sigterm)]).await;
    let before = ids(&world);
    let load = Load::start_mix(world.frontend, &LOAD);
    let output = roll(&world, &["--image", IMAGE_V2, "--timeout", "30s"]).await;
    let tally = load.stop().await;
    let details = report(&output, &tally, &world);
    assert!(output.status.success(), "roll failed:\n{details}");
    assert_eq!(
        tally.failed, 0,
        "requests failed during the roll:\n{details}"
    );
    assert!(
        tally.versions.get("v1").is_some_and(|n| *n > 0),
        "{details}"
    );
    assert!(
        tally.versions.get("v2").is_some_and(|n| *n > 0),
        "{details}"
    );

    let after = ids(&world);
    for index in 0..3 {
        assert_ne!(
            before[index], after[index],
            "container {index} was not recreated"
        );
        assert_eq!(world.inspect(index, "{{.Config.Image}}"), IMAGE_V2);
        let env = world.inspect(index, "{{json .Config.Env}}");
        // The old image's APP_VERSION=v1 must not have been carried over as a user setting.
        assert!(env.contains("\"APP_VERSION=v2\""), "{env}");
        assert!(!env.contains("APP_VERSION=v1"), "{env}");
        assert!(
            env.contains(&format!("\"ON_SIGTERM={on_sigterm}\"")),
            "{env}"
        );
        let labels = world.inspect(index, "{{json .Config.Labels}}");
        assert!(labels.contains("\"testapp.version\":\"v2\""), "{labels}");
        assert!(
            labels.contains("\"haproxy-drain.server\":\"app"),
            "{labels}"
        );

        let (status, weight) = world.status_and_weight(index).await;
        assert!(
            status.starts_with("UP"),
            "app{} is {status}\n{details}",
            index + 1
        );
        assert_eq!(weight, WEIGHT, "app{} weight", index + 1);
        let ip = world.container_ip(index);
        assert_eq!(
            world.haproxy_addr(index).await,
            ip,
            "HAProxy has the recreated container's address"
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("succeeded: 3 container(s)"), "{stdout}");
    for step in ["drain", "stop", "recreate", "start", "ready"] {
        let done = stdout
            .lines()
            .filter(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                columns.get(2) == Some(&step) && columns.get(3) == Some(&"ok")
            })
            .count();
        assert_eq!(done, 3, "{step} lines:\n{stdout}");
    }
    // The long requests were in flight when the drains began: at least one drain waited.
    let longest_drain_ms = stdout
        .lines()
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            (columns.get(2) == Some(&"drain")).then(|| columns.get(4).copied().and_then(millis))?
        })
        .max()
        .unwrap_or(0);
    assert!(
        longest_drain_ms >= 50,
        "no drain waited for sessions:\n{stdout}"
    );
}

/// `250ms` / `1.25s` (the CLI's elapsed column) in milliseconds.
fn millis(text: &str) -> Option<u64> {
    match text.strip_suffix("ms") {
        Some(ms) => ms.parse().ok(),
        None => text
            .strip_suffix('s')?
            .parse::<f64>()
            .ok()
            .map(|s| (s * 1000.0) as u64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_to_a_new_image_loses_no_request_when_the_app_finishes_in_flight_work() {
    roll_to_v2_under_load("graceful").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_to_a_new_image_loses_no_request_when_the_app_exits_at_once() {
    roll_to_v2_under_load("exit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_to_an_image_that_never_gets_healthy_stops_after_the_first() {
    blocking(ensure_unhealthy_image).await;
    let world = World::start(3, IMAGE_HC, &[]).await;
    let before = ids(&world);
    let load = Load::start_mix(world.frontend, &LOAD);
    let output = roll(&world, &["--image", IMAGE_UNHEALTHY, "--timeout", "6s"]).await;
    let tally = load.stop().await;
    let details = report(&output, &tally, &world);
    assert_eq!(output.status.code(), Some(1), "{details}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (second, third) = (world.name(1), world.name(2));
    assert!(
        stderr.contains(&format!("{}: ready failed", world.name(0))),
        "{details}"
    );
    assert!(
        stderr.contains(&format!("not touched: {second}, {third}")),
        "{details}"
    );
    assert_eq!(tally.failed, 0, "requests failed:\n{details}");

    // The first runs the bad image and is out of rotation.
    assert_eq!(world.inspect(0, "{{.Config.Image}}"), IMAGE_UNHEALTHY);
    let (status, _) = world.status_and_weight(0).await;
    assert!(
        !status.starts_with("UP"),
        "the unhealthy server is {status}\n{details}"
    );
    // The other two are untouched and in rotation.
    let after = ids(&world);
    for index in 1..3 {
        assert_eq!(before[index], after[index], "container {index} was touched");
        assert_eq!(world.inspect(index, "{{.Config.Image}}"), IMAGE_HC);
        let (status, weight) = world.status_and_weight(index).await;
        assert!(status.starts_with("UP"), "app{} is {status}", index + 1);
        assert_eq!(weight, WEIGHT);
    }
}
