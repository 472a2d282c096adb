//! The roll runner against a fake controller task and a fake Docker that log every call in
//! order: the step order, batches and failure handling without real containers (the real ones
//! are in roll_e2e and roll_recreate).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use haproxy_drain::controller::handle::{
    ControlError, ControlRequest, DrainReport, ReadyReport, ServerView, SurgeAddReport,
};
use haproxy_drain::controller::{ControllerHandle, Owner, Target, Trigger};
use haproxy_drain::docker::DockerError;
use haproxy_drain::haproxy::types::ServerId;
use haproxy_drain::roll::{
    RollDocker, RollError, RollManager, RollProgress, RollSpec, RollState, StepState,
};
use haproxy_drain::shutdown::Shutdown;
use tokio::sync::mpsc;

use crate::support::wait::wait_for;

type Log = Arc<Mutex<Vec<String>>>;

/// Images that never become healthy in the fake world.
const BAD_IMAGE: &str = "testapp:broken";
/// Healthy, but the post-restore watch fails its server (`status` says `failed`).
const FAILING_IMAGE: &str = "testapp:fails-watch";

struct FakeDocker {
    log: Log,
    images: Vec<String>,
    /// Container → image it runs; shared with the fake controller to decide health.
    running: Arc<Mutex<HashMap<String, String>>>,
    /// Surge copies (container → image) until the swap; shared with the fake controller.
    copies: Arc<Mutex<HashMap<String, String>>>,
}

impl RollDocker for FakeDocker {
    fn check_container<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(async move {
            if self.running.lock().unwrap().contains_key(name) {
                Ok(())
            } else {
                Err(DockerError::ContainerNotFound { name: name.into() })
            }
        })
    }
    fn check_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(async move {
            if self.images.iter().any(|i| i == image) {
                Ok(())
            } else {
                Err(DockerError::ImageMissing {
                    image: image.into(),
                })
            }
        })
    }
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(async move {
            Err(DockerError::Pull {
                image: image.into(),
                message: "no registry".into(),
            })
        })
    }
    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log.lock().unwrap().push(format!("stop {name}"));
        Box::pin(async { Ok(()) })
    }
    fn recreate<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
    ) -> BoxFuture<'a, Result<String, DockerError>> {
        self.log
            .lock()
            .unwrap()
            .push(format!("recreate {name} {image}"));
        self.running
            .lock()
            .unwrap()
            .insert(name.to_string(), image.to_string());
        Box::pin(async { Ok("feedc0ffee00112233".to_string()) })
    }
    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log.lock().unwrap().push(format!("start {name}"));
        Box::pin(async { Ok(()) })
    }
    fn finish_interrupted<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log.lock().unwrap().push(format!("finish {name}"));
        Box::pin(async { Ok(()) })
    }
    fn check_duplicable<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log.lock().unwrap().push(format!("duplicable {name}"));
        Box::pin(async { Ok(()) })
    }
    fn create_surge<'a>(
        &'a self,
        name: &'a str,
        image: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, DockerError>> {
        let image = image.unwrap_or("testapp:v1").to_string();
        self.log
            .lock()
            .unwrap()
            .push(format!("copy {name} {image}"));
        self.copies.lock().unwrap().insert(name.to_string(), image);
        Box::pin(async { Ok("c0b1e5c0b1e5".to_string()) })
    }
    fn swap_in_surge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log.lock().unwrap().push(format!("swap {name}"));
        if let Some(image) = self.copies.lock().unwrap().remove(name) {
            self.running.lock().unwrap().insert(name.to_string(), image);
        }
        Box::pin(async { Ok(()) })
    }
    fn retire_set_aside<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log.lock().unwrap().push(format!("retire {name}"));
        Box::pin(async { Ok(()) })
    }
    fn discard_surge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log.lock().unwrap().push(format!("discard {name}"));
        self.copies.lock().unwrap().remove(name);
        Box::pin(async { Ok(()) })
    }
    fn surge_containers<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<haproxy_drain::docker::surge::SurgeContainers, DockerError>> {
        Box::pin(async {
            Ok(haproxy_drain::docker::surge::SurgeContainers {
                named: Some(true),
                copy: None,
                set_aside: None,
            })
        })
    }
    fn image_id<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, DockerError>> {
        Box::pin(async move { Ok(self.running.lock().unwrap().get(name).cloned()) })
    }
    fn finish_interrupted_surge<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>> {
        self.log
            .lock()
            .unwrap()
            .push(format!("finish surge {name}"));
        Box::pin(async { Ok(()) })
    }
}

