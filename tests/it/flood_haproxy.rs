//! HAProxies that answer forever: a 100 MB reply, an endless stream of prompts, and a reply that
//! trickles without end. Each is bounded by the client's limits (reply size, reply count,
//! timeout) with a clear error, the daemon's memory stays bounded, and the daemon keeps driving
//! the real HAProxy next to them (a restart under load drains and restores as usual).

use std::path::PathBuf;
use std::time::Duration;

use haproxy_drain::haproxy::{Client, HaproxyAddr, HaproxyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::support::load::Load;
use crate::support::stack::{Stack, StackOptions};

const PEAK_RSS_LIMIT_KIB: u64 = 256 * 1024;

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// 100 MB of data lines, then the prompt.
    Huge,
    /// `> ` again and again: an unbounded number of empty replies.
    EndlessPrompts,
    /// One byte every 20 ms, forever.
    Trickle,
}

struct BadHaproxy {
    how: Misbehaviour,
    _dir: tempfile::TempDir,
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BadHaproxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BadHaproxy {
    fn start(how: Misbehaviour) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hdt-bad-haproxy-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("bad.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(misbehave(stream, how));
            }
        });
        Self {
            how,
            _dir: dir,
            path,
            task,
        }
    }

    fn url(&self) -> String {
        HaproxyAddr::unix(&self.path).to_string()
    }
}

async fn misbehave(mut stream: UnixStream, how: Misbehaviour) {
    // Wait for the request, answer `prompt` like HAProxy, then misbehave.
    let mut request = [0u8; 4096];
    if stream.read(&mut request).await.unwrap_or(0) == 0 {
        return;
    }
    if stream.write_all(b"\n> ").await.is_err() {
        return;
    }
    match how {
        Misbehaviour::Huge => {
            let line = [b"be,web1,0,0,0,0,,0,UP,".as_slice(), &[b'x'; 1000], b"\n"].concat();
            for _ in 0..(100 * 1024 * 1024 / line.len()) {
                if stream.write_all(&line).await.is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"> ").await;
        }
        Misbehaviour::EndlessPrompts => {
            let prompts = b"> ".repeat(32 * 1024);
            while stream.write_all(&prompts).await.is_ok() {}
        }
        Misbehaviour::Trickle => loop {
            if stream.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        },
    }
}

fn own_peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn each_misbehaviour_is_bounded_with_a_clear_error() {
    for how in [
        Misbehaviour::Huge,
        Misbehaviour::EndlessPrompts,
        Misbehaviour::Trickle,
    ] {
        let bad = BadHaproxy::start(how);
        let client = Client::new(HaproxyAddr::unix(&bad.path)).with_timeout(Duration::from_secs(2));
        let started = std::time::Instant::now();
        let peak_before = own_peak_rss_kib();
        let error = client.show_stat().await.unwrap_err();
        let text = error.to_string();
        // Informative only: other tests share this process's peak.
        eprintln!(
            "{how:?}: {:?}, test process peak RSS {peak_before} -> {} KiB: {text}",
            started.elapsed(),
            own_peak_rss_kib()
        );
        assert!(text.contains(&bad.path.display().to_string()), "{text}");
        match how {
            Misbehaviour::Huge => {
                assert!(
                    matches!(error, HaproxyError::ReplyTooLarge { .. }),
                    "{error:?}"
                )
            }
            Misbehaviour::EndlessPrompts => {
                assert!(
                    matches!(error, HaproxyError::Protocol { .. }),
                    "more replies than commands, found early: {error:?}"
                );
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "{:?}",
                    started.elapsed()
                );
            }
            Misbehaviour::Trickle => {
                assert!(matches!(error, HaproxyError::Timeout { .. }), "{error:?}")
            }
        }
    }
}

