//! SIGTERM/SIGINT/SIGUSR1 handling without the libc crate: std links the C library anyway, so two
//! `extern "C"` declarations suffice.
//!
//! As PID 1 in a container, a signal with the default disposition is ignored by the kernel, so
//! the app must install handlers or `docker stop` would wait for its timeout and SIGKILL. Every
//! behaviour installs one (even `ignore`, so that it also ignores the signal when it is not PID 1,
//! e.g. under `docker run --init`).

use std::ffi::c_int;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

const SIGINT: c_int = 2;
const SIGUSR1: c_int = 10;
const SIGTERM: c_int = 15;

extern "C" {
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn _exit(status: c_int) -> !;
}

/// What the app does on SIGTERM (`ON_SIGTERM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSigterm {
    /// Exit 0 at once, dropping in-flight requests (most apps).
    Exit,
    /// Close the listener at once, finish in-flight requests, exit 0.
    Graceful,
    /// Carry on as if nothing happened: only SIGKILL ends it.
    Ignore,
    /// Keep serving normally (accepting new connections) for this long, then behave like
    /// `Graceful` (a Java/Node/Go server with a shutdown delay).
    Serve(Duration),
}

impl OnSigterm {
    /// `exit` (also when unset or unknown), `graceful`, `ignore`, `serve` (with `grace`).
    pub fn parse(value: Option<&str>, grace: Duration) -> Self {
        match value.map(str::trim) {
            Some("graceful") => Self::Graceful,
            Some("ignore") => Self::Ignore,
            Some("serve") => Self::Serve(grace),
            _ => Self::Exit,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Self::Exit => "exit".into(),
            Self::Graceful => "graceful".into(),
            Self::Ignore => "ignore".into(),
            Self::Serve(grace) => format!("serve for {} ms, then graceful", grace.as_millis()),
        }
    }
}

/// Set by a handler when a stop signal arrived.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// Set once the app stops accepting: read by the accept loop and the connection threads.
static STOPPING: AtomicBool = AtomicBool::new(false);

extern "C" fn exit_now(_signum: c_int) {
    // SAFETY: _exit is async-signal-safe; nothing needs flushing.
    unsafe { _exit(0) }
}

extern "C" fn note_signal(_signum: c_int) {
    // Only an atomic store: the rest happens outside the handler.
    SIGNALLED.store(true, Ordering::SeqCst);
}

extern "C" fn ignore_signal(_signum: c_int) {}

/// Installs the handlers for the chosen behaviour; for `Graceful`/`Serve`, a thread turns the
/// signal into [`stopping`] (at once, or after the grace period).
pub fn install(behaviour: OnSigterm) {
    let handler: extern "C" fn(c_int) = match behaviour {
        OnSigterm::Exit => exit_now,
        OnSigterm::Ignore => ignore_signal,
        OnSigterm::Graceful | OnSigterm::Serve(_) => note_signal,
    };
    for signum in [SIGTERM, SIGINT, SIGUSR1] {
        // SAFETY: installing an async-signal-safe handler; the previous handler is not needed.
        unsafe {
            signal(signum, handler);
        }
    }
    let grace = match behaviour {
        OnSigterm::Graceful => Duration::ZERO,
        OnSigterm::Serve(grace) => grace,
        OnSigterm::Exit | OnSigterm::Ignore => return,
    };
    thread::spawn(move || {
        while !SIGNALLED.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(2));
        }
        if !grace.is_zero() {
            eprintln!(
                "testapp: stop signal received, serving on for {} ms",
                grace.as_millis()
            );
            thread::sleep(grace);
        }
        STOPPING.store(true, Ordering::SeqCst);
    });
}

/// True once the app stopped accepting (a graceful stop began).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// std's `accept` retries on EINTR, so a signal alone cannot unblock it. A watcher thread notices
/// the flag and connects to the listener once, which makes `accept` return and the loop see it.
pub fn wake_accept_on_signal(port: u16) {
    thread::spawn(move || {
        while !stopping() {
            thread::sleep(Duration::from_millis(2));
        }
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let _ = TcpStream::connect_timeout(&address, Duration::from_secs(1));
    });
}

/// Makes a blocked `accept` return once `delay` has passed (the end of the `STOP_DELAY_MS` grace).
pub fn wake_accept_after(port: u16, delay: Duration) {
    if delay.is_zero() {
        return;
    }
    thread::spawn(move || {
        thread::sleep(delay);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let _ = TcpStream::connect_timeout(&address, Duration::from_secs(1));
    });
}
