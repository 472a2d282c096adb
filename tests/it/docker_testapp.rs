//! The test app in its images behaves as the other tests assume: health, instance names and
//! versions, keep-alive, and the two SIGTERM behaviours under `docker stop`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::docker::{ContainerSpec, TestContainer, APP_PORT, IMAGE_NOHC, IMAGE_V2};
use crate::support::wait::wait_until_blocking;

const UP_WITHIN: Duration = Duration::from_secs(10);

/// One HTTP/1.1 request on `stream`: (status, body, whether the server keeps the connection).
fn request(stream: &mut TcpStream, path: &str) -> std::io::Result<(u16, String, bool)> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut keep_alive) = (0usize, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        keep_alive |= header == "connection: keep-alive";
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((
        status,
        String::from_utf8_lossy(&body).into_owned(),
        keep_alive,
    ))
}

fn connect(app: &TestContainer) -> TcpStream {
    let ip = app
        .ip()
        .unwrap_or_else(|| panic!("{} has no IP", app.name()));
    let stream = TcpStream::connect_timeout(&SocketAddr::new(ip, APP_PORT), Duration::from_secs(2))
        .unwrap_or_else(|err| panic!("connect to {}: {err}", app.name()));
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    stream
}

fn get(app: &TestContainer, path: &str) -> std::io::Result<(u16, String, bool)> {
    request(&mut connect(app), path)
}

fn wait_listening(app: &TestContainer) {
    wait_until_blocking(UP_WITHIN, &format!("{} to answer", app.name()), || {
        app.ip().is_some_and(|ip| {
            TcpStream::connect_timeout(&SocketAddr::new(ip, APP_PORT), Duration::from_millis(200))
                .is_ok()
        })
    });
}

/// Starts a slow request, waits until the app reports it in flight, then `docker stop`s.
/// Returns the slow request's outcome, the exit code and how long the stop took.
fn stop_during_a_slow_request(
    app: &TestContainer,
) -> (std::io::Result<(u16, String, bool)>, String, Duration) {
    let mut slow = connect(app);
    let in_flight = std::thread::spawn(move || request(&mut slow, "/slow?delay_ms=1500"));
    wait_until_blocking(UP_WITHIN, "the slow request to be in flight", || {
        get(app, "/inflight").is_ok_and(|(_, body, _)| body.trim() == "in_flight=1")
    });
    let started = Instant::now();
    app.stop(10);
    let stop_took = started.elapsed();
    let outcome = in_flight.join().expect("the request thread");
    let exit_code =
        crate::support::docker::docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &app.id]);
    (outcome, exit_code, stop_took)
}

#[test]
fn graceful_app_finishes_in_flight_requests_on_docker_stop() {
    let app = ContainerSpec::new("graceful")
        .image(IMAGE_NOHC)
        .env("ON_SIGTERM", "graceful")
        .run();
    wait_listening(&app);
    let (outcome, exit_code, stop_took) = stop_during_a_slow_request(&app);
    let (status, body, keep_alive) = outcome.expect("the in-flight request completes");
    assert_eq!(status, 200);
    assert!(body.contains("path=/slow"), "{body}");
    assert!(
        !keep_alive,
        "a stopping app closes the connection after the response"
    );
    assert_eq!(exit_code, "0");
    assert!(
        stop_took < Duration::from_secs(8),
        "exited on its own, no SIGKILL: {stop_took:?}"
    );
}

#[test]
fn exit_app_drops_in_flight_requests_on_docker_stop() {
    let app = ContainerSpec::new("exit")
        .image(IMAGE_NOHC)
        .env("ON_SIGTERM", "exit")
        .run();
    wait_listening(&app);
    let (outcome, exit_code, stop_took) = stop_during_a_slow_request(&app);
    assert!(
        outcome.is_err(),
        "the in-flight request is cut: {outcome:?}"
    );
    assert_eq!(exit_code, "0");
    assert!(
        stop_took < Duration::from_secs(1),
        "exits at once: {stop_took:?}"
    );
}

#[test]
fn health_names_versions_and_keep_alive() {
    let v2 = ContainerSpec::new("v2").image(IMAGE_V2).run();
    let sick = ContainerSpec::new("sick")
        .image(IMAGE_NOHC)
        .env("FAIL_HEALTH", "1")
        .run();
    wait_listening(&v2);
    wait_listening(&sick);

    let mut conn = connect(&v2);
    let (status, body, keep_alive) = request(&mut conn, "/health").expect("health");
    assert_eq!((status, body.as_str(), keep_alive), (200, "ok\n", true));
    let (status, body, _) =
        request(&mut conn, "/any/path?x=1").expect("second request, same connection");
    assert_eq!(status, 200);
    let expected = format!(
        "instance={} version=v2 method=GET path=/any/path",
        v2.name()
    );
    assert!(body.starts_with(&expected), "{body}");

    let (status, _, _) = get(&sick, "/health").expect("health of the sick app");
    assert_eq!(status, 500);
}

#[test]
fn startup_delay_holds_back_the_listener() {
    let app = ContainerSpec::new("late")
        .image(IMAGE_NOHC)
        .env("STARTUP_DELAY_MS", "1500")
        .run();
    wait_until_blocking(UP_WITHIN, "an address", || app.ip().is_some());
    let started = Instant::now();
    wait_listening(&app);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "listening only after the delay: {:?}",
        started.elapsed()
    );
}

#[test]
fn stop_delay_keeps_accepting_for_a_while_after_sigterm() {
    let app = ContainerSpec::new("lameduck")
        .image(IMAGE_NOHC)
        .env("ON_SIGTERM", "graceful")
        .env("STOP_DELAY_MS", "1000")
        .run();
    wait_listening(&app);
    let signalled = Instant::now();
    app.kill("TERM");
    // A new connection right after the signal is still served...
    let (status, _, keep_alive) = get(&app, "/after-sigterm").expect("served during the delay");
    assert_eq!(status, 200);
    assert!(
        !keep_alive,
        "a stopping app closes the connection after the response"
    );
    assert!(
        signalled.elapsed() < Duration::from_millis(1000),
        "checked within the delay"
    );
    // ... and once the delay has passed, the app stops accepting and exits 0.
    wait_until_blocking(UP_WITHIN, "the app to exit", || app.status() == "exited");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "{:?}",
        signalled.elapsed()
    );
    let exit_code =
        crate::support::docker::docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &app.id]);
    assert_eq!(exit_code, "0");
}

/// `:bad` (`FAIL_PERCENT=50`): healthy, and exactly half of its app requests answer 500.
#[test]
fn the_bad_image_fails_half_of_its_app_requests_but_not_its_health() {
    let app = ContainerSpec::new("bad")
        .image(crate::support::docker::IMAGE_BAD)
        .run();
    wait_listening(&app);
    let statuses: Vec<u16> = (0..20)
        .map(|_| get(&app, "/").expect("an answer").0)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 500).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    for _ in 0..5 {
        assert_eq!(get(&app, "/health").expect("health").0, 200);
    }
}
