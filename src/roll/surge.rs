//! `roll --surge`: the replacement starts before the old container stops, so the backend never
//! has fewer servers in rotation than before the roll.
//!
//! For one container: record the surge → copy (create and start it under a temporary name; for
//! the next batch already while this one runs) → admit (its temporary server, health-gated, in
//! rotation at the old server's weight) → drain the old server → swap (old set aside, copy under
//! the name, the server adopts the copy) → ready (the server back in rotation with the copy's
//! address) → retire (temporary server deleted, old container stopped and removed; beside the
//! next batch) → forget the surge. Until the drain, a failure leaves the old container serving
//! and removes the copy; a daemon killed anywhere finishes or undoes it at its next start
//! ([`super::RollManager::finish_interrupted`]).

use std::time::Duration;

use futures_util::future::{join, join3, join_all, BoxFuture};

use super::run::{errors_of, untouched, Runner};
use super::{RollSpec, StepKind};
use crate::controller::handle::ReadyRequest;
use crate::controller::Target;
use crate::haproxy::ServerId;

/// A container's copy, created and started, not yet in HAProxy.
pub(super) struct Copied {
    server: ServerId,
    copy_id: String,
}

impl Runner {
    /// The batches one after another. The next batch's copies are made while this batch's
    /// servers are admitted, drained and swapped (a copy out of HAProxy costs no capacity), and
    /// this batch's retire runs beside the next batch (its servers are back by then).
    pub(super) async fn run_surge(
        &self,
        batches: &[&[String]],
        spec: &RollSpec,
    ) -> Result<(), String> {
        let mut retiring: Vec<BoxFuture<'_, Result<(), String>>> = Vec::new();
        let mut copies: Option<Vec<Result<Copied, String>>> = None;
        for (done, batch) in batches.iter().enumerate() {
            if self.shutdown.is_fired() {
                let mut errors = errors_of(join_all(retiring).await);
                errors.extend(self.discard_copies(batch, copies.take()).await);
                errors.push(format!(
                    "haproxy-drain is shutting down; the roll stopped before {}{}",
                    batch.join(", "),
                    untouched(batches, done)
                ));
                return Err(errors.join("; "));
            }
            let ready = match copies.take() {
                Some(made) => made,
                None => join_all(batch.iter().map(|name| self.surge_copy(name, spec))).await,
            };
            let work = join_all(
                batch
                    .iter()
                    .zip(ready)
                    .map(|(name, copied)| self.surge_one(name, spec, copied)),
            );
            let next = batches.get(done + 1).copied();
            let prefetch = async move {
                match next {
                    Some(next) => {
                        Some(join_all(next.iter().map(|n| self.surge_copy(n, spec))).await)
                    }
                    None => None,
                }
            };
            let (results, retired, prefetched) =
                join3(work, join_all(std::mem::take(&mut retiring)), prefetch).await;
            self.count_steps(&results);
            let mut failures = errors_of(retired);
            for (name, result) in batch.iter().zip(results) {
                match result {
                    Ok(server) => retiring.push(Box::pin(self.surge_retire(name, server, spec))),
                    Err(error) => failures.push(error),
                }
            }
            if !failures.is_empty() {
                failures.extend(errors_of(join_all(retiring).await));
                if let Some(next) = next {
                    failures.extend(self.discard_copies(next, prefetched).await);
                }
                return Err(format!(
                    "{}{}",
                    failures.join("; "),
                    untouched(batches, done)
                ));
            }
            copies = prefetched;
        }
        errors_of(join_all(retiring).await)
            .into_iter()
            .reduce(|a, b| format!("{a}; {b}"))
            .map_or(Ok(()), Err)
    }

    /// Copies made ahead for a batch the roll does not reach: removed again (the containers
    /// under their names were never touched). Returns what could not be undone.
    async fn discard_copies(
        &self,
        batch: &[String],
        made: Option<Vec<Result<Copied, String>>>,
    ) -> Vec<String> {
        let mut left = Vec::new();
        for (name, copied) in batch.iter().zip(made.into_iter().flatten()) {
            let Ok(copied) = copied else { continue };
            let undone = self
                .undo_before_swap(name, &copied.server, false, String::new())
                .await;
            if !undone.ends_with("keeps serving") {
                left.push(format!("{name}: {undone}"));
            }
        }
        left
    }

    /// Records the surge and makes the copy; a failure removes what was made.
    pub(super) async fn surge_copy(&self, name: &str, spec: &RollSpec) -> Result<Copied, String> {
        let server = self.server_of(name).await?;
        self.record_surge(name, Some(&server)).await?;
        let mut copy_id = String::new();
        let copied = self
            .step(Some(name), StepKind::Copy, async {
                copy_id = self
                    .docker
                    .create_surge(name, spec.image.as_deref())
                    .await
                    .map_err(|e| e.to_string())?;
                let short: String = copy_id.chars().take(12).collect();
                Ok(format!("started copy {short}"))
            })
            .await;
        match copied {
            Ok(()) => Ok(Copied { server, copy_id }),
            Err(error) => Err(self.undo_before_swap(name, &server, false, error).await),
        }
    }