/// Starts a two-app stack whose daemon also drives `bad` HAProxies, restarts app1 under load,
/// waits until it is back in rotation on the real HAProxy, and returns (failed requests, time
/// from the restart until drained on the real HAProxy, peak RSS KiB).
async fn restart_next_to(bad: &[BadHaproxy], deadline: Duration) -> (u64, Duration, u64) {
    let stack = Stack::start(StackOptions {
        apps: 2,
        daemon_flags: bad
            .iter()
            .map(|b| format!("--haproxy={}", b.url()))
            .collect(),
        wait_ready: false,
        ..StackOptions::default()
    })
    .await;
    // The daemon has read the real HAProxy (its first reconciliation) before the restart.
    let log_has = |needle: String| {
        let daemon = &stack.daemon;
        move || {
            let found = daemon.log().contains(&needle);
            async move { found }
        }
    };
    crate::support::wait::wait_until(
        Duration::from_secs(20),
        "the first reconciliation",
        log_has(format!("server={}", stack.server(1))),
    )
    .await;
    let ready = |s: &haproxy_drain::haproxy::ServerState| {
        s.admin.as_admin_state() == haproxy_drain::haproxy::AdminState::Ready && s.weight > 0
    };
    crate::support::wait::wait_server(
        &stack.client(),
        &stack.server(1),
        Duration::from_secs(20),
        "in rotation before the restart",
        ready,
    )
    .await;
    let load = Load::start(stack.frontend, 6, "/?delay_ms=5");
    crate::support::wait::wait_until(Duration::from_secs(10), "load flowing", || {
        let ok = load.ok();
        async move { ok > 50 }
    })
    .await;
    let started = std::time::Instant::now();
    stack.apps[0].restart(10);
    crate::support::wait::wait_until(
        deadline,
        "the real HAProxy drained the restarting server",
        log_has(format!("drain finished server={}", stack.server(1))),
    )
    .await;
    // Drained, then MAINT while the container is down or (gate passed) DRAIN while its checks
    // run: out of rotation either way, on the real HAProxy.
    crate::support::wait::wait_server(
        &stack.client(),
        &stack.server(1),
        deadline,
        "out of rotation on the real HAProxy",
        |s| s.admin.as_admin_state() != haproxy_drain::haproxy::AdminState::Ready,
    )
    .await;
    let took = started.elapsed();
    // Restored on the real HAProxy: its check passing is enough, the bad ones are down.
    crate::support::wait::wait_server(
        &stack.client(),
        &stack.server(1),
        deadline,
        "back in rotation on the real HAProxy",
        ready,
    )
    .await;
    let report = load.stop().await;
    let (_, peak) = stack.daemon.rss_kib().expect("daemon RSS");
    let log = stack.daemon.log();
    for b in bad {
        assert!(
            log.contains(&b.path.display().to_string()),
            "the log names {}",
            b.url()
        );
    }
    eprintln!("restart next to {bad_kinds:?}: {report:?}, drained on the real HAProxy after {took:?}, daemon peak RSS {peak} KiB", bad_kinds = bad.iter().map(|b| b.how).collect::<Vec<_>>());
    (report.failed, took, peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_driving_the_real_haproxy_next_to_endless_ones() {
    let bad: Vec<BadHaproxy> = [Misbehaviour::Huge, Misbehaviour::EndlessPrompts]
        .into_iter()
        .map(BadHaproxy::start)
        .collect();
    let (failed, _, peak) = restart_next_to(&bad, Duration::from_secs(30)).await;
    assert_eq!(failed, 0, "failed requests");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

/// A HAProxy that never finishes a reply costs its timeout (2 s) until it counts as down (three
/// failed calls in a row); from then on the others are drained and restored without it, and
/// neither the hub nor the other HAProxies wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_haproxy_slows_the_others_but_does_not_stop_them() {
    let bad = vec![BadHaproxy::start(Misbehaviour::Trickle)];
    let (failed, _, peak) = restart_next_to(&bad, Duration::from_secs(30)).await;
    assert_eq!(failed, 0, "failed requests");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}
