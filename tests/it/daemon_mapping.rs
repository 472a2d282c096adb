//! How containers find their servers: rules from the config file, dynamic servers, bad labels,
//! several HAProxies, and signals that are not a stop.

use std::time::Duration;

use haproxy_drain::haproxy::{AdminState, OpState, ServerState};

use crate::support::daemon::Daemon;
use crate::support::docker::{unique_name, ContainerSpec, TestNetwork, APP_PORT, IMAGE_NOHC};
use crate::support::haproxy::{free_loopback_port, HaproxyFixture};
use crate::support::load::Load;
use crate::support::stack::{Stack, StackOptions};
use crate::support::wait::{server_state, wait_server};
use crate::support::wait::{wait_for, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hup_is_not_a_stop() {
    let stack = Stack::start(StackOptions::default()).await;
    let name = stack.apps[0].name().to_string();
    stack.apps[0].kill("HUP");
    wait_until(Duration::from_secs(10), "the daemon to see the HUP", || {
        let log = stack.daemon.log();
        let name = name.clone();
        async move {
            log.lines()
                .any(|l| l.contains("docker event") && l.contains(&name) && l.contains("kill"))
        }
    })
    .await;
    // A stop would have reached HAProxy within milliseconds; watch well past that.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        let state = stack.state(1).await.expect("state");
        assert_eq!(
            state.admin.as_admin_state(),
            AdminState::Ready,
            "HUP left it in rotation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_dynamic_servers_and_bad_labels() {
    let network = TestNetwork::create();
    let backend = unique_name("rules").replace('-', "_");
    let prefix = unique_name("px");
    // One static server for the first container; the second has no server and is added at run time.
    let first = ContainerSpec::new("unused")
        .image(IMAGE_NOHC)
        .network(&network);
    let first = ContainerSpec {
        name: format!("{prefix}_1"),
        ..first
    }
    .run();
    let port = free_loopback_port();
    let haproxy = HaproxyFixture::start(&format!(
        "backend {backend}\n    balance roundrobin\n    option httpchk GET /health\n    \
         default-server inter 500ms fall 2 rise 2\n    server app_1 {}:{APP_PORT} check weight 5\n\
         frontend fe_{backend}\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n",
        first.ip().expect("ip")
    ))
    .await;
    let config = tempfile::NamedTempFile::new().expect("config");
    std::fs::write(
        config.path(),
        format!(
            "[[rules]]\nmatch = \"{prefix}_*\"\nbackend = \"{backend}\"\nserver = \"app_{{number}}\"\nport = {APP_PORT}\n\
             [defaults]\ndynamic_weight = 9\n"
        ),
    )
    .expect("write config");
    let daemon = Daemon::start(
        &[haproxy.admin_url().to_string()],
        &[format!("--config={}", config.path().display())],
    )
    .await;
    let client = haproxy.admin_client();
    let server =
        |n: u32| haproxy_drain::haproxy::ServerId::new(backend.clone(), format!("app_{n}"));
    let state = |n: u32| {
        let client = client.clone();
        let id = server(n);
        async move { server_state(&client, &id).await }
    };

    // A rule maps `<prefix>_1` to app_1: a stop goes through haproxy-drain.
    first.stop(5);
    wait_for(
        Duration::from_secs(20),
        "app_1 in MAINT via the rule",
        || {
            let s = state(1);
            async move {
                s.await
                    .filter(|s| s.admin.as_admin_state() == AdminState::Maint)
            }
        },
    )
    .await;
    first.start();

    // A container the config has no server for: added dynamically, gated, in rotation.
    let second = ContainerSpec {
        name: format!("{prefix}_2"),
        ..ContainerSpec::new("unused")
            .image(IMAGE_NOHC)
            .network(&network)
    }
    .run();
    let added = wait_for(
        Duration::from_secs(20),
        "app_2 added and in rotation",
        || {
            let s = state(2);
            async move {
                s.await.filter(|s| {
                    s.admin.as_admin_state() == AdminState::Ready && s.op_state == OpState::Running
                })
            }
        },
    )
    .await;
    assert_eq!(added.weight, 9, "dynamic_weight from the config");
    assert_eq!(added.addr, second.ip().expect("ip").to_string());

    // A bad label: logged, counted, skipped; the others keep working.
    let bad = ContainerSpec {
        name: format!("{prefix}_3"),
        ..ContainerSpec::new("unused")
            .image(IMAGE_NOHC)
            .network(&network)
    }
    .label("haproxy-drain.port", "http")
    .run();
    wait_until(Duration::from_secs(10), "the bad label to be reported", || {
        let log = daemon.log();
        async move { log.contains("haproxy-drain.port") && log.contains("cannot map container") }
    })
    .await;
    assert!(daemon
        .metrics_text()
        .await
        .contains("haproxy_drain_config_errors_total{kind=\"port\"} 1"));
    assert!(
        state(3).await.is_none(),
        "nothing was added for the bad container"
    );
    let load = Load::start(haproxy_front(port), 4, "/");
    wait_for(Duration::from_secs(20), "app_1 back in rotation", || {
        let s = state(1);
        async move {
            s.await
                .filter(|s| s.admin.as_admin_state() == AdminState::Ready && s.weight == 5)
        }
    })
    .await;
    let report = load.stop().await;
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    drop(bad);

    // Destroying the dynamic server's container deletes the server.
    second.remove();
    wait_until(
        Duration::from_secs(20),
        "app_2 deleted from HAProxy",
        || {
            let s = state(2);
            async move { s.await.is_none() }
        },
    )
    .await;
}

fn haproxy_front(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_haproxies_get_every_action_and_both_must_drain() {
    let network = TestNetwork::create();
    let backend = unique_name("two").replace('-', "_");
    let app = ContainerSpec::new("app1")
        .image(IMAGE_NOHC)
        .network(&network)
        .env("ON_SIGTERM", "graceful")
        .label("haproxy-drain.backend", &backend)
        .label("haproxy-drain.server", "app1")
        .run();
    let ip = app.ip().expect("ip");
    let sections = |port: u16| {
        format!(
            "backend {backend}\n    option httpchk GET /health\n    default-server inter 500ms fall 2 rise 2\n    \
             server app1 {ip}:{APP_PORT} check weight 20\n\
             frontend fe_{backend}\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n"
        )
    };
    let (port_a, port_b) = (free_loopback_port(), free_loopback_port());
    let a = HaproxyFixture::start(&sections(port_a)).await;
    let b = HaproxyFixture::start(&sections(port_b)).await;
    let daemon = Daemon::start(&[a.admin_url().to_string(), b.tcp_url().to_string()], &[]).await;
    let id = haproxy_drain::haproxy::ServerId::new(backend.clone(), "app1");
    // A long request through B only: the drain must wait for it although A is idle.
    let front_b = haproxy_front(port_b);
    let slow =
        tokio::spawn(async move { crate::support::load::get(front_b, "/?delay_ms=2500").await });
    wait_until(Duration::from_secs(10), "a session through B", || {
        let client = b.admin_client();
        let id = id.clone();
        async move {
            client
                .show_stat()
                .await
                .unwrap_or_default()
                .iter()
                .any(|r| r.proxy == id.backend && r.name == id.server && r.sessions > 0)
        }
    })
    .await;
    let container = app.id.clone();
    let stopper = std::thread::spawn(move || {
        crate::support::docker::docker_ok(&["stop", "-t", "10", &container])
    });
    for client in [a.admin_client(), b.admin_client()] {
        let drain = |s: &ServerState| s.admin.is_drain();
        wait_server(&client, &id, Duration::from_secs(5), "DRAIN on both", drain).await;
    }
    stopper.join().expect("docker stop");
    let finished = slow.await.expect("request task");
    assert_eq!(
        finished.map(|_| ()),
        Ok(()),
        "the in-flight request finished"
    );
    wait_until(
        Duration::from_secs(10),
        "a drained result after B's session ended",
        || {
            let log = daemon.log();
            async move { log.contains("result=\"drained\"") || log.contains("result=\"aborted\"") }
        },
    )
    .await;
    for client in [a.admin_client(), b.admin_client()] {
        let maint = |s: &ServerState| s.admin.is_maint();
        wait_server(
            &client,
            &id,
            Duration::from_secs(10),
            "MAINT on both",
            maint,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_behind_a_published_port_keeps_its_address() {
    let backend = unique_name("pub").replace('-', "_");
    let host_port = free_loopback_port();
    let mut app = ContainerSpec::new("pub")
        .image(IMAGE_NOHC)
        .env("ON_SIGTERM", "graceful")
        .label("haproxy-drain.backend", &backend)
        .label("haproxy-drain.server", "app1")
        .arg("-p")
        .arg(&format!("127.0.0.1:{host_port}:{APP_PORT}"))
        .run();
    let front = free_loopback_port();
    let haproxy = HaproxyFixture::start(&format!(
        "backend {backend}\n    option httpchk GET /health\n    default-server inter 500ms fall 2 rise 2\n    \
         server app1 127.0.0.1:{host_port} check weight 20\n    server spare 127.0.0.1:{} weight 1\n\
         frontend fe_{backend}\n    bind 127.0.0.1:{front}\n    default_backend {backend}\n",
        free_loopback_port()
    ))
    .await;
    let _daemon = Daemon::start(&[haproxy.admin_url().to_string()], &[]).await;
    let id = haproxy_drain::haproxy::ServerId::new(backend.clone(), "app1");
    let client = haproxy.admin_client();
    let in_rotation = |s: &ServerState| {
        s.admin.as_admin_state() == AdminState::Ready && s.op_state == OpState::Running
    };
    let wait_back =
        |what: &'static str| wait_server(&client, &id, Duration::from_secs(30), what, in_rotation);
    wait_back("app1 up").await;
    app.recreate();
    let state = wait_back("app1 back after a recreate").await;
    assert_eq!(
        state.addr, "127.0.0.1",
        "the published-port address is kept"
    );
    assert_eq!(state.port, Some(host_port));
    assert_eq!(state.weight, 20);
}