fn view(container: &str) -> ServerView {
    ServerView {
        backend: "be".into(),
        server: container.into(),
        container: Some(container.into()),
        addr: "172.18.0.2".into(),
        port: Some(8080),
        state: "UP".into(),
        weight: 10,
        initial_weight: 10,
        sessions: 0,
        check: "L7OK".into(),
        owner: Owner::None,
        phase: "in_rotation".into(),
    }
}

fn server_of(target: &Target) -> ServerId {
    match target {
        Target::Container(name) => ServerId::new("be", name),
        Target::Server(id) => id.clone(),
    }
}

/// Answers like the controller: drains at once, `ready` times out for containers on BAD_IMAGE
/// and answers NotFound once for each recreated container.
fn fake_controller(
    log: Log,
    running: Arc<Mutex<HashMap<String, String>>>,
    copies: Arc<Mutex<HashMap<String, String>>>,
) -> ControllerHandle {
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut not_yet_seen = std::collections::HashSet::new();
        while let Some(request) = rx.recv().await {
            match request {
                ControlRequest::Status { reply } => {
                    let running = running.lock().unwrap().clone();
                    let views = running.iter().map(|(name, image)| ServerView {
                        phase: if image == FAILING_IMAGE {
                            "failed".into()
                        } else {
                            "in_rotation".into()
                        },
                        ..view(name)
                    });
                    let _ = reply.send(views.collect());
                }
                ControlRequest::Drain { request, reply } => {
                    assert_eq!(request.trigger, Trigger::Roll);
                    assert!(request.wait && !request.sticky && !request.force);
                    let server = server_of(&request.target);
                    log.lock().unwrap().push(format!("drain {}", server.server));
                    let _ = reply.send(Ok(DrainReport {
                        server,
                        container: None,
                        drained: true,
                        sessions_left: 0,
                        elapsed_ms: 1,
                    }));
                }
                ControlRequest::Ready { request, reply } => {
                    let server = server_of(&request.target);
                    let image = running.lock().unwrap().get(&server.server).cloned();
                    // Like the real controller right after a recreate: the new container's
                    // events are not processed yet, so the first ask does not find it.
                    let recreated = image.as_deref() != Some("testapp:v1");
                    if recreated && not_yet_seen.insert(server.server.clone()) {
                        let _ = reply.send(Err(ControlError::NotFound(request.target.to_string())));
                        continue;
                    }
                    log.lock().unwrap().push(format!("ready {}", server.server));
                    let answer = if image.as_deref() == Some(BAD_IMAGE) {
                        Err(ControlError::ReadyTimeout {
                            server,
                            waited_ms: 50,
                            reason: "container is unhealthy".into(),
                        })
                    } else {
                        Ok(ReadyReport {
                            server,
                            container: None,
                            in_rotation: true,
                            elapsed_ms: 1,
                        })
                    };
                    let _ = reply.send(answer);
                }
                ControlRequest::SurgeAdd {
                    container, reply, ..
                } => {
                    log.lock().unwrap().push(format!("admit {container}"));
                    let server = ServerId::new("be", format!("{container}.haproxy-drain-new"));
                    let bad = copies.lock().unwrap().get(&container).map(String::as_str)
                        == Some(BAD_IMAGE);
                    let answer = if bad {
                        Err(ControlError::ReadyTimeout {
                            server,
                            waited_ms: 50,
                            reason: "the daemon's probe of the copy never passed".into(),
                        })
                    } else {
                        Ok(SurgeAddReport {
                            server,
                            weight: 10,
                            probe_ms: 1,
                            check_ms: 1,
                            elapsed_ms: 2,
                        })
                    };
                    let _ = reply.send(answer);
                }
                ControlRequest::SurgeRemove { server, reply, .. } => {
                    log.lock()
                        .unwrap()
                        .push(format!("unadmit {}", server.server));
                    let _ = reply.send(Ok(()));
                }
                ControlRequest::Adopt { container, reply } => {
                    log.lock().unwrap().push(format!("adopt {container}"));
                    let _ = reply.send(Ok(ServerId::new("be", container)));
                }
                // The hub's own requeue and the fleet status: not used by a roll.
                ControlRequest::DrainHoldingSlot { reply, .. } => {
                    let _ = reply.send(Err(ControlError::Unavailable));
                }
                ControlRequest::FleetStatus { reply } => {
                    let _ = reply.send(None);
                }
            }
        }
    });
    ControllerHandle::new(tx)
}