    /// Every step after the copy up to the container's own server back in rotation on it;
    /// returns the server, for [`Self::surge_retire`].
    pub(super) async fn surge_one(
        &self,
        name: &str,
        spec: &RollSpec,
        copied: Result<Copied, String>,
    ) -> Result<ServerId, String> {
        let Copied { server, copy_id } = copied?;
        self.surge_steps(name, &server, &copy_id, spec).await?;
        Ok(server)
    }

    /// The temporary server and the old container go; then the surge is forgotten.
    pub(super) async fn surge_retire(
        &self,
        name: &str,
        server: ServerId,
        spec: &RollSpec,
    ) -> Result<(), String> {
        self.step(Some(name), StepKind::Retire, async {
            let (removed, retired) = join(
                self.controller.surge_remove(&server, spec.step_timeout),
                self.docker.retire_set_aside(name),
            )
            .await;
            removed.map_err(|e| format!("removing the temporary server: {e}"))?;
            retired.map_err(|e| format!("removing the old container: {e}"))?;
            Ok("temporary server deleted, old container removed".to_string())
        })
        .await?;
        self.record_surge(name, None).await
    }

    async fn surge_steps(
        &self,
        name: &str,
        server: &ServerId,
        copy_id: &str,
        spec: &RollSpec,
    ) -> Result<(), String> {
        let admitted = self
            .step(Some(name), StepKind::Admit, async {
                let report = self
                    .controller
                    .surge_add(name, copy_id, spec.step_timeout)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "{} in rotation at weight {} (probe {} ms, HAProxy check {} ms)",
                    report.server, report.weight, report.probe_ms, report.check_ms
                ))
            })
            .await;
        if let Err(error) = admitted {
            return Err(self.undo_before_swap(name, server, false, error).await);
        }

        let drained = self.drain_step(name, spec).await;
        if let Err(error) = drained {
            return Err(self.undo_before_swap(name, server, true, error).await);
        }

        let swapped = self
            .step(Some(name), StepKind::Swap, async {
                self.docker
                    .swap_in_surge(name)
                    .await
                    .map_err(|e| e.to_string())?;
                let adopted = self.controller.adopt(name).await;
                let server = adopted.map_err(|e| format!("the copy is {name} now, but: {e}"))?;
                Ok(format!("the copy is {name}; {server} follows it"))
            })
            .await;
        if let Err(error) = swapped {
            return Err(self.undo_before_swap(name, server, true, error).await);
        }

        self.step(Some(name), StepKind::Ready, async {
            let report = self
                .ready_when_known(Target::Container(name.to_string()), spec.step_timeout)
                .await
                .map_err(|e| format!("{e}; the copy keeps serving through its temporary server"))?;
            Ok(format!("{} back in rotation on the copy", report.server))
        })
        .await
    }

    /// Before the swap took effect: the old container keeps its name and serves again, the copy
    /// and its temporary server go, the surge is forgotten; returns `error` for the roll, with
    /// what was undone.
    async fn undo_before_swap(
        &self,
        name: &str,
        server: &ServerId,
        drained: bool,
        error: String,
    ) -> String {
        let mut undone = Vec::new();
        if drained {
            let request = ReadyRequest {
                target: Target::Container(name.to_string()),
                wait: false,
                timeout: Duration::ZERO,
                withdraw_stop: true,
            };
            if let Err(e) = self.controller.ready(request).await {
                undone.push(format!("giving {server} back failed ({e})"));
            }
        }
        if let Err(e) = self
            .controller
            .surge_remove(server, Duration::from_secs(5))
            .await
        {
            undone.push(format!("removing the temporary server failed ({e})"));
        }
        if let Err(e) = self.docker.discard_surge(name).await {
            undone.push(format!("removing the copy failed ({e})"));
        }
        if undone.is_empty() {
            match self.record_surge(name, None).await {
                Ok(()) => format!("{error}; the copy was removed and {name} keeps serving"),
                Err(journal) => format!("{error}; the copy was removed; {journal}"),
            }
        } else {
            format!(
                "{error}; {}; the next start of haproxy-drain finishes the cleanup",
                undone.join(", ")
            )
        }
    }

    /// The server `name` is mapped to, from the controller's status.
    async fn server_of(&self, name: &str) -> Result<ServerId, String> {
        let servers = self.controller.status().await.map_err(|e| e.to_string())?;
        servers
            .iter()
            .find(|s| s.container.as_deref() == Some(name))
            .map(|s| ServerId::new(s.backend.clone(), s.server.clone()))
            .ok_or_else(|| format!("{name}: not mapped to any HAProxy server"))
    }

    async fn record_surge(&self, name: &str, temp: Option<&ServerId>) -> Result<(), String> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal
            .set_surging(name, temp)
            .await
            .map_err(|e| format!("cannot record the surge of {name} in the state file: {e}"))
    }
}
