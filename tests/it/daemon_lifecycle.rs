//! `haproxy-drain run` against real Docker and a real HAProxy, under load: every way a container
//! goes away and comes back. HAProxy settings used: `retries 3`, `option redispatch 1`,
//! `retry-on all-retryable-errors`, `timeout connect 500ms`, checks `inter 500ms fall 2 rise 2`.

use std::time::Duration;

use haproxy_drain::haproxy::AdminState;

use crate::support::load::Load;
use crate::support::stack::{Stack, StackOptions, WEIGHT};

const LOAD_PATH: &str = "/?delay_ms=5";

async fn load_on(stack: &Stack) -> Load {
    let load = Load::start(stack.frontend, 8, LOAD_PATH);
    crate::support::wait::wait_until(Duration::from_secs(10), "load flowing", || {
        let ok = load.ok();
        async move { ok > 50 }
    })
    .await;
    load
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_restart_under_load_loses_no_request() {
    let stack = Stack::start(StackOptions::default()).await;
    let load = load_on(&stack).await;
    stack.apps[1].restart(10);
    stack.wait_in_rotation(2).await;
    let report = load.stop().await;
    eprintln!("docker restart: {report:?}");
    assert!(
        stack
            .daemon
            .log()
            .contains(&format!("drain finished server={}", stack.server(2))),
        "the restart went through a drain"
    );
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
    assert!(report.ok > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_stop_then_start_under_load_loses_no_request() {
    let stack = Stack::start(StackOptions::default()).await;
    let load = load_on(&stack).await;
    stack.apps[0].stop(10);
    stack.wait_admin(1, AdminState::Maint).await;
    stack.apps[0].start();
    let state = stack.wait_in_rotation(1).await;
    let report = load.stop().await;
    eprintln!("docker stop/start: {report:?}");
    assert_eq!(state.weight, WEIGHT);
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_kill_under_load_goes_to_maint_at_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let load = load_on(&stack).await;
    stack.apps[2].kill("KILL");
    // HAProxy's own checks would need fall × inter (1 s here); the event path is much faster.
    stack.wait_admin(3, AdminState::Maint).await;
    stack.apps[2].start();
    stack.wait_in_rotation(3).await;
    let report = load.stop().await;
    eprintln!("docker kill: {report:?}");
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_restart_always_is_taken_out_and_restored() {
    let stack = Stack::start(StackOptions {
        restart: Some("always"),
        ..StackOptions::default()
    })
    .await;
    let load = load_on(&stack).await;
    let before = stack.apps[0].id.clone();
    // The app exits with code 3 on its own: a crash, then Docker's restart policy.
    let url = format!("{}/exit?code=3", stack.apps[0].base_url());
    let _ = std::process::Command::new("curl")
        .args(["-s", "-m", "2", &url])
        .output();
    crate::support::wait::wait_until(Duration::from_secs(20), "the crash to be seen", || {
        let log = stack.daemon.log();
        let server = stack.server(1).to_string();
        async move {
            log.lines()
                .any(|l| l.contains("why=Died") && l.contains(&server))
        }
    })
    .await;
    stack.wait_in_rotation(1).await;
    let report = load.stop().await;
    eprintln!("crash + restart policy: {report:?}");
    assert_eq!(
        stack.apps[0].id, before,
        "same container, restarted by Docker"
    );
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_gets_the_new_address_and_the_original_weight() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let old_ip = stack.apps[1].ip().expect("ip");
    let load = load_on(&stack).await;
    // Another container takes the freed address first, as happens on a busy host.
    stack.apps[1].remove();
    let _filler = crate::support::docker::ContainerSpec::new("filler")
        .image(crate::support::docker::IMAGE_NOHC)
        .network(&stack.network)
        .run();
    stack.apps[1].recreate();
    let new_ip = stack.apps[1].ip().expect("new ip");
    let state = stack
        .wait_state(2, "address of the new container, in rotation", |s| {
            s.addr == new_ip.to_string()
                && s.admin.as_admin_state() == AdminState::Ready
                && s.op_state == haproxy_drain::haproxy::OpState::Running
        })
        .await;
    let report = load.stop().await;
    eprintln!("recreate {old_ip} -> {new_ip}: {report:?}");
    assert_ne!(old_ip, new_ip, "Docker allocated a new address");
    assert_eq!(state.weight, WEIGHT, "original weight, not a hard-coded 1");
    assert_eq!(state.port, Some(8080));
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_maint_survives_restarts() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    client
        .set_state(&stack.server(2), AdminState::Maint)
        .await
        .expect("operator sets maint");
    stack.apps[1].restart(10);
    stack.apps[1].stop(10);
    stack.apps[1].start();
    // Wait until haproxy-drain has handled both starts, then watch: it must never leave MAINT.
    let name = stack.apps[1].name().to_string();
    crate::support::wait::wait_until(
        Duration::from_secs(20),
        "the daemon to see both starts",
        || {
            let starts = stack
                .daemon
                .log()
                .lines()
                .filter(|l| {
                    l.contains("docker event")
                        && l.contains(&name)
                        && l.contains("action=\"start\"")
                })
                .count();
            async move { starts >= 2 }
        },
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let state = stack.state(2).await.expect("server state");
        assert_eq!(
            state.admin.as_admin_state(),
            AdminState::Maint,
            "operator's MAINT kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !std::fs::read_to_string(stack.daemon.state_file())
            .unwrap_or_default()
            .contains("app2"),
        "never owned by haproxy-drain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_drains_and_healthy_again_restores() {
    let stack = Stack::start(StackOptions {
        image: crate::support::docker::IMAGE_HC,
        ..StackOptions::default()
    })
    .await;
    stack.apps[0].wait_healthy(Duration::from_secs(20));
    let base = stack.apps[0].base_url();
    let curl = |path: &str| {
        let url = format!("{base}{path}");
        std::process::Command::new("curl")
            .args(["-sf", "-m", "2", &url])
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(curl("/health/fail"));
    // Docker reports `health_status: unhealthy`; haproxy-drain drains, then holds it in MAINT.
    stack.wait_admin(1, AdminState::Maint).await;
    assert!(curl("/health/ok"));
    let state = stack.wait_in_rotation(1).await;
    assert_eq!(state.weight, WEIGHT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_cleanly() {
    let mut stack = Stack::start(StackOptions {
        apps: 1,
        ..StackOptions::default()
    })
    .await;
    let socket = stack.daemon.control_socket();
    assert!(socket.exists());
    let started = std::time::Instant::now();
    let code = stack.daemon.terminate();
    assert_eq!(code, Some(0), "clean exit on SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "prompt: {:?}",
        started.elapsed()
    );
    assert!(!socket.exists(), "control socket removed");
    // HAProxy is left as it was: in rotation.
    assert_eq!(
        stack.state(1).await.expect("state").admin.as_admin_state(),
        AdminState::Ready
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_stop_signal_starts_the_drain() {
    let mut stack = Stack::start(StackOptions {
        apps: 2,
        stop_signal: Some("SIGUSR1"),
        ..StackOptions::default()
    })
    .await;
    // A new container (new ID): the daemon learns it from its `start` event only.
    stack.apps[0].recreate();
    stack.wait_in_rotation(1).await;
    let load = load_on(&stack).await;
    stack.apps[0].stop(10);
    stack.wait_admin(1, AdminState::Maint).await;
    let report = load.stop().await;
    let server = stack.server(1).to_string();
    // One drain for the `rm -f` of the recreate (SIGKILL), one for the `docker stop` (SIGUSR1).
    let drains = stack
        .daemon
        .log()
        .lines()
        .filter(|l| l.contains(&server) && l.contains("to=\"draining\"") && l.contains("Stopping"))
        .count();
    assert_eq!(
        drains, 2,
        "the kill with SIGUSR1 started a drain, not the die"
    );
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_counts_a_down_server_as_out() {
    let stack = Stack::start(StackOptions {
        apps: 2,
        ..StackOptions::default()
    })
    .await;
    // app2 hangs: HAProxy's checks mark it DOWN, but nothing took it out of rotation.
    stack.apps[1].pause();
    stack
        .wait_state(2, "DOWN by HAProxy's checks", |s| {
            s.op_state == haproxy_drain::haproxy::OpState::Stopped
        })
        .await;
    let target = stack.server(1).to_string();
    let output = tokio::task::block_in_place(|| stack.daemon.cli(&["drain", &target]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "refused: {stderr}");
    assert!(stderr.contains("budget"), "{stderr}");
    assert_eq!(
        stack.state(1).await.expect("state").admin.as_admin_state(),
        AdminState::Ready,
        "the last working server stays in rotation"
    );
    stack.apps[1].unpause();
}
