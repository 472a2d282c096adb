//! The surge an earlier run of haproxy-drain was killed in, finished or undone at the next start
//! (see [`super::RollManager::finish_interrupted`]).

use std::time::Duration;

use super::{RollDocker, DEFAULT_STEP_TIMEOUT};
use crate::controller::ControllerHandle;
use crate::ownership::OwnershipStore;

/// Finishes or undoes a surge an earlier run was killed in, in the order that keeps the backend's
/// capacity: before the swap the copy's temporary server is drained away first, then the copy
/// goes and the old server comes back; after it the server follows the copy first, and only once
/// it is back in rotation does the temporary server go. Then the surge is forgotten.
pub(super) async fn finish_interrupted_surge(
    controller: &ControllerHandle,
    docker: &dyn RollDocker,
    journal: &OwnershipStore,
    name: &str,
    server: &crate::haproxy::ServerId,
) {
    let fail = |what: &str, error: &dyn std::fmt::Display| {
        tracing::error!(container = name, %server, %error, "an interrupted surge: {what} failed; retried at the next start");
    };
    let swapped = match docker.surge_containers(name).await {
        Ok(found) => found.set_aside.is_some(),
        Err(error) => return fail("reading its containers", &error),
    };
    if !swapped {
        if let Err(error) = controller.surge_remove(server, DEFAULT_STEP_TIMEOUT).await {
            return fail("removing the temporary server", &error);
        }
    }
    if let Err(error) = docker.finish_interrupted_surge(name).await {
        return fail("finishing it in Docker", &error);
    }
    let deadline = tokio::time::Instant::now() + DEFAULT_STEP_TIMEOUT;
    loop {
        match controller.adopt(name).await {
            Ok(_) => break,
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return fail("giving the server its container", &error);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    if swapped {
        let ready = crate::controller::handle::ReadyRequest {
            target: crate::controller::Target::Container(name.to_string()),
            wait: true,
            timeout: DEFAULT_STEP_TIMEOUT,
            withdraw_stop: false,
        };
        if let Err(error) = controller.ready(ready).await {
            return fail("waiting for the server on the copy", &error);
        }
        if let Err(error) = controller.surge_remove(server, DEFAULT_STEP_TIMEOUT).await {
            return fail("removing the temporary server", &error);
        }
    }
    if let Err(error) = journal.set_surging(name, None).await {
        tracing::error!(container = name, %error, "cannot update the state file");
    }
    tracing::warn!(container = name, %server, swapped, "finished a surge an earlier run of haproxy-drain was killed in");
}
