//! haproxy-drain losing things and getting them back: its own SIGKILL mid-drain, a HAProxy
//! reload that wipes runtime state, and a Docker event stream cut while a container dies.

use std::time::{Duration, Instant};

use haproxy_drain::haproxy::{AdminState, OpState};

use crate::support::proxy::SocketProxy;
use crate::support::stack::{Stack, StackOptions};
use crate::support::wait::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_drain_then_restart_restores_the_server() {
    let mut stack = Stack::start(StackOptions::default()).await;
    // Long requests keep sessions open on every server, so the drain is still waiting.
    let slow = crate::support::load::Load::start(stack.frontend, 6, "/?delay_ms=3000");
    wait_until(Duration::from_secs(10), "sessions on app1", || {
        let client = stack.client();
        let server = stack.server(1);
        async move {
            let rows = client.show_stat().await.unwrap_or_default();
            rows.iter()
                .any(|r| r.proxy == server.backend && r.name == server.server && r.sessions > 0)
        }
    })
    .await;
    let id = stack.apps[0].id.clone();
    let stopper =
        std::thread::spawn(move || crate::support::docker::docker_ok(&["stop", "-t", "10", &id]));
    stack.wait_admin(1, AdminState::Drain).await;
    stack.daemon.kill_hard();
    let record = std::fs::read_to_string(stack.daemon.state_file())
        .expect("state file written before the change");
    assert!(record.contains("app1"), "ownership recorded: {record}");
    stopper.join().expect("docker stop");
    stack.apps[0].start();
    // Nobody is watching now: the server is still out of rotation.
    assert_ne!(
        stack.state(1).await.expect("state").admin.as_admin_state(),
        AdminState::Ready
    );
    stack.daemon.restart().await;
    let state = stack.wait_in_rotation(1).await;
    let report = slow.stop().await;
    eprintln!("slow load across the crash: {report:?}");
    assert_eq!(state.weight, crate::support::stack::WEIGHT);
    for i in 1..=3 {
        stack.wait_in_rotation(i).await;
    }
    wait_until(
        Duration::from_secs(5),
        "the ownership record to be cleared",
        || {
            let text = std::fs::read_to_string(stack.daemon.state_file()).unwrap_or_default();
            async move { !text.contains("app1") }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_reload_while_stopped_puts_the_server_back_in_maint_within_a_second() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.apps[2].stop(10);
    stack.wait_admin(3, AdminState::Maint).await;
    let old_pid = stack.client().show_info().await.expect("show info").pid;
    unsafe {
        libc::kill(stack.haproxy.master_pid() as i32, libc::SIGUSR2);
    }
    // The new worker starts from the config: app3 back to READY, until haproxy-drain notices.
    let client = stack.client();
    let reloaded =
        crate::support::wait::wait_for(Duration::from_secs(10), "a new HAProxy worker", || {
            let client = client.clone();
            async move {
                client
                    .show_info()
                    .await
                    .ok()
                    .filter(|i| i.pid != old_pid && !i.stopping)
            }
        })
        .await;
    let since = Instant::now();
    stack.wait_admin(3, AdminState::Maint).await;
    let took = since.elapsed();
    eprintln!(
        "reload (pid {old_pid} -> {}) corrected in {took:?}",
        reloaded.pid
    );
    assert!(
        took < Duration::from_secs(1),
        "back in MAINT {took:?} after the reload"
    );
    // The others are untouched and serving.
    for i in 1..=2 {
        let state = stack.state(i).await.expect("state");
        assert_eq!(state.admin.as_admin_state(), AdminState::Ready);
    }
    assert!(stack
        .daemon
        .metrics_text()
        .await
        .contains("haproxy_drain_reloads_detected_total 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_event_stream_cut_while_a_container_dies() {
    let proxy = SocketProxy::start();
    let config = tempfile::NamedTempFile::new().expect("config file");
    // A long periodic reconcile: what must bring the server to MAINT here is the reconnect.
    std::fs::write(config.path(), "reconcile_interval = \"10m\"\n").expect("write config");
    let stack = Stack::start(StackOptions {
        daemon_flags: vec![format!("--config={}", config.path().display())],
        daemon_env: vec![("DOCKER_HOST", proxy.url())],
        ..StackOptions::default()
    })
    .await;
    proxy.pause();
    let cut = proxy.cut_all();
    assert!(cut >= 1, "the event stream was live through the proxy");
    stack.apps[1].kill("KILL");
    // Disconnected: HAProxy still has it in rotation (its checks may mark it DOWN, but not MAINT).
    let state = stack.state(2).await.expect("state");
    assert_ne!(state.admin.as_admin_state(), AdminState::Maint);
    proxy.resume();
    let state = stack.wait_admin(2, AdminState::Maint).await;
    assert_ne!(
        state.op_state,
        OpState::Running,
        "a dead container's server does not run"
    );
    assert!(stack.daemon.log().contains("Docker event stream lost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_cannot_reach_haproxy_is_retried_when_it_is_back() {
    use crate::support::docker::{unique_name, ContainerSpec, TestNetwork, APP_PORT, IMAGE_NOHC};
    use crate::support::haproxy::HaproxyFixture;

    let network = TestNetwork::create();
    let backend = unique_name("flaky").replace('-', "_");
    let app = ContainerSpec::new("flaky")
        .image(IMAGE_NOHC)
        .network(&network)
        .label("haproxy-drain.backend", &backend)
        .label("haproxy-drain.server", "app1")
        .run();
    // No HAProxy checks: the restore follows the probe at once, while HAProxy is unreachable.
    let haproxy = HaproxyFixture::start(&format!(
        "backend {backend}\n    server app1 {}:{APP_PORT} weight 30\n",
        app.ip().expect("ip")
    ))
    .await;
    let proxy = SocketProxy::start_to(&haproxy.admin_socket());
    let daemon = crate::support::daemon::Daemon::start(&[proxy.url()], &[]).await;
    let id = haproxy_drain::haproxy::ServerId::new(backend.clone(), "app1");
    let admin = |want: AdminState| {
        let client = haproxy.admin_client();
        let id = id.clone();
        async move {
            crate::support::wait::server_state(&client, &id)
                .await
                .is_some_and(|s| s.admin.as_admin_state() == want && s.weight == 30)
        }
    };
    app.stop(5);
    wait_until(Duration::from_secs(20), "app1 in MAINT", || {
        admin(AdminState::Maint)
    })
    .await;
    proxy.pause();
    app.start();
    wait_until(
        Duration::from_secs(20),
        "a restore attempt that failed",
        || {
            let log = daemon.log();
            async move { log.contains("restore did not reach every HAProxy") }
        },
    )
    .await;
    assert!(
        admin(AdminState::Maint).await,
        "still out: HAProxy never heard the restore"
    );
    proxy.resume();
    wait_until(
        Duration::from_secs(20),
        "app1 restored once HAProxy answers",
        || admin(AdminState::Ready),
    )
    .await;
}