struct World {
    manager: RollManager,
    log: Log,
}

fn world() -> World {
    let log: Log = Arc::default();
    let running: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(
        ["a", "b", "c"]
            .iter()
            .map(|n| (n.to_string(), "testapp:v1".to_string()))
            .collect(),
    ));
    let copies: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let docker = FakeDocker {
        log: log.clone(),
        images: vec![
            "testapp:v1".into(),
            "testapp:v2".into(),
            BAD_IMAGE.into(),
            FAILING_IMAGE.into(),
        ],
        running: running.clone(),
        copies: copies.clone(),
    };
    let controller = fake_controller(log.clone(), running, copies);
    World {
        manager: RollManager::new(controller, Arc::new(docker), Shutdown::never()),
        log,
    }
}

fn spec(containers: &[&str], image: Option<&str>, max_unavailable: usize) -> RollSpec {
    RollSpec {
        containers: containers.iter().map(|c| c.to_string()).collect(),
        image: image.map(str::to_string),
        pull: false,
        max_unavailable,
        step_timeout: Duration::from_secs(1),
        surge: false,
        max_surge: 1,
        watch: None,
        rollback_on_failure: false,
    }
}

fn surge_spec(containers: &[&str], image: Option<&str>, max_surge: usize) -> RollSpec {
    RollSpec {
        surge: true,
        max_surge,
        ..spec(containers, image, 1)
    }
}

async fn finished(manager: &RollManager, id: &str) -> RollProgress {
    wait_for(Duration::from_secs(5), "the roll to finish", || async {
        let progress = manager.progress(id).expect("roll is known");
        (progress.state != RollState::Running).then_some(progress)
    })
    .await
}

fn log_of(world: &World) -> Vec<String> {
    world.log.lock().unwrap().clone()
}

#[tokio::test]
async fn rolls_one_container_after_another_in_step_order() {
    let world = world();
    let id = world
        .manager
        .start(spec(&["a", "b", "c"], Some("testapp:v2"), 1))
        .unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(progress.state, RollState::Succeeded, "{progress:?}");
    let mut expected = Vec::new();
    for c in ["a", "b", "c"] {
        for action in ["drain", "stop", "recreate", "start", "ready"] {
            expected.push(match action {
                "recreate" => format!("recreate {c} testapp:v2"),
                _ => format!("{action} {c}"),
            });
        }
    }
    assert_eq!(log_of(&world), expected);
    assert_eq!(progress.steps.len(), 1 + 3 * 5);
    assert!(progress.steps.iter().all(|s| s.state == StepState::Done));
}

#[tokio::test]
async fn without_an_image_the_container_is_restarted_not_recreated() {
    let world = world();
    let id = world.manager.start(spec(&["b"], None, 1)).unwrap();
    assert_eq!(
        finished(&world.manager, &id).await.state,
        RollState::Succeeded
    );
    assert_eq!(log_of(&world), ["drain b", "stop b", "start b", "ready b"]);
}

#[tokio::test]
async fn a_container_that_never_gets_healthy_stops_the_roll() {
    let world = world();
    let id = world
        .manager
        .start(spec(&["a", "b", "c"], Some(BAD_IMAGE), 1))
        .unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(progress.state, RollState::Failed);
    assert_eq!(
        log_of(&world),
        [
            "drain a",
            "stop a",
            "recreate a testapp:broken",
            "start a",
            "ready a"
        ]
    );
    let error = progress.error.unwrap();
    assert!(
        error.starts_with("a: ready failed: be/a is not back in rotation"),
        "{error}"
    );
    assert!(error.ends_with("not touched: b, c"), "{error}");
    assert_eq!(progress.steps.last().unwrap().state, StepState::Failed);
}

#[tokio::test]
async fn a_missing_image_or_container_fails_before_anything_is_touched() {
    let world = world();
    let id = world
        .manager
        .start(spec(&["a", "b"], Some("testapp:nope"), 1))
        .unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(progress.state, RollState::Failed);
    assert!(progress
        .error
        .unwrap()
        .contains("image testapp:nope is not present"));

    let id = world.manager.start(spec(&["a", "zz"], None, 1)).unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(
        progress.error.as_deref(),
        Some("preflight failed: container zz does not exist")
    );
    assert!(log_of(&world).is_empty(), "{:?}", log_of(&world));
}

