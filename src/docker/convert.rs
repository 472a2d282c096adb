//! Pure conversions from bollard's container models to [`ContainerInfo`]. No I/O; never panics
//! on odd input. Events are converted in [`super::event_convert`], signals in [`super::signal`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, EndpointSettings, HealthStatusEnum,
};

use super::signal::parse_stop_signal;
use super::types::{ContainerInfo, HealthStatus};

/// Health from the `Status` text of `GET /containers/json` (API 1.41 has no `Health` field there):
/// `"Up 3 seconds (healthy)"`, `"Up 1 second (health: starting)"`, `"Up 2 minutes (unhealthy)"`.
pub fn health_from_status_text(status: &str) -> Option<HealthStatus> {
    if status.ends_with("(healthy)") {
        Some(HealthStatus::Healthy)
    } else if status.ends_with("(unhealthy)") {
        Some(HealthStatus::Unhealthy)
    } else if status.ends_with("(health: starting)") {
        Some(HealthStatus::Starting)
    } else {
        None
    }
}

fn health_from_enum(status: Option<HealthStatusEnum>) -> Option<HealthStatus> {
    match status? {
        HealthStatusEnum::STARTING => Some(HealthStatus::Starting),
        HealthStatusEnum::HEALTHY => Some(HealthStatus::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(HealthStatus::Unhealthy),
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
    }
}

/// Network name → IP, sorted by network name; networks without a parsable address are left out.
fn networks_from(endpoints: Option<&HashMap<String, EndpointSettings>>) -> Vec<(String, IpAddr)> {
    let mut networks: Vec<(String, IpAddr)> = endpoints
        .into_iter()
        .flatten()
        .filter_map(|(name, endpoint)| {
            let ip = endpoint.ip_address.as_deref()?.parse::<IpAddr>().ok()?;
            Some((name.clone(), ip))
        })
        .collect();
    networks.sort();
    networks
}

/// Docker names containers `/name`; we, like the CLI, say `name`.
pub(super) fn strip_slash(name: &str) -> String {
    name.strip_prefix('/').unwrap_or(name).to_string()
}

/// A list entry as a [`ContainerInfo`]. The list has no stop signal, so the caller supplies it.
/// `running` means state `running` exactly: paused or restarting containers serve nothing.
/// `image` is the list's `Image`: the name used at creation, or the image ID once that name has
/// been moved to another image (inspect keeps reporting the name).
pub fn container_from_summary(
    summary: &ContainerSummary,
    stop_signal: i32,
) -> Option<ContainerInfo> {
    let id = summary.id.clone().filter(|id| !id.is_empty())?;
    let name = summary
        .names
        .as_ref()
        .and_then(|names| names.first())
        .map(|name| strip_slash(name))
        .unwrap_or_default();
    Some(ContainerInfo {
        id,
        name,
        labels: summary.labels.clone().unwrap_or_default(),
        running: summary.state == Some(ContainerSummaryStateEnum::RUNNING),
        health: summary.status.as_deref().and_then(health_from_status_text),
        networks: networks_from(
            summary
                .network_settings
                .as_ref()
                .and_then(|settings| settings.networks.as_ref()),
        ),
        stop_signal,
        image: summary.image.clone().unwrap_or_default(),
        started_at_unix_nanos: None,
        stop_timeout: None,
    })
}

/// `GET /containers/{id}/json` as a [`ContainerInfo`].
pub fn container_from_inspect(inspect: &ContainerInspectResponse) -> Option<ContainerInfo> {
    let id = inspect.id.clone().filter(|id| !id.is_empty())?;
    let config = inspect.config.as_ref();
    let state = inspect.state.as_ref();
    Some(ContainerInfo {
        id,
        name: inspect.name.as_deref().map(strip_slash).unwrap_or_default(),
        labels: config
            .and_then(|config| config.labels.clone())
            .unwrap_or_default(),
        running: state.and_then(|state| state.status) == Some(ContainerStateStatusEnum::RUNNING),
        health: health_from_enum(state.and_then(|state| state.health.as_ref()?.status)),
        networks: networks_from(
            inspect
                .network_settings
                .as_ref()
                .and_then(|settings| settings.networks.as_ref()),
        ),
        stop_signal: parse_stop_signal(config.and_then(|config| config.stop_signal.as_deref())),
        image: config
            .and_then(|config| config.image.clone())
            .or_else(|| inspect.image.clone())
            .unwrap_or_default(),
        started_at_unix_nanos: state
            .and_then(|state| state.started_at.as_deref())
            .and_then(parse_docker_time),
        stop_timeout: config
            .and_then(|config| config.stop_timeout)
            .and_then(|secs| u64::try_from(secs).ok())
            .map(Duration::from_secs),
    })
}

/// Docker's RFC 3339 times (`2026-12-01T20:34:12.123456789Z`) as Unix nanoseconds; `None` for
/// the zero time (`0001-01-01T00:00:00Z`, never started) or anything unparsable.
pub fn parse_docker_time(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_nanos()).ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_from_the_list_status_text() {
        let cases = [
            ("Up 3 seconds (healthy)", Some(HealthStatus::Healthy)),
            ("Up 2 minutes (unhealthy)", Some(HealthStatus::Unhealthy)),
            (
                "Up 1 second (health: starting)",
                Some(HealthStatus::Starting),
            ),
            ("Up 5 seconds", None),
            ("Up 5 seconds (Paused)", None),
            ("Exited (0) 3 seconds ago", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(health_from_status_text(text), expected, "status {text:?}");
        }
    }
}
