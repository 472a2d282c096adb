//! [`DockerClient`]: connect, ping, list, inspect, stop and start over bollard (recreating a
//! container is in [`super::recreate`], the event stream in [`super::events`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::stream::{self, StreamExt};

use super::convert::{container_from_inspect, container_from_summary};
use super::error::DockerError;
use super::filter::LabelFilters;
use super::types::ContainerInfo;
use super::watch_log::WatchCounters;

/// A container's stop signal and `--stop-timeout`, which inspect has and the list lacks.
type StopSettings = (i32, Option<Duration>);

/// Where Docker listens when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// bollard's timeout covers the wait for response headers only (a long `/events` body is fine).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// How many inspects a listing runs at once (stop-signal cache misses only).
const INSPECT_CONCURRENCY: usize = 8;

/// A cheap-to-clone handle on one Docker engine.
#[derive(Clone)]
pub struct DockerClient {
    pub(super) docker: Docker,
    endpoint: Arc<str>,
    /// Container ID → stop signal and stop timeout: inspect has them, the list does not, and
    /// neither can change during a container's life, so each container is inspected once.
    stop_settings: Arc<Mutex<HashMap<String, StopSettings>>>,
    pub(crate) counters: Arc<WatchCounters>,
    /// `run --filter`: only these containers exist for this client.
    pub(crate) filters: Arc<LabelFilters>,
}

impl std::fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerClient")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl DockerClient {
    /// `DOCKER_HOST` when set, else `unix:///var/run/docker.sock`. Fails at once when the socket
    /// file does not exist; otherwise does not connect yet: [`ping`](Self::ping) tells whether
    /// the engine answers.
    pub fn connect() -> Result<Self, DockerError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        Self::connect_to(&host)
    }

    /// `unix:///path`, a bare `/path`, or `tcp://host:port` / `http://host:port` (no TLS).
    pub fn connect_to(url: &str) -> Result<Self, DockerError> {
        let url = url.trim();
        let setup = |source| match source {
            bollard::errors::Error::SocketNotFoundError(path) => {
                DockerError::SocketMissing { path }
            }
            source => DockerError::Setup {
                endpoint: url.to_string(),
                source,
            },
        };
        let docker = if url.starts_with("unix://") {
            Docker::connect_with_unix(url, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
                .map_err(setup)?
        } else if url.starts_with('/') {
            Docker::connect_with_unix(
                &format!("unix://{url}"),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            )
            .map_err(setup)?
        } else if url.starts_with("tcp://") || url.starts_with("http://") {
            Docker::connect_with_http(url, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
                .map_err(setup)?
        } else {
            return Err(DockerError::UnsupportedEndpoint {
                url: url.to_string(),
            });
        };
        Ok(Self {
            docker,
            endpoint: Arc::from(url),
            stop_settings: Arc::default(),
            counters: Arc::default(),
            filters: Arc::default(),
        })
    }

    /// Only containers matching every filter are listed, watched and inspected.
    pub fn with_filters(mut self, filters: LabelFilters) -> Self {
        self.filters = Arc::new(filters);
        self
    }

    /// The endpoint this client talks to, for log lines.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn error(
        &self,
        operation: impl Into<String>,
        source: bollard::errors::Error,
    ) -> DockerError {
        DockerError::classify(&self.endpoint, operation.into(), source)
    }

    /// `GET /_ping`.
    pub async fn ping(&self) -> Result<(), DockerError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|err| self.error("ping the engine", err))
    }

    /// Lists containers (`all` includes stopped ones).
    ///
    /// Cost: one `GET /containers/json`, plus one inspect per container not seen before (the list
    /// lacks `Config.StopSignal`; it is cached by ID). Health comes from the list's `Status` text.
    /// A container removed between list and inspect is left out.
    pub async fn list_containers(&self, all: bool) -> Result<Vec<ContainerInfo>, DockerError> {
        let mut filters = HashMap::new();
        self.filters.add_to(&mut filters);
        let options = ListContainersOptions {
            all,
            filters: (!filters.is_empty()).then_some(filters),
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|err| self.error("list containers", err))?;

        let results: Vec<Result<Option<ContainerInfo>, DockerError>> = stream::iter(summaries)
            .map(|summary| async move {
                let Some(id) = summary.id.as_deref() else {
                    return Ok(None);
                };
                match self.cached_stop_settings(id) {
                    Some((signal, timeout)) => Ok(container_from_summary(&summary, signal).map(
                        |info| ContainerInfo {
                            stop_timeout: timeout,
                            ..info
                        },
                    )),
                    // The same answer as from the cache: a run's start time is read by
                    // inspect when it matters, never trusted from a listing.
                    None => self.inspect(id).await.map(|info| {
                        info.map(|info| ContainerInfo {
                            started_at_unix_nanos: None,
                            ..info
                        })
                    }),
                }
            })
            .buffered(INSPECT_CONCURRENCY)
            .collect()
            .await;

        let mut containers = Vec::with_capacity(results.len());
        for result in results {
            if let Some(info) = result? {
                containers.push(info);
            }
        }
        if all {
            self.forget_stop_settings_except(&containers);
        }
        Ok(containers)
    }

    /// `GET /containers/{id}/json`; `Ok(None)` when there is no such container.
    pub async fn inspect(&self, id_or_name: &str) -> Result<Option<ContainerInfo>, DockerError> {
        let response = match self
            .docker
            .inspect_container(id_or_name, None::<InspectContainerOptions>)
            .await
        {
            Ok(response) => response,
            Err(err) => {
                let err = self.error(format!("inspect container {id_or_name:?}"), err);
                return if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                };
            }
        };
        // Another sidecar's container (`--filter`) is not found here.
        let info = container_from_inspect(&response).filter(|i| self.filters.matches(&i.labels));
        if let Some(info) = &info {
            self.remember_stop_settings(&info.id, info.stop_signal, info.stop_timeout);
        }
        Ok(info)
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout`, or after the container's
    /// own stop timeout (`--stop-timeout`, else 10 s) when `None`.
    pub async fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<(), DockerError> {
        let options = StopContainerOptions {
            t: timeout.map(|t| i32::try_from(t.as_secs()).unwrap_or(i32::MAX)),
            signal: None,
        };
        // The request lasts up to the stop timeout; give it that on top of the usual header wait.
        let wait = timeout.unwrap_or_default() + Duration::from_secs(REQUEST_TIMEOUT_SECS);
        let docker = self.docker.clone().with_timeout(wait);
        docker
            .stop_container(id, Some(options))
            .await
            .map_err(|err| self.error(format!("stop container {id:?}"), err))
    }

    /// `docker start`. Starting a running container is not an error (the engine answers 304).
    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(|err| self.error(format!("start container {id:?}"), err))
    }

    fn cached_stop_settings(&self, id: &str) -> Option<StopSettings> {
        let cache = self
            .stop_settings
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.get(id).copied()
    }

    fn remember_stop_settings(&self, id: &str, signal: i32, timeout: Option<Duration>) {
        let mut cache = self
            .stop_settings
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.insert(id.to_string(), (signal, timeout));
    }

    /// Bounds the cache by what exists: a full listing names every container there is.
    fn forget_stop_settings_except(&self, existing: &[ContainerInfo]) {
        let existing: HashSet<&str> = existing.iter().map(|info| info.id.as_str()).collect();
        let mut cache = self
            .stop_settings
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.retain(|id, _| existing.contains(id.as_str()));
    }
}
