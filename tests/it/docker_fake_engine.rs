//! The watcher against a scripted fake engine on a unix socket: shapes a real daemon does not
//! produce on demand (missing fields, unknown actions, malformed lines), the exact `since` sent
//! on reconnect, and de-duplication of the replayed event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use haproxy_drain::docker::{DockerClient, EventAction, WatchItem};
use haproxy_drain::shutdown;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::support::wait::collect_until;

const WITHIN: Duration = Duration::from_secs(10);
const T: i64 = 1_795_675_378_009_795_966;

/// Answers `/_ping`; answers the n-th `/events` request with the n-th script, then closes it.
/// Once the scripts run out, `/events` stays open and silent.
struct FakeEngine {
    _dir: tempfile::TempDir,
    url: String,
    event_requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeEngine {
    fn start(scripts: Vec<Vec<String>>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fake-docker.sock");
        let listener = UnixListener::bind(&path).expect("bind the fake engine");
        let event_requests = Arc::new(Mutex::new(Vec::new()));
        let scripts = Arc::new(Mutex::new(scripts.into_iter()));
        let requests = event_requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, scripts.clone(), requests.clone()));
            }
        });
        Self {
            url: format!("unix://{}", path.display()),
            _dir: dir,
            event_requests,
            task,
        }
    }

    fn event_requests(&self) -> Vec<String> {
        self.event_requests.lock().expect("requests").clone()
    }
}

type Scripts = Arc<Mutex<std::vec::IntoIter<Vec<String>>>>;

async fn serve(conn: UnixStream, scripts: Scripts, requests: Arc<Mutex<Vec<String>>>) {
    let mut conn = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if conn.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if conn.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        if target.ends_with("/_ping") {
            let reply = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";
            if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        requests.lock().expect("requests").push(target);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = conn.get_mut().write_all(head.as_bytes()).await;
        let script = scripts.lock().expect("scripts").next();
        let Some(lines) = script else {
            std::future::pending::<()>().await;
            return;
        };
        for line in lines {
            let chunk = format!("{:x}\r\n{line}\n\r\n", line.len() + 1);
            let _ = conn.get_mut().write_all(chunk.as_bytes()).await;
        }
        // Ends the body mid-stream-style: the connection closes without the final chunk.
        return;
    }
}

fn container_event(id: &str, action: &str, extra: &str, time_nano: i64) -> String {
    format!(
        r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"name":"{id}"{extra}}}}},"scope":"local","time":{},"timeNano":{time_nano}}}"#,
        time_nano / 1_000_000_000
    )
}

