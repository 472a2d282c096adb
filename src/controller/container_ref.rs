//! The container behind a server, as far as its task needs it.

use std::net::IpAddr;
use std::time::Duration;

use crate::docker::{ContainerInfo, DockerClient, DockerError};
use crate::drain::docker_input::{EventFacts, SIGTERM};
use crate::haproxy::ServerId;
use crate::mapping::Mapping;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub has_healthcheck: bool,
    /// The address HAProxy should use: on the mapped network, else the first by name.
    pub ip: Option<IpAddr>,
    /// `State.StartedAt` when this reference came from an inspect (the list lacks it).
    pub started_at_unix_nanos: Option<i64>,
    pub stop_signal: i32,
    pub stop_timeout: Option<Duration>,
}

impl ContainerRef {
    pub fn from_info(info: &ContainerInfo, mapping: &Mapping) -> Self {
        Self {
            id: info.id.clone(),
            name: info.name.clone(),
            has_healthcheck: info.health.is_some(),
            ip: pick_ip(info, mapping.settings.network.as_deref()),
            started_at_unix_nanos: info.started_at_unix_nanos,
            stop_signal: info.stop_signal,
            stop_timeout: info.stop_timeout,
        }
    }
}

impl ContainerRef {
    /// Inspects the container: the reference and whether it runs; `None` when it is gone.
    pub async fn inspect(
        docker: &DockerClient,
        id: &str,
        mapping: &Mapping,
    ) -> Result<Option<(Self, bool)>, DockerError> {
        let info = docker.inspect(id).await?;
        Ok(info.map(|info| (Self::from_info(&info, mapping), info.running)))
    }

    /// A "running" container whose run was asked to stop may be shutting down or may have
    /// started again unseen: only `State.StartedAt` tells, and only inspect has it.
    pub async fn read_started_at(&mut self, docker: &DockerClient, server: &ServerId) {
        self.started_at_unix_nanos = match docker.inspect(&self.id).await {
            Ok(info) => info.and_then(|info| info.started_at_unix_nanos),
            Err(error) => {
                // Unknown counts as "still the old run": held until the next pass.
                tracing::warn!(%server, container = %self.name, %error, "cannot inspect the container to tell a restart from a shutdown; kept out of rotation");
                None
            }
        };
    }
}

/// The facts an event is judged by: the container's stop signal and timeout (Docker's defaults
/// while the container is unknown) and the server's settings.
pub fn event_facts(
    container: Option<&ContainerRef>,
    mapping: &Mapping,
    time_nano: i64,
) -> EventFacts {
    EventFacts {
        stop_signal: container.map_or(SIGTERM, |c| c.stop_signal),
        stop_timeout: container.and_then(|c| c.stop_timeout),
        drain_timeout: mapping.settings.drain_timeout,
        unhealthy: mapping.settings.unhealthy,
        time_nano,
    }
}

/// The configured network's address, else the first network's by name (a stable choice).
pub fn pick_ip(info: &ContainerInfo, network: Option<&str>) -> Option<IpAddr> {
    let mut networks: Vec<&(String, IpAddr)> = info.networks.iter().collect();
    networks.sort_by(|a, b| a.0.cmp(&b.0));
    match network {
        Some(name) => networks.iter().find(|(n, _)| n == name).map(|(_, ip)| *ip),
        None => networks.first().map(|(_, ip)| *ip),
    }
}
