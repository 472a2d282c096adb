//! `roll --watch` onto a bad release (`testapp:bad`: healthy, but half of its app requests answer
//! 500), under load through a real HAProxy: the post-restore watch drains the first container's
//! server and marks it failed, the roll stops with a non-zero exit naming the server, and the
//! other containers are untouched; with `--rollback-on-failure` the first container runs its
//! previous image again and is back in rotation.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::docker::{IMAGE_BAD, IMAGE_HC};
use crate::support::roll::{Load, World, WEIGHT};

/// Three servers watched for 5 s after each restore (the daemon's window and the roll's).
async fn world() -> World {
    World::start_with(3, IMAGE_HC, &[], &[("haproxy-drain.watch", "5s")], &[]).await
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Containers 2 and 3: same container, old image, in rotation at full weight.
async fn untouched(world: &World, ids: &[String], details: &str) {
    for (index, id) in ids.iter().enumerate().skip(1) {
        assert_eq!(
            &world.inspect(index, "{{.Id}}"),
            id,
            "app{} was touched\n{details}",
            index + 1
        );
        assert_eq!(world.inspect(index, "{{.Config.Image}}"), IMAGE_HC);
        let (status, weight) = world.status_and_weight(index).await;
        assert!(status.starts_with("UP"), "app{} is {status}", index + 1);
        assert_eq!(weight, WEIGHT);
    }
}

async fn phase_of_app1(world: &World) -> String {
    let views = world.daemon.client().servers().await.expect("status");
    views
        .into_iter()
        .find(|v| v.server == "app1")
        .map(|v| v.phase)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_release_is_drained_and_stops_the_roll_at_the_first_container() {
    let world = world().await;
    let ids: Vec<String> = (0..3).map(|i| world.inspect(i, "{{.Id}}")).collect();
    let load = Load::start(world.frontend, 4, "/?delay_ms=5");
    let started = Instant::now();
    let output = world
        .roll_cli(&["--image", IMAGE_BAD, "--watch", "5s", "--timeout", "30s"])
        .await;
    let roll_took = started.elapsed();
    let tally = load.stop().await;
    let details = format!(
        "{}\nload: {tally:?}\ndaemon log:\n{}",
        text(&output),
        world.daemon.log()
    );
    assert!(!output.status.success(), "the roll succeeded:\n{details}");
    let server = format!("{}/app1", world.backend);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&server) && stderr.contains("post-restore watch"),
        "the error names the server:\n{details}"
    );
    assert!(stderr.contains("not touched"), "{details}");
    // The bad container was recreated, then taken out again: failed, in MAINT.
    assert_eq!(world.inspect(0, "{{.Config.Image}}"), IMAGE_BAD);
    let (status, _) = world.status_and_weight(0).await;
    assert!(status.starts_with("MAINT"), "app1 is {status}\n{details}");
    assert_eq!(phase_of_app1(&world).await, "failed");
    assert!(
        world.daemon.log().contains("clearly worse than its peers"),
        "one log line says why:\n{details}"
    );
    untouched(&world, &ids, &details).await;
    // A reconciliation does not bring it back (the daemon reconciles every 10 s by default).
    let metrics = reqwest_metrics(&world).await;
    assert!(
        metrics.lines().any(|l| l.contains("trigger=\"watch\"")
            && l.contains("app1")
            && l.starts_with("haproxy_drain_drains_started_total")
            && l.ends_with(" 1")),
        "the watch's drain is counted:\n{metrics}"
    );
    let log = world.daemon.log();
    let why = log
        .lines()
        .find(|l| l.contains("clearly worse"))
        .unwrap_or("");
    eprintln!(
        "watch: roll failed after {roll_took:?}; load ok {} failed {}; {why}",
        tally.ok, tally.failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_on_failure_puts_the_previous_image_back_in_rotation() {
    let world = world().await;
    let ids: Vec<String> = (0..3).map(|i| world.inspect(i, "{{.Id}}")).collect();
    let old_image = world.inspect(0, "{{.Image}}");
    let load = Load::start(world.frontend, 4, "/?delay_ms=5");
    let output = world
        .roll_cli(&[
            "--image",
            IMAGE_BAD,
            "--watch",
            "5s",
            "--rollback-on-failure",
            "--timeout",
            "30s",
        ])
        .await;
    let tally = load.stop().await;
    let details = format!(
        "{}\nload: {tally:?}\ndaemon log:\n{}",
        text(&output),
        world.daemon.log()
    );
    assert!(!output.status.success(), "the roll succeeded:\n{details}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}/app1", world.backend)) && stderr.contains("rolled back"),
        "{details}"
    );
    // Back on the image it ran before, with none of the bad image's environment.
    assert_eq!(world.inspect(0, "{{.Image}}"), old_image, "{details}");
    let env = world.inspect(0, "{{json .Config.Env}}");
    assert!(!env.contains("FAIL_PERCENT"), "{env}");
    assert_ne!(world.inspect(0, "{{.Id}}"), ids[0]);
    // In rotation again, at its weight, and no longer failed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, weight) = world.status_and_weight(0).await;
        let phase = phase_of_app1(&world).await;
        if status.starts_with("UP") && weight == WEIGHT && phase == "in_rotation" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "app1 is {status} at {weight}, {phase}\n{details}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    untouched(&world, &ids, &details).await;
}

/// The daemon's `/metrics` text.
async fn reqwest_metrics(world: &World) -> String {
    crate::support::roll::get(world.daemon.metrics, "/metrics")
        .await
        .unwrap_or_else(|e| format!("no metrics: {e}"))
}
