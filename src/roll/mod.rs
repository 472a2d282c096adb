//! `roll`: replace a host's containers one after another (or N at a time) with no request lost.
//!
//! For each container: drain and wait for 0 sessions → stop → recreate with the new image (or
//! keep the container when no image is given) → start → wait until the controller has it back in
//! rotation. The first failure stops the roll: the failed server stays out of rotation, the
//! containers not yet reached are untouched. Nothing is touched before the preflight passed
//! (every container exists and is mapped, the image is present).
//!
//! A container is named in the state file from its stop until it runs again: a daemon killed in
//! that window brings it back at its next start ([`RollManager::finish_interrupted`]), renaming
//! a container that a recreate had set aside when its replacement did not exist yet.
//!
//! Docker I/O goes through [`RollDocker`] (implemented by [`crate::docker::DockerClient`]),
//! HAProxy only through the controller, so the runner is tested with fakes of both.

mod progress;
mod recover;
mod run;
mod surge;
mod watch_step;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use progress::{RollProgress, RollRecorder, RollState, RollStep, StepKind, StepState};

use crate::controller::ControllerHandle;
use crate::docker::{DockerClient, DockerError};
use crate::ownership::OwnershipStore;
use crate::shutdown::Shutdown;

/// Per-step limit when a roll request gives none: the drain wait, and the wait until healthy.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Finished rolls kept for `GET /v1/rolls/{id}`.
const KEEP_FINISHED: usize = 32;

/// What to roll and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollSpec {
    pub containers: Vec<String>,
    /// Recreate with this image; restart (stop + start) when `None`.
    pub image: Option<String>,
    pub pull: bool,
    pub max_unavailable: usize,
    pub step_timeout: Duration,
    /// Start each replacement beside the running container first (see [`surge`]).
    pub surge: bool,
    /// With `surge`: how many containers are replaced at once.
    pub max_surge: usize,
    /// After each container: wait this long for the post-restore watch (its `watch` window)
    /// before the next one; a failed verdict stops the roll (see [`watch_step`]).
    pub watch: Option<Duration>,
    /// With `image` and `watch`: a container that fails its watch (or does not come back) is
    /// recreated on the image it ran before.
    pub rollback_on_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollError {
    #[error("invalid roll request: {0}")]
    Invalid(String),
    #[error("roll {roll} is still running on {containers}; wait for it to finish")]
    Overlap { roll: String, containers: String },
    #[error("rolls are not available: haproxy-drain runs without a Docker connection")]
    Unavailable,
}

/// The Docker operations a roll performs; object-safe so the manager can hold any of them.
pub trait RollDocker: Send + Sync {
    /// The container exists (running or not).
    fn check_container<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    fn check_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Replace the stopped container with one from `image`; not started. Returns the new id.
    fn recreate<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
    ) -> BoxFuture<'a, Result<String, DockerError>>;
    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// `--surge`: fails with [`DockerError::NotDuplicable`] when the container cannot run twice.
    fn check_duplicable<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// `--surge`: create and start a copy of the running container beside it; returns its id.
    fn create_surge<'a>(
        &'a self,
        name: &'a str,
        image: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, DockerError>>;
    /// The copy takes the name; the old container is set aside (still running).
    fn swap_in_surge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Stops and removes the container set aside by the swap.
    fn retire_set_aside<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Removes the copy, if any.
    fn discard_surge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// What exists under the container's name and its two temporary names.
    fn surge_containers<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<crate::docker::surge::SurgeContainers, DockerError>>;
    /// Finishes or undoes the Docker side of a surge haproxy-drain was killed in.
    fn finish_interrupted_surge<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Brings back a container a roll had stopped (or set aside) when haproxy-drain died:
    /// afterwards it exists under its name and runs.
    fn finish_interrupted<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// The image ID the container runs, for `--rollback-on-failure`; `None`: unknown.
    fn image_id<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, DockerError>> {
        let _ = name;
        Box::pin(async { Ok(None) })
    }
}

