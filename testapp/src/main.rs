//! testapp: a tiny HTTP/1.1 server for haproxy-drain's tests and demo. std only, so it links
//! statically and runs in a `FROM scratch` image.
//!
//! Settings (environment; `--port N` also works):
//! - `PORT` (8080), `NAME` (else `HOSTNAME`, else /etc/hostname), `APP_VERSION` (`v1`)
//! - `DELAY_MS`: default delay per request; `?delay_ms=N` overrides it for one request
//! - `ON_SIGTERM`, what a stop signal does (SIGINT and SIGUSR1 behave like SIGTERM):
//!   - `exit` (default): exit 0 at once, dropping in-flight requests, like most apps;
//!   - `graceful`: close the listener at once (new connections are refused), finish the requests
//!     in flight, exit 0 when none is left;
//!   - `ignore`: carry on serving; only SIGKILL (`docker stop`'s timeout) ends it;
//!   - `serve`: keep serving normally, new connections included, for `GRACE_MS` (15000), then
//!     behave like `graceful` (an app with a shutdown delay).
//! - `STARTUP_DELAY_MS`: sleep before listening; `FAIL_HEALTH=1`: `/health` answers 500
//! - `FAIL_PERCENT` (0): this many of every 100 app requests answer 500, spread evenly (not
//!   `/health`, so the app passes its health checks and fails its users: a bad release)
//! - `STOP_DELAY_MS` (with `ON_SIGTERM=graceful`): keep accepting this long after the signal
//!   before closing the listener ("lame duck"), for requests a proxy had already sent when the
//!   signal came — Docker signals the app and reports the `kill` event at the same moment
//!
//! Paths: `/health` → `ok` (`/health/fail` and `/health/ok` break and mend it at run time); `/inflight` → `in_flight=N` (other requests in progress);
//! `/exit?code=N` → answers, then exits with N (a crash on demand);
//! anything else → `instance=<name> version=<v> path=<path>`.
//!
//! `testapp --healthcheck` exits 0 when `GET /health` on 127.0.0.1:$PORT answers 200 (for an
//! exec-form `HEALTHCHECK`: the image has no shell).

mod http;
mod signals;

use signals::OnSigterm;

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Requests being processed right now: a graceful shutdown waits for this to reach 0.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Set by `/health/fail`, cleared by `/health/ok`: a container that turns unhealthy on demand.
static HEALTH_BROKEN: AtomicBool = AtomicBool::new(false);
/// App requests answered so far, for `FAIL_PERCENT`.
static APP_REQUESTS: AtomicUsize = AtomicUsize::new(0);

struct Settings {
    port: u16,
    name: String,
    version: String,
    default_delay: Duration,
    on_sigterm: OnSigterm,
    fail_health: bool,
    startup_delay: Duration,
    stop_delay: Duration,
    fail_percent: usize,
}

fn env_u64(name: &str) -> u64 {
    env_u64_or(name, 0)
}

fn env_u64_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn instance_name() -> String {
    let non_empty = |value: String| {
        let value = value.trim().to_string();
        (!value.is_empty()).then_some(value)
    };
    std::env::var("NAME")
        .ok()
        .and_then(non_empty)
        .or_else(|| std::env::var("HOSTNAME").ok().and_then(non_empty))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .and_then(non_empty)
        })
        .unwrap_or_else(|| "testapp".to_string())
}

