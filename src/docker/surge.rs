//! The Docker side of `roll --surge`: a copy of a running container made and started beside it
//! under a temporary name, then swapped in under the container's name.
//!
//! Names during a surge of `app`: the copy is `app.haproxy-drain-new` until the swap; at the swap
//! the old one becomes `app.haproxy-drain-old` (the name a recreate uses, see
//! [`super::set_aside`]) and the copy takes `app`; the old one is then stopped and removed. The
//! controller ignores containers under either temporary name, so neither moves a server.
//! A daemon killed at any point finds a [`SurgeContainers`] and takes the [`SurgeRecoveryOp`]s
//! that leave one container under the name, running.

use super::client::DockerClient;
use super::duplicable::why_not_duplicable;
use super::error::DockerError;
use super::set_aside::{set_aside_name, SET_ASIDE_SUFFIX};

/// The suffix of the copy before the swap.
pub const SURGE_SUFFIX: &str = ".haproxy-drain-new";

pub fn surge_name(name: &str) -> String {
    format!("{name}{SURGE_SUFFIX}")
}

/// A name that only exists during a swap (a surge copy, a container set aside): such a container
/// never moves a server.
pub fn is_swap_name(name: &str) -> bool {
    name.ends_with(SURGE_SUFFIX) || name.ends_with(SET_ASIDE_SUFFIX)
}

/// What Docker has for one container under surge: for each name, `None` when nothing, else
/// whether it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurgeContainers {
    pub named: Option<bool>,
    pub copy: Option<bool>,
    pub set_aside: Option<bool>,
}

/// One step of finishing or undoing a surge that haproxy-drain was killed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurgeRecoveryOp {
    /// Before the swap: the old container still serves under its name; the copy goes.
    DiscardCopy,
    /// Killed between the two renames: the copy takes the name.
    RenameCopyIn,
    /// The copy vanished before it got the name: the old one gets its name back.
    RenameBack,
    /// Whatever ends up under the name must run.
    StartNamed,
    /// After the swap: the old container goes.
    RetireSetAside,
}

/// The container ends under its name and running; the old one survives only when no copy took
/// its place (undo before the swap, forward after it).
pub fn surge_recovery(found: SurgeContainers) -> Vec<SurgeRecoveryOp> {
    use SurgeRecoveryOp::*;
    let mut ops = Vec::new();
    match (found.named, found.copy, found.set_aside) {
        (Some(_), copy, aside) => {
            if copy.is_some() {
                ops.push(DiscardCopy);
            }
            if aside.is_some() {
                ops.push(RetireSetAside);
            }
        }
        (None, Some(_), aside) => {
            ops.push(RenameCopyIn);
            if aside.is_some() {
                ops.push(RetireSetAside);
            }
        }
        (None, None, Some(_)) => ops.push(RenameBack),
        (None, None, None) => return ops,
    }
    // Only what the surge started or renamed is started again: an old container that stopped
    // by itself before the swap is left as it is.
    let runs_after = match (found.named, found.copy, found.set_aside) {
        (Some(running), _, Some(_)) => running,
        (Some(_), _, None) => true,
        (None, Some(running), _) => running,
        (None, None, Some(running)) => running,
        (None, None, None) => true,
    };
    if !runs_after {
        ops.push(StartNamed);
    }
    ops
}

