//! The event watcher survives a broken stream: through a socket proxy the test cuts, events that
//! happen while disconnected are replayed after the reconnect (`since`), without duplicates.

use std::time::Duration;

use haproxy_drain::docker::{DockerClient, EventAction, WatchItem};
use haproxy_drain::shutdown;
use tokio::sync::mpsc::error::TryRecvError;

use crate::docker_events::{actions_of, connected_watch};
use crate::support::docker::{ContainerSpec, IMAGE_NOHC};
use crate::support::proxy::{refusing_socket, SocketProxy};
use crate::support::wait::{collect_until, wait_until, wait_until_blocking};

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_cut_stream_reconnects_and_replays_the_kill_that_happened_meanwhile() {
    let proxy = SocketProxy::start();
    let docker = DockerClient::connect_to(&proxy.url()).expect("client through the proxy");
    let (_trigger, shutdown) = shutdown::channel();
    let mut rx = connected_watch(&docker, shutdown).await;

    let app = ContainerSpec::new("cut").image(IMAGE_NOHC).run();
    let before = collect_until(&mut rx, WITHIN, "the start event", |items| {
        actions_of(items, &app.id).contains(&EventAction::Start)
    })
    .await;

    // Break the stream and keep the engine unreachable while the container is killed, so the
    // kill can only reach us through replay.
    proxy.pause();
    assert!(proxy.cut_all() >= 1, "the /events stream was live");
    app.kill("KILL");
    wait_until_blocking(WITHIN, "the container to exit", || app.status() == "exited");
    wait_until(WITHIN, "a failed reconnect attempt", || async {
        docker.watch_stats().connect_failures >= 1
    })
    .await;
    proxy.resume();

    let after = collect_until(
        &mut rx,
        WITHIN,
        "disconnect, reconnect, kill and die",
        |items| {
            let actions = actions_of(items, &app.id);
            items
                .iter()
                .any(|item| matches!(item, WatchItem::Disconnected { .. }))
                && items.iter().any(|item| {
                    matches!(
                        item,
                        WatchItem::Connected {
                            replayed_since: Some(_)
                        }
                    )
                })
                && actions.contains(&EventAction::Kill { signal: 9 })
                && actions.contains(&EventAction::Die {
                    exit_code: Some(137),
                })
        },
    )
    .await;

    let all: Vec<WatchItem> = before.into_iter().chain(after.iter().cloned()).collect();
    let starts = actions_of(&all, &app.id)
        .iter()
        .filter(|a| **a == EventAction::Start)
        .count();
    assert_eq!(
        starts, 1,
        "the replay must not repeat events already delivered: {all:#?}"
    );

    let disconnects = after
        .iter()
        .filter(|item| matches!(item, WatchItem::Disconnected { .. }))
        .count();
    assert_eq!(
        disconnects, 1,
        "one outage is announced once, however many attempts failed"
    );

    let stats = docker.watch_stats();
    assert!(stats.connects >= 2 && stats.disconnects >= 1, "{stats:?}");
    assert!(stats.events >= 3, "{stats:?}");
}

#[tokio::test]
async fn an_unreachable_engine_is_announced_once_and_shutdown_ends_the_watcher() {
    let (_dir, dead) = refusing_socket();
    let docker = DockerClient::connect_to(&dead).expect("the socket file exists");
    let (trigger, shutdown) = shutdown::channel();
    let mut rx = docker.watch(shutdown);

    let first = collect_until(&mut rx, WITHIN, "Disconnected", |items| !items.is_empty()).await;
    let [WatchItem::Disconnected { error }] = first.as_slice() else {
        panic!("expected one Disconnected, got {first:?}");
    };
    assert!(error.contains(&dead), "{error}");

    // 100 + 200 + 400 ms of backoff: at least three more failed attempts.
    wait_until(WITHIN, "retries with backoff", || async {
        docker.watch_stats().connect_failures >= 4
    })
    .await;
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "no second Disconnected"
    );

    trigger.fire();
    let closed = tokio::time::timeout(WITHIN, rx.recv())
        .await
        .expect("the watcher stops");
    assert_eq!(closed, None, "the channel closes on shutdown");
}
