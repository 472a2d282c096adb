//! The stop rule against the real engine: a container asked to stop is not put back in rotation
//! by the reconciliations that land while it shuts down; one that ignores a lone stop signal is
//! held for its stop timeout plus the drain timeout, then restored and counted.

use std::time::{Duration, Instant};

use haproxy_drain::haproxy::{AdminState, ServerState};

use crate::support::docker::docker_ok;
use crate::support::stack::{Stack, StackOptions};

fn in_rotation(state: &ServerState) -> bool {
    state.admin.as_admin_state() == AdminState::Ready && state.weight > 0
}

/// A config whose reconciliation runs every 200 ms, so several land during any shutdown.
fn fast_reconcile(extra: &str) -> tempfile::NamedTempFile {
    let config = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(
        config.path(),
        format!("reconcile_interval = \"200ms\"\n{extra}"),
    )
    .expect("write config");
    config
}

/// PID 1 ignores a signal it has no handler for: with SIGHUP as the stop signal, the test app
/// serves on until Docker's SIGKILL, like any app with a long graceful shutdown.
async fn stack_ignoring_its_stop_signal(config: &tempfile::NamedTempFile) -> Stack {
    Stack::start(StackOptions {
        apps: 2,
        stop_signal: Some("SIGHUP"),
        stop_timeout: Some(2),
        daemon_flags: vec![format!("--config={}", config.path().display())],
        ..StackOptions::default()
    })
    .await
}

/// Samples server 2 every 20 ms while `busy` is true and fails on any moment in rotation.
async fn never_in_rotation_while(stack: &Stack, what: &str, busy: impl Fn() -> bool) -> usize {
    let started = Instant::now();
    let mut samples = 0;
    while busy() {
        let state = stack.state(2).await.expect("server state");
        assert!(
            !in_rotation(&state),
            "back in rotation {:?} into {what}: {state:?}\n{}",
            started.elapsed(),
            stack.daemon.log()
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliations_during_a_slow_shutdown_keep_the_server_out() {
    let config = fast_reconcile("");
    let stack = stack_ignoring_its_stop_signal(&config).await;
    let app = stack.apps[1].id.clone();
    let stop = tokio::task::spawn_blocking(move || {
        docker_ok(&["stop", "-t", "3", &app]);
    });
    stack.wait_state(2, "drained", |s| !in_rotation(s)).await;
    let samples = never_in_rotation_while(&stack, "a 3 s shutdown", || !stop.is_finished()).await;
    stop.await.expect("docker stop ran");
    assert!(
        samples > 50,
        "sampled the whole shutdown ({samples} samples)"
    );
    stack.wait_admin(2, AdminState::Maint).await;
    stack.apps[1].start();
    stack.wait_in_rotation(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignored_stop_signal_is_held_then_restored_and_counted() {
    // Hold: the container's stop timeout (2 s) + the drain timeout (1 s).
    let config = fast_reconcile("[defaults]\ndrain_timeout = \"1s\"\n");
    let stack = stack_ignoring_its_stop_signal(&config).await;
    let killed = Instant::now();
    stack.apps[1].kill("HUP");
    stack.wait_state(2, "drained", |s| !in_rotation(s)).await;
    let samples = never_in_rotation_while(&stack, "the hold", || {
        killed.elapsed() < Duration::from_millis(2_800)
    })
    .await;
    assert!(samples > 10, "sampled the hold ({samples} samples)");
    stack.wait_in_rotation(2).await;
    let back_after = killed.elapsed();
    assert!(
        back_after >= Duration::from_secs(3),
        "restored after {back_after:?}, before the hold ended"
    );
    assert!(
        stack.apps[1].status().contains("running"),
        "it never stopped"
    );
    let counted = format!(
        "haproxy_drain_stops_ignored_total{{proxy=\"{}\",server=\"app2\"}} 1",
        stack.backend
    );
    let metrics = stack.daemon.metrics_text().await;
    assert!(metrics.contains(&counted), "{counted} in:\n{metrics}");
    assert!(stack.daemon.log().contains("ignored the signal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_restart_or_a_haproxy_reload_mid_shutdown_keeps_the_server_out() {
    let config = fast_reconcile("");
    let mut stack = stack_ignoring_its_stop_signal(&config).await;
    for fault in ["sidecar SIGKILL + restart", "HAProxy reload"] {
        let app = stack.apps[1].id.clone();
        // Long enough that the rest of the shutdown outlasts the fault even on a busy machine.
        let stop = tokio::task::spawn_blocking(move || {
            docker_ok(&["stop", "-t", "8", &app]);
        });
        stack.wait_state(2, "drained", |s| !in_rotation(s)).await;
        if fault.starts_with("sidecar") {
            stack.daemon.kill_hard();
            stack.daemon.restart().await;
        } else {
            // A reload resets every server to the config (in rotation) until the sidecar
            // notices: within a reload poll and one reconciliation it is out again.
            stack.haproxy.reload().await;
            stack
                .wait_state(2, "out again after the reload", |s| !in_rotation(s))
                .await;
        }
        let samples =
            never_in_rotation_while(&stack, &format!("a shutdown after a {fault}"), || {
                !stop.is_finished()
            })
            .await;
        stop.await.expect("docker stop ran");
        assert!(
            samples > 20,
            "{fault}: sampled the rest of the shutdown ({samples})"
        );
        stack.wait_admin(2, AdminState::Maint).await;
        stack.apps[1].start();
        stack.wait_in_rotation(2).await;
    }
}