fn settings(args: &[String]) -> Settings {
    let flag_port = args
        .iter()
        .position(|arg| arg == "--port")
        .and_then(|at| args.get(at + 1))
        .and_then(|port| port.parse().ok());
    let env_port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.trim().parse().ok());
    Settings {
        port: flag_port.or(env_port).unwrap_or(8080),
        name: instance_name(),
        version: std::env::var("APP_VERSION").unwrap_or_else(|_| "v1".to_string()),
        default_delay: Duration::from_millis(env_u64("DELAY_MS")),
        on_sigterm: OnSigterm::parse(
            std::env::var("ON_SIGTERM").ok().as_deref(),
            Duration::from_millis(env_u64_or("GRACE_MS", 15_000)),
        ),
        fail_health: std::env::var("FAIL_HEALTH").is_ok_and(|v| v.trim() == "1"),
        startup_delay: Duration::from_millis(env_u64("STARTUP_DELAY_MS")),
        stop_delay: Duration::from_millis(env_u64("STOP_DELAY_MS")),
        fail_percent: env_u64("FAIL_PERCENT").min(100) as usize,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let settings = Arc::new(settings(&args));
    if args.iter().any(|arg| arg == "--healthcheck") {
        let healthy = http::get_status(settings.port, "/health", Duration::from_millis(900))
            .is_ok_and(|status| status == 200);
        std::process::exit(if healthy { 0 } else { 1 });
    }

    signals::install(settings.on_sigterm);
    thread::sleep(settings.startup_delay);
    let listener = match TcpListener::bind(("0.0.0.0", settings.port)) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("testapp: cannot listen on port {}: {err}", settings.port);
            std::process::exit(2);
        }
    };
    eprintln!(
        "testapp {} ({}) listening on :{}, on SIGTERM: {}",
        settings.name,
        settings.version,
        settings.port,
        settings.on_sigterm.describe()
    );
    signals::wake_accept_on_signal(settings.port);

    let mut accept_until = None;
    for stream in listener.incoming() {
        // A connection accepted after the stop began is served all the same (dropping it would
        // reset a client we already took); the listener closes right after.
        if let Ok(stream) = stream {
            let settings = Arc::clone(&settings);
            // Counted as in flight from now on, so the exit below cannot overtake its request
            // (it closes after one request: keep-alive ends once stopping).
            let late = signals::stopping().then(|| {
                IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
                InFlight
            });
            thread::spawn(move || {
                serve_connection(stream, &settings);
                drop(late);
            });
        }
        if signals::stopping() {
            let until = *accept_until.get_or_insert_with(|| {
                signals::wake_accept_after(settings.port, settings.stop_delay);
                Instant::now() + settings.stop_delay
            });
            if Instant::now() >= until {
                break;
            }
        }
    }
    // From here on, new connections are refused; the in-flight ones finish.
    drop(listener);
    eprintln!(
        "testapp {}: stopped accepting, finishing in-flight requests",
        settings.name
    );
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        thread::sleep(Duration::from_millis(2));
    }
    eprintln!("testapp {}: exiting", settings.name);
    std::process::exit(0);
}

/// Ends the in-flight count for one request, however its handling ends.
struct InFlight;
impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_connection(stream: TcpStream, settings: &Settings) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let mut guard = None;
        let request = http::read_request(&mut reader, &mut || {
            IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
            guard = Some(InFlight);
        });
        let Ok(Some(request)) = request else { return };
        let (status, body, exit_code) = respond(&request, settings);
        // Decided after the work: a stop that began meanwhile closes the connection.
        let keep_alive = request.keep_alive && !signals::stopping();
        let headers = [("X-Instance", settings.name.as_str())];
        let written = http::write_response(&mut writer, status, &body, &headers, keep_alive);
        drop(guard);
        if let Some(code) = exit_code {
            std::process::exit(code);
        }
        if written.is_err() || !keep_alive {
            return;
        }
    }
}

/// Status, body, and whether to exit afterwards.
fn respond(request: &http::Request, settings: &Settings) -> (u16, String, Option<i32>) {
    let delay = request
        .query_param("delay_ms")
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(settings.default_delay);
    match request.path.as_str() {
        "/health" if settings.fail_health || HEALTH_BROKEN.load(Ordering::SeqCst) => {
            (500, "failing on purpose\n".into(), None)
        }
        "/health/fail" => {
            HEALTH_BROKEN.store(true, Ordering::SeqCst);
            (200, "health now fails\n".into(), None)
        }
        "/health/ok" => {
            HEALTH_BROKEN.store(false, Ordering::SeqCst);
            (200, "health now passes\n".into(), None)
        }
        "/health" => (200, "ok\n".into(), None),
        // Other requests in progress (this one excluded), so a test can tell a request is in flight.
        "/inflight" => {
            let others = IN_FLIGHT.load(Ordering::SeqCst).saturating_sub(1);
            (200, format!("in_flight={others}\n"), None)
        }
        "/exit" => {
            let code = request
                .query_param("code")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            (200, format!("exiting with {code}\n"), Some(code))
        }
        path => {
            // The app's "work": a per-request delay, so drains have in-flight requests to wait for.
            thread::sleep(delay);
            // Spread evenly: request n fails when it completes another whole percent-step.
            let n = APP_REQUESTS.fetch_add(1, Ordering::SeqCst);
            let p = settings.fail_percent;
            if (n + 1) * p / 100 > n * p / 100 {
                return (500, "failing on purpose (FAIL_PERCENT)\n".into(), None);
            }
            let body = format!(
                "instance={} version={} method={} path={path}\n",
                settings.name, settings.version, request.method
            );
            (200, body, None)
        }
    }
}