impl DockerClient {
    /// Fails with [`DockerError::NotDuplicable`] when the container cannot run twice at once.
    pub async fn require_duplicable(&self, name: &str) -> Result<(), DockerError> {
        let container = self.inspect_full(name).await?;
        match why_not_duplicable(&container) {
            Some(reason) => Err(DockerError::NotDuplicable {
                name: name.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Creates and starts a copy of the running container `name` (its own configuration, with
    /// `image` when given) under [`surge_name`]; a copy left by an earlier surge is replaced.
    /// Refuses with [`DockerError::NotDuplicable`] what cannot run twice. Returns the copy's id.
    pub async fn create_surge(
        &self,
        name: &str,
        image: Option<&str>,
    ) -> Result<String, DockerError> {
        let container = self.inspect_full(name).await?;
        if let Some(reason) = why_not_duplicable(&container) {
            return Err(DockerError::NotDuplicable {
                name: name.to_string(),
                reason,
            });
        }
        let old_image_id = container.image.clone().ok_or(DockerError::Incomplete {
            name: name.to_string(),
            missing: "Image",
        })?;
        let old_image = self.inspect_image(&old_image_id).await?;
        if let Some(image) = image {
            self.inspect_image(image).await?;
        }
        let mut plan = super::plan::user_config(&container, &old_image)?;
        plan.name = surge_name(name);
        plan.body.image = Some(image.unwrap_or(&old_image_id).to_string());
        self.discard_surge(name).await?;
        let failed = |message: String| DockerError::Recreate {
            name: plan.name.clone(),
            image: image.unwrap_or(&old_image_id).to_string(),
            message,
            restore: format!("{name} was not touched and keeps serving"),
        };
        let id = match self.create(&plan).await {
            Ok(id) => id,
            Err(message) => {
                let _ = self.remove(&plan.name, true).await;
                return Err(failed(message));
            }
        };
        if let Err(error) = self.start(&id).await {
            let _ = self.remove(&id, true).await;
            return Err(failed(format!("starting it failed: {error}")));
        }
        Ok(id)
    }

    /// Removes the copy (running or not); nothing to remove is fine.
    pub async fn discard_surge(&self, name: &str) -> Result<(), DockerError> {
        match self.remove(&surge_name(name), true).await {
            Ok(()) | Err(DockerError::ContainerNotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The swap: the old container (still running, out of rotation) is set aside and the copy
    /// takes its name. If the second rename fails the old one gets its name back.
    pub async fn swap_in_surge(&self, name: &str) -> Result<(), DockerError> {
        let aside = set_aside_name(name);
        self.rename(name, &aside).await?;
        if let Err(error) = self.rename(&surge_name(name), name).await {
            if let Err(back) = self.rename(&aside, name).await {
                tracing::error!(container = name, %back, "cannot give the old container its name back; the next start of haproxy-drain does");
            }
            return Err(error);
        }
        Ok(())
    }

    /// Stops (with its own stop timeout) and removes the container set aside by the swap.
    pub async fn retire_set_aside(&self, name: &str) -> Result<(), DockerError> {
        let aside = set_aside_name(name);
        match self.stop(&aside, None).await {
            Ok(()) => {}
            Err(error) if error.is_not_found() => return Ok(()),
            Err(error) => return Err(error),
        }
        match self.remove(&aside, true).await {
            Ok(()) | Err(DockerError::ContainerNotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub async fn surge_containers(&self, name: &str) -> Result<SurgeContainers, DockerError> {
        let running = |info: Option<super::ContainerInfo>| info.map(|i| i.running);
        Ok(SurgeContainers {
            named: running(self.inspect(name).await?),
            copy: running(self.inspect(&surge_name(name)).await?),
            set_aside: running(self.inspect(&set_aside_name(name)).await?),
        })
    }

    /// Finishes or undoes a surge of `name` an earlier run was killed in; returns what was done.
    pub async fn finish_interrupted_surge(
        &self,
        name: &str,
    ) -> Result<Vec<SurgeRecoveryOp>, DockerError> {
        let found = self.surge_containers(name).await?;
        let ops = surge_recovery(found);
        for op in &ops {
            match op {
                SurgeRecoveryOp::DiscardCopy => self.discard_surge(name).await?,
                SurgeRecoveryOp::RenameCopyIn => self.rename(&surge_name(name), name).await?,
                SurgeRecoveryOp::RenameBack => self.rename(&set_aside_name(name), name).await?,
                SurgeRecoveryOp::StartNamed => self.start(name).await?,
                SurgeRecoveryOp::RetireSetAside => self.retire_set_aside(name).await?,
            }
        }
        Ok(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SurgeRecoveryOp::*;

    #[test]
    fn one_container_ends_under_the_name_and_running() {
        let c = |named, copy, set_aside| SurgeContainers {
            named,
            copy,
            set_aside,
        };
        #[rustfmt::skip]
        let cases: &[(SurgeContainers, &[SurgeRecoveryOp])] = &[
            // Killed before the swap: the old one still serves; undo.
            (c(Some(true), Some(true), None), &[DiscardCopy]),
            (c(Some(true), Some(false), None), &[DiscardCopy]),
            // Killed after the swap: forward.
            (c(Some(true), None, Some(true)), &[RetireSetAside]),
            (c(Some(false), None, Some(true)), &[RetireSetAside, StartNamed]),
            // Killed between the two renames.
            (c(None, Some(true), Some(true)), &[RenameCopyIn, RetireSetAside]),
            (c(None, Some(false), Some(true)), &[RenameCopyIn, RetireSetAside, StartNamed]),
            // The copy vanished after the old one was set aside.
            (c(None, None, Some(true)), &[RenameBack]),
            (c(None, None, Some(false)), &[RenameBack, StartNamed]),
            // Finished (the journal not yet cleared), or the old one had stopped by itself.
            (c(Some(true), None, None), &[]),
            (c(Some(false), None, None), &[]),
            (c(Some(false), Some(true), None), &[DiscardCopy]),
            (c(None, None, None), &[]),
        ];
        for (found, expected) in cases {
            assert_eq!(surge_recovery(*found), *expected, "{found:?}");
        }
        assert_eq!(surge_name("app_1"), "app_1.haproxy-drain-new");
        assert!(is_swap_name("app_1.haproxy-drain-new"));
        assert!(is_swap_name("app_1.haproxy-drain-old"));
        assert!(!is_swap_name("app_1"));
    }

    /// Every state Docker can be left in, played through a model of the three names: afterwards
    /// nothing is under a temporary name, and something runs under the name whenever anything
    /// existed — unless it was the old container under its own name, stopped by someone else.
    #[test]
    fn every_leftover_state_ends_with_the_name_only() {
        let states = [None, Some(false), Some(true)];
        for named in states {
            for copy in states {
                for set_aside in states {
                    let found = SurgeContainers {
                        named,
                        copy,
                        set_aside,
                    };
                    let (mut n, mut c, mut a) = (named, copy, set_aside);
                    for op in surge_recovery(found) {
                        match op {
                            DiscardCopy => c = None,
                            RenameCopyIn => (n, c) = (c, None),
                            RenameBack => (n, a) = (a, None),
                            StartNamed => n = n.map(|_| true),
                            RetireSetAside => a = None,
                        }
                    }
                    assert_eq!((c, a), (None, None), "{found:?} leaves a temporary name");
                    let anything = named.or(copy).or(set_aside).is_some();
                    let left_alone = named == Some(false) && set_aside.is_none();
                    if anything && !left_alone {
                        assert_eq!(n, Some(true), "{found:?} ends without a running container");
                    }
                }
            }
        }
    }
}