fn events_for(items: &[WatchItem]) -> Vec<(&str, &EventAction)> {
    items
        .iter()
        .filter_map(|item| match item {
            WatchItem::Event(event) => Some((event.id.as_str(), &event.action)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn odd_shapes_are_skipped_and_the_replay_starts_at_the_last_event() {
    let first = vec![
        container_event("a", "start", "", T),
        r#"{"Type":"container","Action":"start"}"#.to_string(),
        r#"{"Type":"container","Action":"bogus_action","Actor":{"ID":"b"}}"#.to_string(),
        r#"{"Type":"network","Action":"connect","Actor":{"ID":"n","Attributes":{"container":"a"}}}"#
            .to_string(),
        r#"{"Type":"container","Actor":{"ID":"c"}}"#.to_string(),
        container_event("d", "kill", r#","signal":"nope""#, T + 1),
        container_event("a", "die", r#","exitCode":"137""#, T + 2),
    ];
    let replay = vec![
        container_event("a", "die", r#","exitCode":"137""#, T + 2),
        container_event("e", "start", "", T + 3),
    ];
    let engine = FakeEngine::start(vec![first, replay]);
    let docker = DockerClient::connect_to(&engine.url).expect("client for the fake engine");
    let (_trigger, shutdown) = shutdown::channel();
    let mut rx = docker.watch(shutdown);

    let items = collect_until(&mut rx, WITHIN, "the replayed start of e", |items| {
        events_for(items).contains(&("e", &EventAction::Start))
    })
    .await;

    assert_eq!(
        events_for(&items),
        vec![
            ("a", &EventAction::Start),
            ("b", &EventAction::Other("bogus_action".into())),
            ("d", &EventAction::Kill { signal: 0 }),
            (
                "a",
                &EventAction::Die {
                    exit_code: Some(137)
                }
            ),
            ("e", &EventAction::Start),
        ],
        "odd events skipped, the replayed die not repeated: {items:#?}"
    );
    assert_eq!(
        items.first(),
        Some(&WatchItem::Connected {
            replayed_since: None
        })
    );
    assert!(
        items.contains(&WatchItem::Connected {
            replayed_since: Some(T + 2)
        }),
        "{items:#?}"
    );

    let requests = engine.event_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].contains("since="), "{}", requests[0]);
    assert!(
        requests[0].contains("container"),
        "filtered server-side: {}",
        requests[0]
    );
    assert!(
        requests[1].contains("since=1795675378.009795968"),
        "replay from the last event: {}",
        requests[1]
    );

    let stats = docker.watch_stats();
    assert_eq!(stats.ignored_events, 3, "{stats:?}");
    assert_eq!(stats.replayed_duplicates, 1, "{stats:?}");
}

#[tokio::test]
async fn a_malformed_line_breaks_the_stream_and_the_watcher_recovers() {
    let first = vec![
        container_event("a", "start", "", T),
        r#"{"Type":"brand_new_type","Action":"x"}"#.to_string(),
        container_event("lost", "start", "", T + 1),
    ];
    let second = vec!["{not json".to_string()];
    let third = vec![container_event("b", "stop", "", T + 5)];
    let engine = FakeEngine::start(vec![first, second, third]);
    let docker = DockerClient::connect_to(&engine.url).expect("client for the fake engine");
    let (_trigger, shutdown) = shutdown::channel();
    let mut rx = docker.watch(shutdown);

    let items = collect_until(
        &mut rx,
        WITHIN,
        "the event after two broken streams",
        |items| events_for(items).contains(&("b", &EventAction::Stop)),
    )
    .await;
    let disconnects = items
        .iter()
        .filter(|i| matches!(i, WatchItem::Disconnected { .. }))
        .count();
    assert!(
        disconnects >= 2,
        "each undecodable line breaks the stream: {items:#?}"
    );
    assert_eq!(
        events_for(&items),
        vec![("a", &EventAction::Start), ("b", &EventAction::Stop)]
    );
    assert_eq!(engine.event_requests().len(), 3);
}

#[tokio::test]
async fn a_stream_that_broke_before_any_event_resumes_from_its_own_start() {
    // After the first subscription's `since` (now), or the replay would drop it as already seen.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
        + 60_000_000_000;
    let engine = FakeEngine::start(vec![vec![], vec![container_event("e", "start", "", later)]]);
    let docker = DockerClient::connect_to(&engine.url).expect("client for the fake engine");
    let (_trigger, shutdown) = shutdown::channel();
    let mut rx = docker.watch(shutdown);

    let items = collect_until(&mut rx, WITHIN, "the event after the reconnect", |items| {
        !events_for(items).is_empty()
    })
    .await;
    let requests = engine.event_requests();
    let since = |request: &str| {
        let start = request.find("since=").expect("since") + "since=".len();
        request[start..].split('&').next().unwrap_or("").to_string()
    };
    assert_eq!(
        since(&requests[0]),
        since(&requests[1]),
        "nothing may fall in the gap"
    );
    let Some(WatchItem::Connected {
        replayed_since: Some(resumed),
    }) = items.get(2)
    else {
        panic!("Connected, Disconnected, Connected(Some): {items:#?}");
    };
    let (secs, nanos) = since(&requests[0])
        .split_once('.')
        .map(|(s, n)| (s.to_string(), n.to_string()))
        .expect("secs.nanos");
    assert_eq!(
        format!("{}.{:09}", resumed / 1_000_000_000, resumed % 1_000_000_000),
        format!("{secs}.{nanos}")
    );
}
