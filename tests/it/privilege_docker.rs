//! The watcher behind a read-only Docker API proxy (GET of /_ping, /version, /events,
//! /containers/json, /containers/{id}/json only — docker-socket-proxy's CONTAINERS=1 EVENTS=1
//! POST=0): restart and recreate under load drain and restore as usual, and it never asks for
//! more; `roll` through it fails saying which permission it needs; `check` lists what works.

use std::time::Duration;

use haproxy_drain::haproxy::AdminState;

use crate::support::load::Load;
use crate::support::readonly_proxy::ReadOnlyProxy;
use crate::support::stack::{Stack, StackOptions, WEIGHT};

async fn stack_behind(proxy: &ReadOnlyProxy) -> Stack {
    Stack::start(StackOptions {
        apps: 2,
        daemon_env: vec![("DOCKER_HOST", proxy.url())],
        ..StackOptions::default()
    })
    .await
}

async fn load_on(stack: &Stack) -> Load {
    let load = Load::start(stack.frontend, 6, "/?delay_ms=5");
    crate::support::wait::wait_until(Duration::from_secs(10), "load flowing", || {
        let ok = load.ok();
        async move { ok > 50 }
    })
    .await;
    load
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_needs_only_read_access_for_restart_and_recreate() {
    let proxy = ReadOnlyProxy::start();
    let mut stack = stack_behind(&proxy).await;
    let load = load_on(&stack).await;

    stack.apps[0].restart(10);
    stack.wait_in_rotation(1).await;
    assert!(
        stack
            .daemon
            .log()
            .contains(&format!("drain finished server={}", stack.server(1))),
        "the restart went through a drain"
    );

    let old_ip = stack.apps[1].ip().expect("ip");
    stack.apps[1].recreate();
    let new_ip = stack.apps[1].ip().expect("new ip");
    let state = stack
        .wait_state(
            2,
            "the recreated container in rotation at its address",
            |s| {
                s.addr == new_ip.to_string()
                    && s.admin.as_admin_state() == AdminState::Ready
                    && s.op_state == haproxy_drain::haproxy::OpState::Running
            },
        )
        .await;
    let report = load.stop().await;
    eprintln!("behind the read-only proxy, restart + recreate {old_ip} -> {new_ip}: {report:?}");
    assert_eq!(state.weight, WEIGHT);
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
    assert!(report.ok > 100);
    let allowed = proxy.allowed();
    assert!(
        allowed.iter().any(|r| r.contains("/events")),
        "the watcher went through the proxy: {allowed:?}"
    );
    assert_eq!(
        proxy.denied(),
        Vec::<String>::new(),
        "the watcher asked for more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_through_a_read_only_proxy_names_the_permission_it_needs() {
    let proxy = ReadOnlyProxy::start();
    let stack = stack_behind(&proxy).await;
    let name = stack.apps[0].name().to_string();
    let output =
        tokio::task::block_in_place(|| stack.daemon.cli(&["roll", &name, "--timeout", "20s"]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("403"), "{text}");
    assert!(
        text.contains("POST /containers/{id}/stop") && text.contains("POST=1"),
        "the message names the permission: {text}"
    );
    assert!(
        proxy
            .denied()
            .iter()
            .any(|r| r.starts_with("POST ") && r.contains("/stop")),
        "{:?}",
        proxy.denied()
    );
    // The container was never stopped. (Its server stays out until the roll's stop request
    // expires, even on `ready`: reported to the lead, see docs/fuzzing.md.)
    assert!(stack.apps[0].status().contains("running"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_socket_levels_and_docker_permissions() {
    let proxy = ReadOnlyProxy::start();
    let haproxy =
        crate::support::haproxy::HaproxyFixture::start("backend be\n    server s1 127.0.0.1:1\n")
            .await;
    let run = |haproxy_url: String, docker_host: String| {
        tokio::task::block_in_place(move || {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
                .args([
                    "check",
                    "--haproxy",
                    &haproxy_url,
                    "--container",
                    "none-such",
                ])
                .env("DOCKER_HOST", docker_host)
                .env_remove("HAPROXY_DRAIN_CONFIG")
                .output()
                .expect("check runs");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        })
    };
    // Through the proxy: the read permissions are there, the write ones are reported missing
    // with what they disable, and none of that fails the check (the watcher works).
    let (_, text) = run(haproxy.admin_url().to_string(), proxy.url());
    for line in [
        "docker   ok      may list (GET /containers/json)",
        "docker   ok      may inspect (GET /containers/{id}/json)",
        "docker   ok      may events (GET /events)",
        "docker   ok      (limited) may not stop (POST /containers/{id}/stop): HTTP 403",
        "docker   ok      (limited) may not create (POST /containers/create): HTTP 403",
        "docker   ok      (limited) may not exec (POST /containers/{id}/exec): HTTP 403",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("`roll --image`"), "{text}");
    assert!(text.contains("`roll --surge`'s fast gate"), "{text}");
    assert!(text.contains("level admin"), "{text}");
    // The real socket: everything allowed, and the probes changed nothing.
    let (_, text) = run(
        haproxy.admin_url().to_string(),
        "unix:///var/run/docker.sock".into(),
    );
    for permission in [
        "list", "inspect", "events", "stop", "start", "create", "exec",
    ] {
        assert!(
            text.contains(&format!("ok      may {permission} (")),
            "{permission}: {text}"
        );
    }
    let probe = haproxy_drain::docker::permissions::PROBE_CONTAINER;
    assert!(
        crate::support::docker::docker(&["inspect", probe]).is_err(),
        "the create probe created nothing"
    );
    // Operator and user sockets: the level is named, and what it cannot do.
    for (url, level) in [
        (haproxy.operator_url(), "level operator"),
        (haproxy.user_url(), "level user"),
    ] {
        let (code, text) = run(url.to_string(), proxy.url());
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains(level) && text.contains("not `level admin`"),
            "{text}"
        );
    }
}
