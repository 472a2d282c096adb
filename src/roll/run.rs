//! The roll runner: one task per roll, steps in order, stops at the first failure.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::join_all;

use super::{RollDocker, RollRecorder, RollSpec, StepKind};
use crate::controller::handle::{ControlError, DrainRequest, ReadyReport, ReadyRequest};
use crate::controller::{ControllerHandle, Target, Trigger};
use crate::ownership::OwnershipStore;
use crate::shutdown::Shutdown;

/// How often `ready` is asked again while the controller does not know a new container yet.
const NOT_FOUND_RETRY: Duration = Duration::from_millis(100);

pub(super) struct Runner {
    pub controller: ControllerHandle,
    pub docker: Arc<dyn RollDocker>,
    pub recorder: RollRecorder,
    pub shutdown: Shutdown,
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The state file, which names a container from its stop until it runs again.
    pub journal: Option<Arc<OwnershipStore>>,
}

impl Runner {
    pub async fn run(self, spec: RollSpec) {
        match self.run_steps(&spec).await {
            Ok(()) => {
                tracing::info!(roll = %self.recorder.snapshot().id, containers = ?spec.containers, "roll succeeded");
                self.recorder.succeed();
                if let Some(metrics) = &self.metrics {
                    metrics.roll_finished("ok");
                }
            }
            Err(error) => {
                tracing::warn!(roll = %self.recorder.snapshot().id, %error, "roll failed");
                self.recorder.fail(error);
                if let Some(metrics) = &self.metrics {
                    metrics.roll_finished("failed");
                }
            }
        }
    }

    async fn run_steps(&self, spec: &RollSpec) -> Result<(), String> {
        if let (true, Some(image)) = (spec.pull, spec.image.as_deref()) {
            self.step(None, StepKind::Pull, async {
                self.docker.pull(image).await.map_err(|e| e.to_string())?;
                Ok(format!("pulled {image}"))
            })
            .await?;
        }
        self.step(None, StepKind::Preflight, self.preflight(spec))
            .await?;
        if spec.surge {
            let batches: Vec<&[String]> = spec.containers.chunks(spec.max_surge).collect();
            return self.run_surge(&batches, spec).await;
        }
        let batches: Vec<&[String]> = spec.containers.chunks(spec.max_unavailable).collect();
        for (done, batch) in batches.iter().enumerate() {
            if self.shutdown.is_fired() {
                return Err(format!(
                    "haproxy-drain is shutting down; the roll stopped before {}{}",
                    batch.join(", "),
                    untouched(&batches, done)
                ));
            }
            let rolled = batches[..done].iter().flat_map(|b| b.iter());
            if let Some(failed) = self.failed_among(rolled).await {
                return Err(format!("{failed}{}", untouched(&batches, done - 1)));
            }
            let results = join_all(batch.iter().map(|name| self.roll_one(name, spec))).await;
            self.count_steps(&results);
            let failures = errors_of(results);
            if !failures.is_empty() {
                return Err(format!(
                    "{}{}",
                    failures.join("; "),
                    untouched(&batches, done)
                ));
            }
        }
        Ok(())
    }

    pub(super) fn count_steps<T>(&self, results: &[Result<T, String>]) {
        if let Some(metrics) = &self.metrics {
            for result in results {
                metrics.roll_step(if result.is_ok() { "ok" } else { "failed" });
            }
        }
    }

