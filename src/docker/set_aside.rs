//! A container set aside during a recreate, and how the next start finishes a roll step that
//! haproxy-drain was killed in.
//!
//! While a container is replaced (`roll --image`) the old one is renamed
//! `<name>.haproxy-drain-old` until the new one exists, so no moment of the swap loses it. The
//! roll records the container in the state file from its stop until it runs again
//! (`OwnershipStore::set_rolling`); a daemon killed in between finds the record on its next
//! start and calls [`DockerClient::finish_interrupted_roll`], which looks at what Docker has and
//! takes the [`RecoveryOp`]s that bring the container back, running.

use super::client::DockerClient;
use super::error::DockerError;

/// The suffix of a container set aside (Docker names allow `[a-zA-Z0-9_.-]`).
pub const SET_ASIDE_SUFFIX: &str = ".haproxy-drain-old";

pub fn set_aside_name(name: &str) -> String {
    format!("{name}{SET_ASIDE_SUFFIX}")
}

/// One step of finishing an interrupted roll of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryOp {
    /// No replacement was created: the old container gets its name back.
    RenameBack,
    /// The container under the name (old or new) is not running: the roll had stopped it, or
    /// created it and not started it yet.
    Start,
    /// The replacement exists: the old container goes.
    RemoveSetAside,
}

/// What Docker has under the container's name: `None` when nothing, else whether it runs.
pub fn recovery_ops(named_running: Option<bool>, set_aside_exists: bool) -> Vec<RecoveryOp> {
    use RecoveryOp::*;
    match (named_running, set_aside_exists) {
        (None, true) => vec![RenameBack, Start],
        (Some(false), true) => vec![Start, RemoveSetAside],
        (Some(true), true) => vec![RemoveSetAside],
        (Some(false), false) => vec![Start],
        (Some(true), false) | (None, false) => vec![],
    }
}

impl DockerClient {
    /// Brings back a container a roll stopped (and perhaps set aside) before haproxy-drain was
    /// killed: afterwards it exists under its name and runs. Returns what was done; an error
    /// leaves the rest for the next start.
    pub async fn finish_interrupted_roll(
        &self,
        name: &str,
    ) -> Result<Vec<RecoveryOp>, DockerError> {
        let aside = set_aside_name(name);
        let named = self.inspect(name).await?.map(|info| info.running);
        let set_aside = self.inspect(&aside).await?.is_some();
        if named.is_none() && !set_aside {
            return Err(DockerError::ContainerNotFound {
                name: name.to_string(),
            });
        }
        let ops = recovery_ops(named, set_aside);
        for op in &ops {
            match op {
                RecoveryOp::RenameBack => self.rename(&aside, name).await?,
                RecoveryOp::Start => self.start(name).await?,
                RecoveryOp::RemoveSetAside => self.remove(&aside, false).await?,
            }
        }
        Ok(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecoveryOp::*;

    #[test]
    fn the_container_ends_under_its_name_and_running() {
        let cases: &[(Option<bool>, bool, &[RecoveryOp])] = &[
            // Killed after the set-aside, before the new one existed.
            (None, true, &[RenameBack, Start]),
            // Killed after the new one was created, before it started (or before the old one
            // was removed).
            (Some(false), true, &[Start, RemoveSetAside]),
            (Some(true), true, &[RemoveSetAside]),
            // Killed between the stop and the start of a restart (or after a finished swap).
            (Some(false), false, &[Start]),
            (Some(true), false, &[]),
            (None, false, &[]),
        ];
        for (named, aside, expected) in cases {
            assert_eq!(recovery_ops(*named, *aside), *expected, "{named:?} {aside}");
        }
        assert_eq!(set_aside_name("app_1"), "app_1.haproxy-drain-old");
    }
}