impl RollDocker for DockerClient {
    fn image_id<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, DockerError>> {
        Box::pin(async move { DockerClient::image_id(self, name).await.map(Some) })
    }
    fn check_container<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(self.require_container(name))
    }
    fn check_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(self.require_image(image))
    }
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(DockerClient::pull(self, image))
    }
    /// With the container's own stop timeout, as `docker stop` does.
    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(DockerClient::stop(self, name, None))
    }
    fn recreate<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
    ) -> BoxFuture<'a, Result<String, DockerError>> {
        Box::pin(DockerClient::recreate(self, name, image))
    }
    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(DockerClient::start(self, name))
    }
    fn check_duplicable<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(DockerClient::require_duplicable(self, name))
    }
    fn create_surge<'a>(
        &'a self,
        name: &'a str,
        image: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, DockerError>> {
        Box::pin(DockerClient::create_surge(self, name, image))
    }
    fn swap_in_surge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(DockerClient::swap_in_surge(self, name))
    }
    fn retire_set_aside<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(DockerClient::retire_set_aside(self, name))
    }
    fn discard_surge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(DockerClient::discard_surge(self, name))
    }
    fn surge_containers<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<crate::docker::surge::SurgeContainers, DockerError>> {
        Box::pin(DockerClient::surge_containers(self, name))
    }
    fn finish_interrupted_surge<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(async move {
            let ops = DockerClient::finish_interrupted_surge(self, name).await?;
            if !ops.is_empty() {
                tracing::warn!(
                    container = name,
                    ?ops,
                    "finished the surge an earlier run of haproxy-drain was killed in"
                );
            }
            Ok(())
        })
    }
    fn finish_interrupted<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(async move {
            let ops = self.finish_interrupted_roll(name).await?;
            if !ops.is_empty() {
                tracing::warn!(
                    container = name,
                    ?ops,
                    "finished the roll step an earlier run of haproxy-drain was killed in"
                );
            }
            Ok(())
        })
    }
}

/// Starts rolls in the background and keeps their progress; cheap to clone.
#[derive(Clone)]
pub struct RollManager {
    inner: Arc<Inner>,
}

struct Inner {
    controller: ControllerHandle,
    docker: Arc<dyn RollDocker>,
    shutdown: Shutdown,
    next_id: AtomicU64,
    rolls: Mutex<Vec<RollRecorder>>,
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
    journal: std::sync::OnceLock<Arc<OwnershipStore>>,
    /// Why `--surge` cannot work here (pull mode has no `add server`), set once at start-up.
    no_surge: std::sync::OnceLock<String>,
}

