//! An event storm from a fake engine: 10,000 container events for 500 containers in a few
//! seconds, over four streams that each break off, every reconnect answered with a replay that
//! starts earlier than asked (out of order: events the watcher already delivered come again),
//! plus live duplicates. The watcher must deliver every event once (live duplicates aside, which
//! the machine treats idempotently), in order, and end with every container's real last event.
//!
//! This drives the watcher (`DockerClient::watch`) alone, with replays and cuts;
//! `flood_daemon.rs` sends a storm through a whole daemon with 500 servers in a real HAProxy.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use haproxy_drain::docker::{DockerClient, EventAction, WatchItem};
use haproxy_drain::shutdown;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const CONTAINERS: usize = 500;
const EVENTS: usize = 10_000;
const STREAMS: usize = 4;
/// How far back each replay starts before the point the watcher asked for.
const REPLAY_OVERLAP: usize = 700;
const T0: i64 = 1_895_675_378_000_000_000;
const ACTIONS: [&str; 4] = ["kill", "die", "stop", "start"];

fn event_line(i: usize) -> String {
    let id = format!("c{:03}", i % CONTAINERS);
    let action = ACTIONS[(i / CONTAINERS) % ACTIONS.len()];
    let extra = match action {
        "kill" => r#","signal":"15""#,
        "die" => r#","exitCode":"0""#,
        _ => "",
    };
    let time_nano = T0 + i as i64 * 1_000;
    format!(
        r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"name":"{id}","haproxy-drain.backend":"be"{extra}}}}},"scope":"local","time":{},"timeNano":{time_nano}}}"#,
        time_nano / 1_000_000_000
    )
}

/// Stream k: a replay from `REPLAY_OVERLAP` events before its share, then its share with every
/// 50th event sent twice, then the connection closes mid-stream. After the last, silence.
fn script(k: usize) -> Vec<String> {
    let share = EVENTS / STREAMS;
    let from = (k * share).saturating_sub(if k == 0 { 0 } else { REPLAY_OVERLAP });
    let mut lines = Vec::new();
    for i in from..(k + 1) * share {
        lines.push(event_line(i));
        if i % 50 == 0 && i >= k * share {
            lines.push(event_line(i));
        }
    }
    lines
}

async fn serve(conn: UnixStream, next: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let mut conn = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if conn.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if conn.read_line(&mut header).await.unwrap_or(0) == 0 || header.trim().is_empty() {
                break;
            }
        }
        if request_line.contains("/_ping") {
            let reply = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK";
            if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = conn.get_mut().write_all(head.as_bytes()).await;
        let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if k >= STREAMS {
            std::future::pending::<()>().await;
        }
        let mut body = String::new();
        for line in script(k) {
            body.push_str(&format!("{:x}\r\n{line}\n\r\n", line.len() + 1));
        }
        let _ = conn.get_mut().write_all(body.as_bytes()).await;
        return;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_with_replays_and_duplicates_is_delivered_once_and_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("storm.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let engine = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn, next.clone()));
        }
    });
    let docker = DockerClient::connect_to(&format!("unix://{}", path.display())).expect("client");
    let (_trigger, shutdown) = shutdown::channel();
    let mut rx = docker.watch(shutdown);

    let started = Instant::now();
    let mut delivered: Vec<(String, i64)> = Vec::new();
    let mut last: HashMap<String, EventAction> = HashMap::new();
    let mut connects = 0;
    let last_time = T0 + (EVENTS as i64 - 1) * 1_000;
    while delivered.last().map(|(_, t)| *t) != Some(last_time) {
        let item = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("storm stalled after {} events", delivered.len()))
            .expect("watcher alive");
        match item {
            WatchItem::Event(event) => {
                delivered.push((event.id.clone(), event.time_nano));
                last.insert(event.id, event.action);
            }
            WatchItem::Connected { .. } => connects += 1,
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    let stats = docker.watch_stats();
    eprintln!(
        "storm: {} events delivered in {elapsed:?} over {connects} connections; {stats:?}",
        delivered.len()
    );

    // Once each, in order, live duplicates aside.
    let mut unique = delivered.clone();
    unique.dedup();
    let expected: Vec<(String, i64)> = (0..EVENTS)
        .map(|i| (format!("c{:03}", i % CONTAINERS), T0 + i as i64 * 1_000))
        .collect();
    assert_eq!(unique.len(), EVENTS, "every event once");
    assert!(unique == expected, "in order, nothing replayed twice");
    assert_eq!(
        stats.replayed_duplicates as usize,
        REPLAY_OVERLAP * (STREAMS - 1),
        "every out-of-order replayed event dropped"
    );
    assert_eq!(connects, STREAMS);
    // Every container's last event is its real last one (20 events each, ending on `start`).
    assert_eq!(last.len(), CONTAINERS);
    assert!(last.values().all(|a| *a == EventAction::Start), "{last:?}");
    engine.abort();
}