#[tokio::test]
async fn pull_errors_are_reported() {
    let world = world();
    let mut pull = spec(&["a"], Some("testapp:v2"), 1);
    pull.pull = true;
    let id = world.manager.start(pull).unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(
        progress.error.as_deref(),
        Some("pull failed: pulling image testapp:v2 failed: no registry")
    );
}

#[tokio::test]
async fn max_unavailable_takes_containers_in_batches() {
    let world = world();
    let id = world
        .manager
        .start(spec(&["a", "b", "c"], None, 2))
        .unwrap();
    assert_eq!(
        finished(&world.manager, &id).await.state,
        RollState::Succeeded
    );
    let log = log_of(&world);
    let at = |entry: &str| log.iter().position(|e| e == entry).unwrap();
    assert!(at("drain b") < at("ready a"), "{log:?}");
    assert!(
        at("drain c") > at("ready a") && at("drain c") > at("ready b"),
        "{log:?}"
    );
}

#[tokio::test]
async fn bad_specs_and_overlapping_rolls_are_refused() {
    let world = world();
    assert!(matches!(
        world.manager.start(spec(&[], None, 1)),
        Err(RollError::Invalid(_))
    ));
    assert!(matches!(
        world.manager.start(spec(&["a"], None, 0)),
        Err(RollError::Invalid(_))
    ));
    assert!(matches!(
        world.manager.start(spec(&["a", "a"], None, 1)),
        Err(RollError::Invalid(_))
    ));
    let first = world.manager.start(spec(&["a", "b"], None, 1)).unwrap();
    // The runner task has not run yet on this single-threaded runtime: the roll is running.
    let overlap = world.manager.start(spec(&["c", "b"], None, 1)).unwrap_err();
    assert_eq!(
        overlap.to_string(),
        format!("roll {first} is still running on b; wait for it to finish")
    );
    assert_eq!(
        finished(&world.manager, &first).await.state,
        RollState::Succeeded
    );
    assert!(world.manager.progress("roll-999").is_none());
}

#[tokio::test]
async fn a_surge_admits_the_copy_before_the_old_server_is_drained() {
    let w = world();
    let id = w
        .manager
        .start(surge_spec(&["a", "b"], Some("testapp:v2"), 1))
        .unwrap();
    let progress = finished(&w.manager, &id).await;
    assert_eq!(progress.state, RollState::Succeeded, "{progress:?}");
    let per_container = |c: &str| {
        [
            format!("copy {c} testapp:v2"),
            format!("admit {c}"),
            format!("drain {c}"),
            format!("swap {c}"),
            format!("adopt {c}"),
            format!("ready {c}"),
        ]
    };
    let log = w.log.lock().unwrap().clone();
    let position = |line: &str| {
        log.iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line} in {log:?}"))
    };
    for c in ["a", "b"] {
        let steps = per_container(c);
        for pair in steps.windows(2) {
            assert!(
                position(&pair[0]) < position(&pair[1]),
                "{pair:?} in {log:?}"
            );
        }
        // The temporary server and the old container go after the server is back.
        assert!(position(&format!("ready {c}")) < position(&format!("retire {c}")));
        assert!(position(&format!("ready {c}")) < position(&format!("unadmit {c}")));
    }
    // b's copy is made while a is admitted; b enters HAProxy only once a's server is back.
    assert!(
        position("copy b testapp:v2") < position("ready a"),
        "{log:?}"
    );
    assert!(position("ready a") < position("admit b"), "{log:?}");
    assert!(
        !log.iter().any(|l| l.starts_with("stop")),
        "a surge never stops the container under its name"
    );
}

#[tokio::test]
async fn a_copy_that_never_gets_healthy_is_removed_and_the_old_one_keeps_serving() {
    let w = world();
    let id = w
        .manager
        .start(surge_spec(&["a", "b"], Some(BAD_IMAGE), 1))
        .unwrap();
    let progress = finished(&w.manager, &id).await;
    assert_eq!(progress.state, RollState::Failed);
    let error = progress.error.unwrap_or_default();
    assert!(error.contains("a: admit failed"), "{error}");
    assert!(
        error.contains("copy was removed and a keeps serving"),
        "{error}"
    );
    assert!(error.contains("not touched: b"), "{error}");
    let log = w.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "duplicable a".to_string(),
            "duplicable b".to_string(),
            format!("copy a {BAD_IMAGE}"),
            "admit a".to_string(),
            // b's copy was made ahead while a was admitted; the roll stops, so it goes again.
            format!("copy b {BAD_IMAGE}"),
            "unadmit a".to_string(),
            "discard a".to_string(),
            "unadmit b".to_string(),
            "discard b".to_string(),
        ]
    );
}