    /// Checks everything that can be checked before the first container is touched.
    async fn preflight(&self, spec: &RollSpec) -> Result<String, String> {
        for name in &spec.containers {
            self.docker
                .check_container(name)
                .await
                .map_err(|e| e.to_string())?;
            if spec.surge {
                self.docker
                    .check_duplicable(name)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        if let Some(image) = &spec.image {
            self.docker
                .check_image(image)
                .await
                .map_err(|e| e.to_string())?;
        }
        let servers = self.controller.status().await.map_err(|e| e.to_string())?;
        for name in &spec.containers {
            if !servers.iter().any(|s| s.container.as_deref() == Some(name)) {
                return Err(format!(
                    "container {name} is not mapped to any HAProxy server (no haproxy-drain labels or config rule match it)"
                ));
            }
        }
        Ok(format!("{} container(s) mapped", spec.containers.len()))
    }

    async fn roll_one(&self, name: &str, spec: &RollSpec) -> Result<(), String> {
        let previous = self.previous_image(name, spec).await?;
        self.drain_step(name, spec).await?;
        self.replace_recorded(name, spec).await?;
        let back = match self.ready_step(name, spec).await {
            Ok(()) => self.watch_step(name, spec).await,
            failed => failed,
        };
        match (back, previous) {
            (Err(error), Some(image)) => Err(self.roll_back(name, &image, spec, error).await),
            (back, _) => back,
        }
    }

    /// Stop → (recreate) → start, with the container named in the state file from its stop
    /// until it runs again: a daemon killed in between finishes the step at its next start
    /// (`finish_interrupted`).
    pub(super) async fn replace_recorded(&self, name: &str, spec: &RollSpec) -> Result<(), String> {
        let target = Target::Container(name.to_string());
        self.record_rolling(name, true).await?;
        let replaced = self.replace(name, spec, &target).await;
        self.record_rolling(name, false).await?;
        replaced
    }

    /// Waits until the controller has the container's server back in rotation.
    pub(super) async fn ready_step(&self, name: &str, spec: &RollSpec) -> Result<(), String> {
        let target = Target::Container(name.to_string());
        self.step(Some(name), StepKind::Ready, async {
            let report = self
                .ready_when_known(target, spec.step_timeout)
                .await
                .map_err(|e| e.to_string())?;
            if report.in_rotation {
                Ok(format!("{} back in rotation", report.server))
            } else {
                Err(format!("{} is not back in rotation", report.server))
            }
        })
        .await
    }

    /// Drains the container's server for a roll and waits until its sessions reach 0.
    pub(super) async fn drain_step(&self, name: &str, spec: &RollSpec) -> Result<(), String> {
        self.step(Some(name), StepKind::Drain, async {
            let request = DrainRequest {
                target: Target::Container(name.to_string()),
                wait: true,
                timeout: spec.step_timeout,
                force: false,
                trigger: Trigger::Roll,
                sticky: false,
            };
            let report = self
                .controller
                .drain(request)
                .await
                .map_err(|e| e.to_string())?;
            if report.drained {
                Ok(format!("{} drained", report.server))
            } else {
                Err(format!(
                    "{} still has {} session(s)",
                    report.server, report.sessions_left
                ))
            }
        })
        .await
    }

    /// Stop → recreate (with an image) → start.
    async fn replace(&self, name: &str, spec: &RollSpec, target: &Target) -> Result<(), String> {
        let stopped = self
            .step(Some(name), StepKind::Stop, async {
                self.docker.stop(name).await.map_err(|e| e.to_string())?;
                Ok("stopped".to_string())
            })
            .await;
        if let Err(error) = stopped {
            // The container keeps running: its stop request is withdrawn and it goes back.
            let request = ReadyRequest {
                target: target.clone(),
                wait: false,
                timeout: Duration::ZERO,
                withdraw_stop: true,
            };
            if let Err(ready) = self.controller.ready(request).await {
                tracing::warn!(container = name, error = %ready, "roll: giving the server back after a failed stop failed; reconciliation corrects it");
            }
            return Err(error);
        }
        if let Some(image) = spec.image.as_deref() {
            self.step(Some(name), StepKind::Recreate, async {
                let id = self
                    .docker
                    .recreate(name, image)
                    .await
                    .map_err(|e| e.to_string())?;
                let short: String = id.chars().take(12).collect();
                Ok(format!("created {short} from {image}"))
            })
            .await?;
        }
        self.step(Some(name), StepKind::Start, async {
            self.docker.start(name).await.map_err(|e| e.to_string())?;
            Ok("started".to_string())
        })
        .await?;
        Ok(())
    }

    async fn record_rolling(&self, name: &str, rolling: bool) -> Result<(), String> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal
            .set_rolling(name, rolling)
            .await
            .map_err(|e| format!("cannot record the roll of {name} in the state file: {e}"))
    }

    /// `ready` for a container that may be new: right after a recreate the controller may not
    /// have processed the new container's `create`/`start` events yet and answers NotFound, so
    /// NotFound is retried until the step's deadline.
    pub(super) async fn ready_when_known(
        &self,
        target: Target,
        timeout: Duration,
    ) -> Result<ReadyReport, ControlError> {
        let deadline = Instant::now() + timeout;
        loop {
            let request = ReadyRequest {
                target: target.clone(),
                wait: true,
                timeout: deadline.saturating_duration_since(Instant::now()),
                withdraw_stop: false,
            };
            match self.controller.ready(request).await {
                Err(ControlError::NotFound(_)) if Instant::now() + NOT_FOUND_RETRY < deadline => {
                    tokio::time::sleep(NOT_FOUND_RETRY).await;
                }
                other => return other,
            }
        }
    }

    /// Records one step around `work`; its error becomes the roll's error, prefixed with where.
    pub(super) async fn step(
        &self,
        container: Option<&str>,
        kind: StepKind,
        work: impl Future<Output = Result<String, String>>,
    ) -> Result<(), String> {
        let index = self.recorder.begin(container, kind);
        match work.await {
            Ok(detail) => {
                self.recorder.finish(index, true, Some(detail));
                Ok(())
            }
            Err(error) => {
                self.recorder.finish(index, false, Some(error.clone()));
                let place = container.map(|c| format!("{c}: ")).unwrap_or_default();
                Err(format!("{place}{} failed: {error}", kind.as_str()))
            }
        }
    }
}

pub(super) fn errors_of<T>(results: Vec<Result<T, String>>) -> Vec<String> {
    results.into_iter().filter_map(Result::err).collect()
}

/// "; not touched: …" for the batches after `done`, or nothing.
pub(super) fn untouched(batches: &[&[String]], done: usize) -> String {
    let rest: Vec<&str> = batches[done + 1..]
        .iter()
        .flat_map(|b| b.iter().map(String::as_str))
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        format!("; not touched: {}", rest.join(", "))
    }
}
