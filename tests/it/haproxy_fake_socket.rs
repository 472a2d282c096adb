//! The client against misbehaving peers (a fake stats socket in the test): malformed, endless and
//! missing replies, and connect failures. A real HAProxy cannot be made to do these.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use haproxy_drain::haproxy::{
    Client, Command, CommandError, HaproxyAddr, HaproxyError, Reply, ServerId, WeightSpec,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// A fake socket in its own temp dir; `serve` decides what each connection gets.
struct Fake {
    _dir: tempfile::TempDir,
    path: PathBuf,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    fn start<F, Fut>(serve: F) -> Fake
    where
        F: Fn(UnixStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let dir = tempfile::Builder::new()
            .prefix("hdt-fake-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        Fake {
            _dir: dir,
            path,
            connections,
            task,
        }
    }

    fn client(&self) -> Client {
        Client::new(HaproxyAddr::unix(&self.path))
    }
}

/// Answers each line in prompt mode with `reply(line)` and a prompt; closes on `quit`.
async fn prompt_mode(stream: UnixStream, reply: fn(&str) -> String) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match line.as_str() {
            "prompt" => "\n> ".to_string(),
            "quit" => return,
            other => format!("{}> ", reply(other)),
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn malformed_replies_are_typed_errors() {
    let fake = Fake::start(|s| prompt_mode(s, |_| "Pid: not-a-number\nsomething else\n".into()));
    let error = fake.client().show_info().await.unwrap_err();
    assert!(
        matches!(
            error,
            HaproxyError::Command(CommandError::UnexpectedReply { .. })
        ),
        "{error:?}"
    );
    let weight = fake
        .client()
        .get_weight(&ServerId::new("be", "web1"))
        .await
        .unwrap_err();
    assert!(weight.to_string().contains("get weight"), "{weight}");
}

#[tokio::test]
async fn a_peer_that_is_not_a_haproxy_cli_is_a_protocol_error() {
    let fake = Fake::start(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let error = fake.client().show_info().await.unwrap_err();
    assert!(matches!(error, HaproxyError::Protocol { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&fake.path.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn an_endless_reply_stops_at_the_size_limit() {
    let fake = Fake::start(|mut s| async move {
        let _ = s.write_all(b"\n> ").await;
        let block = vec![b'x'; 64 * 1024];
        while s.write_all(&block).await.is_ok() {}
    });
    let client = fake
        .client()
        .with_max_reply_bytes(1024 * 1024)
        .with_timeout(Duration::from_secs(10));
    let error = client.show_stat().await.unwrap_err();
    assert!(
        matches!(
            error,
            HaproxyError::ReplyTooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_silent_peer_times_out() {
    let fake = Fake::start(|s| async move {
        // Accept, read nothing, answer nothing, keep the connection open.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let started = Instant::now();
    let error = fake
        .client()
        .with_timeout(Duration::from_millis(300))
        .show_info()
        .await
        .unwrap_err();
    assert!(
        matches!(error, HaproxyError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_batch_of_800_commands_uses_one_connection() {
    let fake = Fake::start(|s| prompt_mode(s, |_| "\n".into()));
    let commands: Vec<Command> = (0..800)
        .map(|i| {
            Command::SetWeight(
                ServerId::new("be", format!("s{i}")),
                WeightSpec::Absolute(1),
            )
        })
        .collect();
    let results = fake.client().batch(&commands).await.unwrap();
    assert_eq!(results.len(), 800);
    assert!(results.iter().all(|r| *r == Ok(Reply::Done)));
    assert_eq!(fake.connections.load(Ordering::SeqCst), 1);
    assert!(fake.client().batch(&[]).await.unwrap().is_empty());
    assert_eq!(
        fake.connections.load(Ordering::SeqCst),
        1,
        "an empty batch does not connect"
    );
}

#[tokio::test]
async fn connect_failures_name_the_socket_and_the_likely_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = HaproxyAddr::unix(dir.path().join("missing.sock"));
    let error = Client::new(missing.clone()).show_info().await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, HaproxyError::Connect { .. }), "{error:?}");
    assert!(
        message.contains(&missing.to_string()) && message.contains("is HAProxy running"),
        "{message}"
    );

    // A socket file nobody listens on any more: what a stopped HAProxy leaves behind.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let error = Client::new(HaproxyAddr::unix(&stale))
        .show_info()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("stale socket"), "{error}");
}