impl RollManager {
    pub fn new(
        controller: ControllerHandle,
        docker: Arc<dyn RollDocker>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                controller,
                docker,
                shutdown,
                next_id: AtomicU64::new(1),
                rolls: Mutex::new(Vec::new()),
                metrics: std::sync::OnceLock::new(),
                journal: std::sync::OnceLock::new(),
                no_surge: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Counts containers rolled and rolls finished in these metrics (set once, at start-up).
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// Refuses `roll --surge` up front with this reason (set once, at start-up).
    pub fn refuse_surge(&self, reason: String) {
        let _ = self.inner.no_surge.set(reason);
    }

    /// Records every container from its stop until it runs again in this state file (set once,
    /// at start-up), so that [`finish_interrupted`](Self::finish_interrupted) can bring it back.
    pub fn set_journal(&self, store: Arc<OwnershipStore>) {
        let _ = self.inner.journal.set(store);
    }

    /// At start-up: every container the last run's rolls left stopped or set aside exists under
    /// its name and runs again; the reconciliation then restores its server as usual. A
    /// container Docker cannot bring back stays recorded for the next start.
    pub async fn finish_interrupted(&self) {
        let Some(journal) = self.inner.journal.get() else {
            return;
        };
        for name in journal.rolling().await {
            match self.inner.docker.finish_interrupted(&name).await {
                Ok(()) => {}
                Err(DockerError::ContainerNotFound { .. }) => {
                    tracing::warn!(
                        container = name,
                        "a container an earlier roll was replacing no longer exists; forgotten"
                    );
                }
                Err(error) => {
                    tracing::error!(container = name, %error, "cannot bring back a container an earlier roll had stopped; retried at the next start");
                    continue;
                }
            }
            if let Err(error) = journal.set_rolling(&name, false).await {
                tracing::error!(container = name, %error, "cannot update the state file");
            }
        }
        for (name, server) in journal.surging().await {
            // The controller's part waits in its queue until the hub runs.
            let (controller, docker, journal) = (
                self.inner.controller.clone(),
                self.inner.docker.clone(),
                journal.clone(),
            );
            tokio::spawn(async move {
                recover::finish_interrupted_surge(
                    &controller,
                    docker.as_ref(),
                    &journal,
                    &name,
                    &server,
                )
                .await;
            });
        }
    }

    /// Validates the spec, refuses overlap with a running roll, and runs it in a task.
    /// Returns the roll's id at once.
    pub fn start(&self, spec: RollSpec) -> Result<String, RollError> {
        validate(&spec)?;
        if let Some(reason) = self.inner.no_surge.get().filter(|_| spec.surge) {
            return Err(RollError::Invalid(reason.clone()));
        }
        let mut rolls = self.inner.rolls.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: HashSet<&String> = spec.containers.iter().collect();
        for roll in rolls.iter().filter(|r| r.is_running()) {
            let busy: Vec<String> = roll
                .containers()
                .into_iter()
                .filter(|c| wanted.contains(c))
                .collect();
            if !busy.is_empty() {
                return Err(RollError::Overlap {
                    roll: roll.snapshot().id,
                    containers: busy.join(", "),
                });
            }
        }
        let id = format!(
            "roll-{}",
            self.inner.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let recorder = RollRecorder::new(id.clone(), spec.containers.clone(), spec.image.clone());
        forget_old(&mut rolls);
        rolls.push(recorder.clone());
        drop(rolls);
        let runner = run::Runner {
            controller: self.inner.controller.clone(),
            docker: self.inner.docker.clone(),
            recorder,
            shutdown: self.inner.shutdown.clone(),
            metrics: self.inner.metrics.get().cloned(),
            journal: self.inner.journal.get().cloned(),
        };
        tokio::spawn(runner.run(spec));
        Ok(id)
    }

    pub fn progress(&self, id: &str) -> Option<RollProgress> {
        let rolls = self.inner.rolls.lock().unwrap_or_else(|p| p.into_inner());
        rolls
            .iter()
            .map(RollRecorder::snapshot)
            .find(|progress| progress.id == id)
    }
}

fn validate(spec: &RollSpec) -> Result<(), RollError> {
    if spec.containers.is_empty() {
        return Err(RollError::Invalid("name at least one container".into()));
    }
    if spec.max_unavailable == 0 {
        return Err(RollError::Invalid(
            "max_unavailable must be at least 1".into(),
        ));
    }
    let mut seen = HashSet::new();
    if let Some(twice) = spec.containers.iter().find(|c| !seen.insert(*c)) {
        return Err(RollError::Invalid(format!(
            "container {twice} is named twice"
        )));
    }
    if spec.surge && spec.max_surge == 0 {
        return Err(RollError::Invalid("max_surge must be at least 1".into()));
    }
    if spec.pull && spec.image.is_none() {
        return Err(RollError::Invalid("pull needs an image".into()));
    }
    Ok(())
}

/// Drops the oldest finished rolls beyond [`KEEP_FINISHED`].
fn forget_old(rolls: &mut Vec<RollRecorder>) {
    let finished = rolls.iter().filter(|r| !r.is_running()).count();
    let mut excess = finished.saturating_sub(KEEP_FINISHED);
    rolls.retain(|r| {
        if excess > 0 && !r.is_running() {
            excess -= 1;
            false
        } else {
            true
        }
    });
}
