//! Polling with a deadline: the only way tests wait for something (never a bare sleep).

#![allow(dead_code)] // each test uses a different helper

use std::future::Future;
use std::time::{Duration, Instant};

/// How often conditions are re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns true; panics naming `what` once `timeout` has passed.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `check` until it yields a value, and returns it; panics naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`wait_until`] for synchronous checks (fixtures that shell out to the docker CLI).
pub fn wait_until_blocking(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Receives from `rx` until `done` says the items collected so far are enough; returns them.
/// Panics naming `what` (and showing what did arrive) after `timeout` or if the channel closes.
pub async fn collect_until<T: std::fmt::Debug>(
    rx: &mut tokio::sync::mpsc::Receiver<T>,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[T]) -> bool,
) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut items = Vec::new();
    while !done(&items) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => items.push(item),
            Ok(None) => panic!("channel closed while waiting for {what}; got {items:#?}"),
            Err(_) => panic!("timed out after {timeout:?} waiting for {what}; got {items:#?}"),
        }
    }
    items
}

/// The server's line of `show servers state`, if HAProxy answers and has it.
pub async fn server_state(
    client: &haproxy_drain::haproxy::Client,
    id: &haproxy_drain::haproxy::ServerId,
) -> Option<haproxy_drain::haproxy::ServerState> {
    client
        .show_servers_state(Some(&id.backend))
        .await
        .ok()?
        .into_iter()
        .find(|s| &s.id == id)
}

/// Polls [`server_state`] until `check` holds; returns that state, panics naming `what` after
/// `timeout`.
pub async fn wait_server(
    client: &haproxy_drain::haproxy::Client,
    id: &haproxy_drain::haproxy::ServerId,
    timeout: Duration,
    what: &str,
    check: impl Fn(&haproxy_drain::haproxy::ServerState) -> bool,
) -> haproxy_drain::haproxy::ServerState {
    let what = format!("{id}: {what}");
    wait_for(timeout, &what, || {
        let state = server_state(client, id);
        let check = &check;
        async move { state.await.filter(|s| check(s)) }
    })
    .await
}
