//! 1,000 concurrent control requests against a real daemon (`status`, `drain --wait` on one
//! server, `ready`): every one gets an HTTP answer, none is lost, and the daemon's memory stays
//! bounded.

use std::time::{Duration, Instant};

use haproxy_drain::api::wire::{DrainBody, ReadyBody};
use haproxy_drain::api::ClientError;

use crate::support::stack::{Stack, StackOptions};

const REQUESTS: usize = 1_000;
/// Peak RSS allowed for the daemon (KiB). Generous: it idles at ~10–20 MB.
const PEAK_RSS_LIMIT_KIB: u64 = 256 * 1024;

#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    /// Answered with an HTTP error (409 budget/conflict, 504 timeout): answered, not lost.
    refused: Vec<u16>,
    lost: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_control_requests_are_all_answered() {
    let stack = Stack::start(StackOptions {
        apps: 2,
        ..StackOptions::default()
    })
    .await;
    let (rss_before, _) = stack.daemon.rss_kib().expect("daemon RSS");
    let server = stack.server(1).to_string();
    let started = Instant::now();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let client = stack.daemon.client();
            let server = server.clone();
            tokio::spawn(async move {
                let answer: Result<(), ClientError> = match i % 3 {
                    0 => client.servers().await.map(drop),
                    1 => client
                        .drain(&DrainBody {
                            target: server,
                            wait: true,
                            timeout_ms: Some(20_000),
                            force: false,
                        })
                        .await
                        .map(drop),
                    _ => client
                        .ready(&ReadyBody {
                            target: server,
                            wait: false,
                            timeout_ms: None,
                        })
                        .await
                        .map(drop),
                };
                (i % 3, answer)
            })
        })
        .collect();
    let mut tally = [Tally::default(), Tally::default(), Tally::default()];
    for task in tasks {
        let (kind, answer) = task.await.expect("request task");
        match answer {
            Ok(()) => tally[kind].ok += 1,
            Err(ClientError::Api { status, .. }) => tally[kind].refused.push(status),
            Err(other) => tally[kind].lost.push(other.to_string()),
        }
    }
    let elapsed = started.elapsed();
    let (rss_after, peak) = stack.daemon.rss_kib().expect("daemon RSS");
    eprintln!(
        "{REQUESTS} concurrent control requests in {elapsed:?}: status {:?}, drain --wait {:?}, ready {:?}; RSS {rss_before} KiB before, {rss_after} KiB after, peak {peak} KiB",
        tally[0], tally[1], tally[2]
    );
    for (name, t) in ["status", "drain --wait", "ready"].iter().zip(&tally) {
        assert!(t.lost.is_empty(), "{name}: lost requests: {:?}", t.lost);
    }
    let answered: usize = tally.iter().map(|t| t.ok + t.refused.len()).sum();
    assert_eq!(answered, REQUESTS);
    assert_eq!(tally[0].ok, REQUESTS.div_ceil(3), "every status succeeds");
    assert!(
        tally[1].ok > 0,
        "some drain --wait completed: {:?}",
        tally[1]
    );
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");

    // The daemon still works afterwards: the server goes back into rotation on request.
    let client = stack.daemon.client();
    client
        .ready(&ReadyBody {
            target: server,
            wait: true,
            timeout_ms: Some(20_000),
        })
        .await
        .expect("ready --wait after the flood");
    stack.wait_in_rotation(1).await;
    assert!(elapsed < Duration::from_secs(120));
}
