//! SIGTERM/SIGINT/SIGUSR1 handling without the libc crate: std links the C library anyway, so two
//! `extern "C"` declarations suffice.
//!
//! As PID 1 in a container, a signal with the default disposition is ignored by the kernel, so
//! the app must install handlers or `docker stop` would wait for its timeout and SIGKILL.

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

/// Set by the graceful handler; read by the accept loop and the connection threads.
static STOPPING: AtomicBool = AtomicBool::new(false);

extern "C" fn exit_now(_signum: c_int) {
    // SAFETY: _exit is async-signal-safe; nothing needs flushing.
    unsafe { _exit(0) }
}

extern "C" fn begin_graceful_stop(_signum: c_int) {
    // Only an atomic store: the rest happens outside the handler.
    STOPPING.store(true, Ordering::SeqCst);
}

/// Installs the handlers for the chosen behaviour.
pub fn install(graceful: bool) {
    let handler: extern "C" fn(c_int) = if graceful {
        begin_graceful_stop
    } else {
        exit_now
    };
    for signum in [SIGTERM, SIGINT, SIGUSR1] {
        // SAFETY: installing an async-signal-safe handler; the previous handler is not needed.
        unsafe {
            signal(signum, handler);
        }
    }
}

/// True once a graceful stop began.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// std's `accept` retries on EINTR, so a signal alone cannot unblock it. A watcher thread notices
/// the flag and connects to the listener once, which makes `accept` return and the loop see it.
pub fn wake_accept_on_signal(port: u16) {
    thread::spawn(move || {
        while !stopping() {
            thread::sleep(Duration::from_millis(10));
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
