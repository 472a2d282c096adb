//! The test app's four SIGTERM behaviours, in the image the shutdown matrix uses, as the matrix
//! assumes them: `graceful` closes its listener at once, finishes what is in flight and exits;
//! `ignore` serves on until SIGKILL; `serve` accepts new connections for GRACE_MS, then exits 0
//! by itself; `exit` exits at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::docker::{docker_ok, ContainerSpec, TestContainer, APP_PORT, IMAGE_SIGTERM};
use crate::support::wait::wait_until_blocking;

const WITHIN: Duration = Duration::from_secs(10);

fn app(on_sigterm: &str, extra_env: &[(&str, &str)]) -> TestContainer {
    let mut spec = ContainerSpec::new(&format!("sig-{on_sigterm}"))
        .image(IMAGE_SIGTERM)
        .env("ON_SIGTERM", on_sigterm);
    for (k, v) in extra_env {
        spec = spec.env(k, v);
    }
    let app = spec.run();
    wait_until_blocking(WITHIN, &format!("{} to answer", app.name()), || {
        get(&app, "/health").is_ok()
    });
    app
}

fn addr(app: &TestContainer) -> SocketAddr {
    SocketAddr::new(app.ip().expect("a running app has an address"), APP_PORT)
}

/// A GET on a new connection: the status code, or the connect/read error.
fn get_at(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::ErrorKind::InvalidData.into())
}

fn get(app: &TestContainer, path: &str) -> std::io::Result<u16> {
    get_at(addr(app), path)
}

fn running(app: &TestContainer) -> bool {
    docker_ok(&["inspect", "--format", "{{.State.Running}}", &app.id]) == "true"
}

fn exit_code(app: &TestContainer) -> String {
    docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &app.id])
}

/// Every new connection during `period` gets a 200.
fn serves_throughout(addr: SocketAddr, period: Duration) -> Result<u32, String> {
    let until = Instant::now() + period;
    let mut served = 0;
    while Instant::now() < until {
        match get_at(addr, "/") {
            Ok(200) => served += 1,
            other => return Err(format!("after {served} requests: {other:?}")),
        }
    }
    Ok(served)
}

#[test]
fn graceful_closes_the_listener_at_once_and_exits_when_nothing_is_in_flight() {
    let app = app("graceful", &[]);
    let at = addr(&app);
    let slow = std::thread::spawn(move || get_at(at, "/slow?delay_ms=1500"));
    wait_until_blocking(WITHIN, "the slow request in flight", || {
        let mut stream = match TcpStream::connect(at) {
            Ok(s) => s,
            Err(_) => return false,
        };
        let _ = write!(
            stream,
            "GET /inflight HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        );
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply.contains("in_flight=1")
    });
    app.kill("TERM");
    let signalled = Instant::now();
    wait_until_blocking(
        Duration::from_secs(1),
        "new connections to be refused",
        || TcpStream::connect_timeout(&at, Duration::from_millis(200)).is_err(),
    );
    let refused_after = signalled.elapsed();
    assert!(running(&app), "still running while a request is in flight");
    assert_eq!(slow.join().expect("slow request thread").ok(), Some(200));
    wait_until_blocking(WITHIN, "the app to exit", || !running(&app));
    assert_eq!(exit_code(&app), "0");
    assert!(
        refused_after < Duration::from_millis(500),
        "{refused_after:?}"
    );
}

#[test]
fn ignore_serves_on_after_term_until_sigkill() {
    let app = app("ignore", &[]);
    app.kill("TERM");
    let served = serves_throughout(addr(&app), Duration::from_millis(800))
        .unwrap_or_else(|e| panic!("an app that ignores TERM stopped serving: {e}"));
    assert!(served > 0);
    assert!(running(&app));
    let stopping = Instant::now();
    app.stop(1);
    assert!(
        stopping.elapsed() >= Duration::from_secs(1),
        "it waited for the stop timeout"
    );
    assert_eq!(exit_code(&app), "137", "only SIGKILL ended it");
}

#[test]
fn serve_accepts_new_connections_for_the_grace_period_then_exits() {
    let app = app("serve", &[("GRACE_MS", "1500")]);
    let at = addr(&app);
    app.kill("TERM");
    let signalled = Instant::now();
    serves_throughout(at, Duration::from_millis(1100))
        .unwrap_or_else(|e| panic!("stopped serving inside its grace period: {e}"));
    wait_until_blocking(WITHIN, "the app to exit by itself", || !running(&app));
    let exited_after = signalled.elapsed();
    assert_eq!(exit_code(&app), "0");
    assert!(
        exited_after >= Duration::from_millis(1500),
        "exited {exited_after:?} after TERM, before its grace period"
    );
}

#[test]
fn exit_exits_at_once() {
    let app = app("exit", &[]);
    app.kill("TERM");
    let signalled = Instant::now();
    wait_until_blocking(WITHIN, "the app to exit", || !running(&app));
    assert_eq!(exit_code(&app), "0");
    assert!(signalled.elapsed() < Duration::from_secs(2));
}
