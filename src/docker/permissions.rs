//! What the Docker socket we were given lets us do, found without side effects.
//!
//! Behind a socket proxy (Tecnativa's docker-socket-proxy, an authorization plugin) some calls
//! get HTTP 403. Each probe is a request the engine must refuse for another reason, so a
//! permitted call changes nothing: inspect/stop/start of a container name Docker cannot have
//! (`~` is not allowed in names) answer 404; create with that same invalid name and an empty
//! configuration answers 400; the events stream is asked for an interval that is already over.

use std::time::{SystemTime, UNIX_EPOCH};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptions, ListContainersOptionsBuilder,
};
use futures_util::StreamExt;

use super::client::DockerClient;

/// No container can have this name, so probes on it cannot touch one.
pub const PROBE_CONTAINER: &str = "haproxy-drain-permission-probe~none";

/// One Docker API operation haproxy-drain may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    List,
    Inspect,
    Events,
    Stop,
    Start,
    Create,
    Exec,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::List,
        Permission::Inspect,
        Permission::Events,
        Permission::Stop,
        Permission::Start,
        Permission::Create,
        Permission::Exec,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::List => "list",
            Permission::Inspect => "inspect",
            Permission::Events => "events",
            Permission::Stop => "stop",
            Permission::Start => "start",
            Permission::Create => "create",
            Permission::Exec => "exec",
        }
    }

    /// The request it stands for.
    pub fn request(self) -> &'static str {
        match self {
            Permission::List => "GET /containers/json",
            Permission::Inspect => "GET /containers/{id}/json",
            Permission::Events => "GET /events",
            Permission::Stop => "POST /containers/{id}/stop",
            Permission::Start => "POST /containers/{id}/start",
            Permission::Create => "POST /containers/create",
            Permission::Exec => "POST /containers/{id}/exec",
        }
    }

    /// What stops working without it.
    pub fn disables(self) -> &'static str {
        match self {
            Permission::List => "reconciliation and startup recovery (the watcher cannot run)",
            Permission::Inspect => {
                "addresses and health of started containers (the watcher cannot restore servers)"
            }
            Permission::Events => "reacting to stop/start at all (the watcher cannot run)",
            Permission::Stop => {
                "`roll` (it stops each container) and `drain --force` of a dead container"
            }
            Permission::Start => "`roll` (it starts each container again)",
            Permission::Create => "`roll --image` (it recreates containers with the new image)",
            Permission::Exec => {
                "`roll --surge`'s fast gate (it runs the copy's HEALTHCHECK itself; without it, it waits for Docker's interval)"
            }
        }
    }

    /// Whether the watcher (`run` without `roll`) needs it.
    pub fn watcher_needs(self) -> bool {
        matches!(
            self,
            Permission::List | Permission::Inspect | Permission::Events
        )
    }
}

/// The answer to one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// HTTP 403, with the proxy's message.
    Denied(String),
    /// Neither: the probe itself failed (unreachable engine, unexpected status).
    Unknown(String),
}

impl DockerClient {
    /// Probes every [`Permission`]; never changes anything on the engine.
    pub async fn probe_permissions(&self) -> Vec<(Permission, Access)> {
        let mut found = Vec::new();
        for permission in Permission::ALL {
            found.push((permission, self.probe(permission).await));
        }
        found
    }

    async fn probe(&self, permission: Permission) -> Access {
        let docker = &self.docker;
        let result = match permission {
            Permission::List => {
                let options = ListContainersOptionsBuilder::default().limit(1).build();
                docker.list_containers(Some(options)).await.map(|_| ())
            }
            Permission::Inspect => docker
                .inspect_container(PROBE_CONTAINER, None)
                .await
                .map(|_| ()),
            Permission::Stop => docker.stop_container(PROBE_CONTAINER, None).await,
            Permission::Start => docker.start_container(PROBE_CONTAINER, None).await,
            Permission::Create => {
                let options = CreateContainerOptionsBuilder::default()
                    .name(PROBE_CONTAINER)
                    .build();
                docker
                    .create_container(Some(options), ContainerCreateBody::default())
                    .await
                    .map(|_| ())
            }
            Permission::Exec => {
                let config = bollard::models::ExecConfig {
                    cmd: Some(vec!["true".to_string()]),
                    ..Default::default()
                };
                docker
                    .create_exec(PROBE_CONTAINER, config)
                    .await
                    .map(|_| ())
            }
            Permission::Events => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let past = (now.saturating_sub(2)).to_string();
                let until = (now.saturating_sub(1)).to_string();
                let options = EventsOptions {
                    since: Some(past),
                    until: Some(until),
                    filters: None,
                };
                let mut events = docker.events(Some(options));
                // A closed interval: the engine replays what it has and ends the stream.
                let mut outcome = Ok(());
                while let Some(item) = events.next().await {
                    if let Err(error) = item {
                        outcome = Err(error);
                        break;
                    }
                }
                outcome
            }
        };
        access_of(result)
    }
}

/// Sorts a probe's outcome: the refusal we provoked (404/400) means permitted.
fn access_of(result: Result<(), bollard::errors::Error>) -> Access {
    match result {
        Ok(()) => Access::Allowed,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 403,
            message,
        }) => Access::Denied(message),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 400 | 404 | 409,
            ..
        }) => Access::Allowed,
        Err(other) => Access::Unknown(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Result<(), bollard::errors::Error> {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: code,
            message: format!("status {code}"),
        })
    }

    #[test]
    fn provoked_refusals_mean_allowed_and_403_means_denied() {
        assert_eq!(access_of(Ok(())), Access::Allowed);
        assert_eq!(access_of(status(404)), Access::Allowed);
        assert_eq!(access_of(status(400)), Access::Allowed);
        assert_eq!(access_of(status(403)), Access::Denied("status 403".into()));
        assert!(matches!(access_of(status(500)), Access::Unknown(_)));
    }

    #[test]
    fn the_watcher_needs_only_the_read_permissions() {
        let needed: Vec<_> = Permission::ALL
            .into_iter()
            .filter(|p| p.watcher_needs())
            .map(Permission::as_str)
            .collect();
        assert_eq!(needed, ["list", "inspect", "events"]);
    }
}
