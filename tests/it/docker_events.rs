//! DockerClient::watch against the real engine: lifecycle sequences arrive converted, in order.

use std::time::Duration;

use haproxy_drain::docker::{ContainerEvent, DockerClient, EventAction, WatchItem};
use haproxy_drain::shutdown;
use tokio::sync::mpsc::Receiver;

use crate::support::docker::{ContainerSpec, IMAGE_HC, IMAGE_NOHC};
use crate::support::wait::collect_until;

const EVENTS_WITHIN: Duration = Duration::from_secs(20);

/// A watcher that has connected (its first item was `Connected`).
pub async fn connected_watch(
    client: &DockerClient,
    shutdown: shutdown::Shutdown,
) -> Receiver<WatchItem> {
    let mut rx = client.watch(shutdown);
    let first = collect_until(&mut rx, EVENTS_WITHIN, "the first Connected", |items| {
        !items.is_empty()
    })
    .await;
    assert_eq!(
        first,
        vec![WatchItem::Connected {
            replayed_since: None
        }]
    );
    rx
}

/// The actions of the events for container `id` among `items`.
pub fn actions_of(items: &[WatchItem], id: &str) -> Vec<EventAction> {
    events_of(items, id)
        .map(|event| event.action.clone())
        .collect()
}

fn events_of<'a>(items: &'a [WatchItem], id: &'a str) -> impl Iterator<Item = &'a ContainerEvent> {
    items.iter().filter_map(move |item| match item {
        WatchItem::Event(event) if event.id == id => Some(event),
        _ => None,
    })
}

/// Receives until the events for `id` end with `expected` (other containers' events are ignored).
async fn expect_actions(
    rx: &mut Receiver<WatchItem>,
    id: &str,
    what: &str,
    expected: &[EventAction],
) {
    let items = collect_until(rx, EVENTS_WITHIN, what, |items| {
        actions_of(items, id).ends_with(expected)
    })
    .await;
    let actions = actions_of(&items, id);
    assert_eq!(
        &actions[actions.len() - expected.len()..],
        expected,
        "{what}"
    );
}

#[tokio::test]
async fn start_health_stop_start_kill_destroy_arrive_in_order() {
    let docker = DockerClient::connect().expect("docker client");
    let (_trigger, shutdown) = shutdown::channel();
    let mut rx = connected_watch(&docker, shutdown).await;

    let app = ContainerSpec::new("ev")
        .image(IMAGE_HC)
        .env("ON_SIGTERM", "exit")
        .run();
    expect_actions(
        &mut rx,
        &app.id,
        "start then healthy",
        &[EventAction::Start, EventAction::Healthy],
    )
    .await;

    app.stop(10);
    let stop = [
        EventAction::Kill { signal: 15 },
        EventAction::Die { exit_code: Some(0) },
        EventAction::Stop,
    ];
    expect_actions(
        &mut rx,
        &app.id,
        "docker stop on an app that exits on TERM",
        &stop,
    )
    .await;

    app.start();
    // Health resets to `starting` on start, so `healthy` comes again; wait for it so that it
    // cannot land between pause and unpause.
    let start = [EventAction::Start, EventAction::Healthy];
    expect_actions(&mut rx, &app.id, "docker start", &start).await;

    app.pause();
    app.unpause();
    expect_actions(
        &mut rx,
        &app.id,
        "pause/unpause",
        &[EventAction::Pause, EventAction::Unpause],
    )
    .await;

    app.kill("KILL");
    let kill = [
        EventAction::Kill { signal: 9 },
        EventAction::Die {
            exit_code: Some(137),
        },
    ];
    expect_actions(&mut rx, &app.id, "docker kill", &kill).await;

    app.remove();
    expect_actions(&mut rx, &app.id, "docker rm", &[EventAction::Destroy]).await;
}

#[tokio::test]
async fn configured_stop_signal_and_unhealthy_arrive_converted() {
    let docker = DockerClient::connect().expect("docker client");
    let (_trigger, shutdown) = shutdown::channel();
    let mut rx = connected_watch(&docker, shutdown).await;

    let usr1 = ContainerSpec::new("usr1")
        .image(IMAGE_NOHC)
        .stop_signal("SIGUSR1")
        .run();
    let sick = ContainerSpec::new("sick")
        .image(IMAGE_HC)
        .env("FAIL_HEALTH", "1")
        .run();

    usr1.stop(10);
    let stop = [
        EventAction::Kill { signal: 10 },
        EventAction::Die { exit_code: Some(0) },
        EventAction::Stop,
    ];
    expect_actions(
        &mut rx,
        &usr1.id,
        "docker stop with --stop-signal SIGUSR1",
        &stop,
    )
    .await;

    let items = collect_until(
        &mut rx,
        EVENTS_WITHIN,
        "health_status: unhealthy",
        |items| actions_of(items, &sick.id).contains(&EventAction::Unhealthy),
    )
    .await;
    let event = events_of(&items, &sick.id)
        .find(|event| event.action == EventAction::Unhealthy)
        .expect("found above");
    assert_eq!(event.name, sick.name());
    assert!(
        event.time_nano > 1_700_000_000_000_000_000,
        "timeNano: {}",
        event.time_nano
    );
    assert_eq!(
        event.attributes.get("image").map(String::as_str),
        Some(IMAGE_HC)
    );
    assert!(
        event.attributes.contains_key("hdt.test"),
        "labels are flattened into the attributes"
    );
}
