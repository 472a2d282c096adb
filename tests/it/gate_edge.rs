//! The gate under bad conditions: malformed HTTP, a drain held while 100 other requests go
//! through, a client that leaves mid-drain, HAProxy unreachable (fail-open and fail-closed).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use haproxy_drain::haproxy::AdminState;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::gate_world::{assert_ok, docker_at, gate_count, get, raw, text, GateSocket};
use crate::support::daemon::Daemon;
use crate::support::docker::{ContainerSpec, TestContainer, TestNetwork, APP_PORT, IMAGE_HC};
use crate::support::haproxy::{free_loopback_port, HaproxyFixture};
use crate::support::proxy::SocketProxy;
use crate::support::roll::{blocking, World};
use crate::support::wait::{wait_server, wait_until};

fn stop_request(container: &str) -> Vec<u8> {
    format!(
        "POST /v1.41/containers/{container}/stop?t=1 HTTP/1.1\r\nHost: docker\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// `n` requests that each take `ms` through HAProxy, in the background.
fn slow_requests(frontend: SocketAddr, n: usize, ms: u64) {
    for _ in 0..n {
        tokio::spawn(async move {
            let _ = crate::support::load::get(frontend, &format!("/?delay_ms={ms}")).await;
        });
    }
}

async fn wait_admin(world: &World, index: usize, admin: AdminState) {
    wait_server(
        &world.haproxy_client(),
        &world.server(index),
        Duration::from_secs(30),
        &format!("admin state {admin}"),
        |s| s.admin.as_admin_state() == admin,
    )
    .await;
}

async fn wait_sessions(world: &World, index: usize) {
    wait_until(
        Duration::from_secs(10),
        "sessions on the server",
        || async { world.sessions(index).await > 0 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_drain_blocks_no_other_request_and_a_client_leaving_mid_drain_holds_nothing() {
    let gate = GateSocket::new();
    let world = World::start_with(
        2,
        IMAGE_HC,
        &[("ON_SIGTERM", "exit")],
        &[("haproxy-drain.drain-timeout", "20s")],
        &[gate.flag()],
    )
    .await;
    let socket = gate.path();

    // Held: app1 has 4 s requests in flight, so its gated stop waits (100 GETs took ≈ 0.5 s on
    // a loaded 2-core machine).
    slow_requests(world.frontend, 4, 4000);
    wait_sessions(&world, 0).await;
    let stop = tokio::spawn({
        let (socket, request) = (socket.clone(), stop_request(&world.name(0)));
        async move { raw(&socket, &request, Duration::from_secs(30)).await }
    });
    wait_admin(&world, 0, AdminState::Drain).await;
    let started = Instant::now();
    let answers = join_all((0..100).map(|_| get(&socket, "/v1.41/containers/json?all=1"))).await;
    let took = started.elapsed();
    let still_held = !stop.is_finished();
    assert!(
        answers
            .iter()
            .all(|(status, body)| *status == 200 && body.contains("\"Id\"")),
        "not every GET /containers/json answered: {:?}",
        answers.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );
    assert!(
        still_held,
        "the drain was over before the 100 requests were ({took:?}): hold it longer"
    );
    eprintln!("100 concurrent GET /containers/json while a drain was held: {took:?}");
    let reply = stop.await.expect("stop task");
    assert!(reply.starts_with("HTTP/1.1 204"), "the held stop: {reply}");
    let status = world.inspect(0, "{{.State.Status}}");
    assert_eq!(status, "exited");

    // A client that goes away mid-drain: the stop is still forwarded once the drain ends.
    slow_requests(world.frontend, 2, 2500);
    wait_sessions(&world, 1).await;
    let mut client = UnixStream::connect(&socket)
        .await
        .expect("connect to the gate");
    client
        .write_all(&stop_request(&world.name(1)))
        .await
        .expect("send the stop");
    wait_admin(&world, 1, AdminState::Drain).await;
    drop(client);
    wait_until(
        Duration::from_secs(30),
        "the abandoned stop forwarded",
        || async { world.inspect(1, "{{.State.Status}}") == "exited" },
    )
    .await;
    wait_admin(&world, 1, AdminState::Maint).await;
    // Nothing held: both come back the normal way when started again.
    for index in 0..2 {
        let out = blocking({
            let (host, name) = (gate.host(), world.name(index));
            move || docker_at(&host, &["start", &name])
        })
        .await;
        assert_ok(&out, "docker start through the gate");
    }
    world.wait_all_in_rotation(Duration::from_secs(30)).await;
    let metrics = world.daemon.metrics_text().await;
    assert_eq!(gate_count(&metrics, "stop", "drained"), 2.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_the_gate_keeps_serving() {
    let gate = GateSocket::new();
    let haproxy = HaproxyFixture::start("backend be_gate_bad\n").await;
    let _daemon = Daemon::start(&[haproxy.admin_url().to_string()], &[gate.flag()]).await;
    let socket = gate.path();
    // Like docker.sock: mode 0660, and the engine socket's group.
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&socket).expect("gate socket");
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        let engine = std::fs::metadata("/var/run/docker.sock").expect("docker.sock");
        assert_eq!(meta.gid(), engine.gid(), "the gate socket's group");
    }
    let limit = Duration::from_secs(5);
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /_ping HTTP/1.1\r\nthis is no header\r\n\r\n",
        b"\x00\x01\x02\xff\xfe binary\r\n\r\n",
        b"GET /_ping HTTP/9.9\r\nHost: x\r\n\r\n",
        b"POST /containers/x/stop HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    ] {
        let reply = raw(&socket, junk, limit).await;
        assert!(
            reply.starts_with("HTTP/1.1 400"),
            "{:?} got {reply:?}",
            String::from_utf8_lossy(junk)
        );
    }
    // A connection that says nothing and goes away, and one cut in the middle of a request.
    drop(UnixStream::connect(&socket).await.expect("connect"));
    let mut half = UnixStream::connect(&socket).await.expect("connect");
    half.write_all(b"POST /v1.41/containers/x/stop HTTP/1.1\r\nHo")
        .await
        .expect("write");
    drop(half);
    let (status, body) = get(&socket, "/_ping").await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (status, body) = get(&socket, "/v1.41/containers/hdt-no-such-container/json").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No such container"), "{body}");
}

/// One labelled container behind a HAProxy that the daemon reaches through a proxy the test can
/// cut, and the gate.
struct Cuttable {
    daemon: Daemon,
    proxy: SocketProxy,
    _haproxy: HaproxyFixture,
    app: TestContainer,
    _network: TestNetwork,
    gate: GateSocket,
}

impl Cuttable {
    async fn start(extra: &[&str]) -> Self {
        let gate = GateSocket::new();
        let backend = crate::support::docker::unique_name("be");
        let (network, app) = blocking({
            let backend = backend.clone();
            move || {
                let network = TestNetwork::create();
                let app = ContainerSpec::new("cut")
                    .image(IMAGE_HC)
                    .network(&network)
                    .env("ON_SIGTERM", "exit")
                    .label("haproxy-drain.backend", &backend)
                    .label("haproxy-drain.server", "app1")
                    .label("haproxy-drain.port", &APP_PORT.to_string())
                    .label("haproxy-drain.drain-timeout", "20s")
                    .run();
                app.wait_healthy(Duration::from_secs(30));
                (network, app)
            }
        })
        .await;
        let ip = app.ip().expect("address");
        let haproxy = HaproxyFixture::start(&format!(
            "frontend fe_cut\n    bind 127.0.0.1:{}\n    default_backend {backend}\n\
             backend {backend}\n    option httpchk GET /health\n\
             \x20   server app1 {ip}:{APP_PORT} check inter 500ms\n",
            free_loopback_port()
        ))
        .await;
        let proxy = SocketProxy::start_to(&haproxy.admin_socket());
        let mut flags = vec![gate.flag()];
        flags.extend(extra.iter().map(|f| f.to_string()));
        let daemon = Daemon::start(&[proxy.url()], &flags).await;
        let client = daemon.client();
        let name = app.name().to_string();
        wait_until(Duration::from_secs(30), "the server in rotation", || {
            let (client, name) = (client.clone(), name.clone());
            async move {
                client.servers().await.is_ok_and(|servers| {
                    servers.iter().any(|s| {
                        s.container.as_deref() == Some(name.as_str()) && s.phase == "in_rotation"
                    })
                })
            }
        })
        .await;
        Self {
            daemon,
            proxy,
            _haproxy: haproxy,
            app,
            _network: network,
            gate,
        }
    }

    fn cut(&self) {
        self.proxy.pause();
        self.proxy.cut_all();
    }

    async fn docker_stop(&self) -> (std::process::Output, Duration) {
        let (host, name) = (self.gate.host(), self.app.name().to_string());
        blocking(move || {
            let started = Instant::now();
            let out = docker_at(&host, &["stop", "-t", "1", &name]);
            (out, started.elapsed())
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_unreachable_fail_open_forwards_after_a_short_bound() {
    let world = Cuttable::start(&[]).await;
    world.cut();
    let (out, took) = world.docker_stop().await;
    assert_ok(&out, "docker stop through the gate, HAProxy unreachable");
    // The bound is 1 s for HAProxy to answer; the container's drain timeout is 20 s.
    assert!(took < Duration::from_secs(6), "the stop took {took:?}");
    assert_eq!(world.app.status(), "exited");
    let metrics = world.daemon.metrics_text().await;
    assert_eq!(
        gate_count(&metrics, "stop", "haproxy_unreachable"),
        1.0,
        "{metrics}"
    );
    assert!(world
        .daemon
        .log()
        .contains("no HAProxy answers; forwarding without a drain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_unreachable_fail_closed_refuses_and_leaves_the_container_running() {
    let world = Cuttable::start(&["--docker-gate-fail-closed"]).await;
    world.cut();
    let (out, took) = world.docker_stop().await;
    assert!(
        !out.status.success(),
        "the stop was not refused: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error response from daemon") && stderr.contains("fail-closed"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(6), "the refusal took {took:?}");
    assert_eq!(world.app.status(), "running");
    // HAProxy back: the same stop is drained and goes through.
    world.proxy.resume();
    let (out, _) = world.docker_stop().await;
    assert_ok(&out, "docker stop through the gate, HAProxy back");
    assert_eq!(world.app.status(), "exited");
    let metrics = world.daemon.metrics_text().await;
    assert_eq!(gate_count(&metrics, "stop", "refused"), 1.0, "{metrics}");
    assert_eq!(gate_count(&metrics, "stop", "drained"), 1.0, "{metrics}");
}