#[tokio::test]
async fn max_surge_replaces_containers_in_batches() {
    let w = world();
    let id = w
        .manager
        .start(surge_spec(&["a", "b", "c"], None, 2))
        .unwrap();
    let progress = finished(&w.manager, &id).await;
    assert_eq!(progress.state, RollState::Succeeded, "{progress:?}");
    let log = w.log.lock().unwrap().clone();
    let position = |line: &str| {
        log.iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line} in {log:?}"))
    };
    // a and b together: both copies exist before either is retired; c enters HAProxy only once
    // both servers are back (its copy is made ahead, their retire runs beside c's steps).
    assert!(position("copy b testapp:v1") < position("retire a"));
    assert!(position("ready a") < position("admit c"));
    assert!(position("ready b") < position("admit c"));
    assert!(position("retire c") > position("ready c"));
    let zero = w.manager.start(surge_spec(&["a"], None, 0));
    assert!(matches!(zero, Err(RollError::Invalid(_))), "{zero:?}");
}

fn watched(containers: &[&str], image: &str, rollback_on_failure: bool) -> RollSpec {
    RollSpec {
        watch: Some(Duration::from_millis(300)),
        rollback_on_failure,
        ..spec(containers, Some(image), 1)
    }
}

#[tokio::test]
async fn a_failed_watch_stops_the_roll_naming_the_server() {
    let world = world();
    let id = world
        .manager
        .start(watched(&["a", "b", "c"], FAILING_IMAGE, false))
        .unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(progress.state, RollState::Failed);
    let error = progress.error.unwrap();
    assert!(
        error.starts_with("a: watch failed: be/a failed the post-restore watch"),
        "{error}"
    );
    assert!(error.ends_with("not touched: b, c"), "{error}");
    assert_eq!(
        log_of(&world),
        [
            "drain a",
            "stop a",
            "recreate a testapp:fails-watch",
            "start a",
            "ready a"
        ]
    );
}

#[tokio::test]
async fn a_watch_that_passes_lets_the_roll_go_on_after_the_window() {
    let world = world();
    let started = std::time::Instant::now();
    let id = world
        .manager
        .start(watched(&["a", "b"], "testapp:v2", false))
        .unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(progress.state, RollState::Succeeded, "{progress:?}");
    let watches = progress.steps.iter().filter(|s| s.kind.as_str() == "watch");
    assert_eq!(watches.count(), 2);
    // Each container waits its window (300 ms) plus the grace for a last verdict.
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn rollback_on_failure_recreates_the_previous_image_and_readies_it() {
    let world = world();
    let id = world
        .manager
        .start(watched(&["a", "b"], FAILING_IMAGE, true))
        .unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(progress.state, RollState::Failed);
    let error = progress.error.unwrap();
    assert!(
        error.contains("be/a failed the post-restore watch")
            && error.contains("rolled back: a runs its previous image testapp:v1 again")
            && error.ends_with("not touched: b"),
        "{error}"
    );
    assert_eq!(
        log_of(&world),
        [
            "drain a",
            "stop a",
            "recreate a testapp:fails-watch",
            "start a",
            "ready a",
            "stop a",
            "recreate a testapp:v1",
            "start a",
            "ready a"
        ]
    );
}

#[tokio::test]
async fn without_watch_a_roll_does_not_go_past_a_failed_server() {
    let world = world();
    let id = world
        .manager
        .start(spec(&["a", "b"], Some(FAILING_IMAGE), 1))
        .unwrap();
    let progress = finished(&world.manager, &id).await;
    assert_eq!(progress.state, RollState::Failed);
    let error = progress.error.unwrap();
    assert!(
        error.starts_with("a: be/a failed the post-restore watch"),
        "{error}"
    );
    assert!(error.ends_with("not touched: b"), "{error}");
    assert!(
        !log_of(&world).iter().any(|l| l.ends_with(" b")),
        "{:?}",
        log_of(&world)
    );
}
