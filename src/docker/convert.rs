//! Pure conversions from bollard's API models to our types. No I/O; never panics on odd input.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, EndpointSettings, EventMessage, EventMessageTypeEnum,
    HealthStatusEnum,
};

use super::types::{ContainerEvent, ContainerInfo, EventAction, HealthStatus};

/// SIGTERM: what Docker sends on `docker stop` when no stop signal is configured.
pub const DEFAULT_STOP_SIGNAL: i32 = 15;

/// Linux signal numbers by name (x86_64/arm64 numbering, which is what Docker engines run on).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Parses a signal the way Docker accepts it: `"SIGUSR1"`, `"USR1"`, `"sigusr1"`, `"10"`,
/// `"SIGRTMIN+3"`. `None` for anything else.
pub fn parse_signal(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return (1..=SIGRTMAX).contains(&number).then_some(number);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, number)) = SIGNALS.iter().find(|(known, _)| *known == name) {
        return Some(*number);
    }
    let realtime = |base: i32, rest: &str| -> Option<i32> {
        let offset = match rest {
            "" => 0,
            _ => rest.parse::<i32>().ok()?,
        };
        let number = base + offset;
        (SIGRTMIN..=SIGRTMAX).contains(&number).then_some(number)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return realtime(SIGRTMIN, rest.strip_prefix('+').unwrap_or(rest));
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(down) => realtime(SIGRTMAX, &format!("-{down}")),
            None if rest.is_empty() => Some(SIGRTMAX),
            None => None,
        };
    }
    None
}

/// `Config.StopSignal` as a number: missing, empty or unparsable means Docker's default, SIGTERM.
pub fn parse_stop_signal(config_value: Option<&str>) -> i32 {
    config_value
        .filter(|text| !text.trim().is_empty())
        .and_then(parse_signal)
        .unwrap_or(DEFAULT_STOP_SIGNAL)
}

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

fn strip_slash(name: &str) -> String {
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

/// The `Action` string of a container event as an [`EventAction`].
///
/// `kill` without a parsable `signal` attribute gets signal 0, which no caller treats as
/// terminating: the `die` that follows a real kill is the safety net.
pub fn event_action(action: &str, attributes: &HashMap<String, String>) -> EventAction {
    match action {
        "kill" => EventAction::Kill {
            signal: attributes
                .get("signal")
                .and_then(|signal| parse_signal(signal))
                .unwrap_or(0),
        },
        "die" => EventAction::Die {
            exit_code: attributes
                .get("exitCode")
                .and_then(|code| code.trim().parse::<i32>().ok()),
        },
        "stop" => EventAction::Stop,
        "start" => EventAction::Start,
        "restart" => EventAction::Restart,
        "destroy" => EventAction::Destroy,
        "pause" => EventAction::Pause,
        "unpause" => EventAction::Unpause,
        "health_status: healthy" => EventAction::Healthy,
        "health_status: unhealthy" => EventAction::Unhealthy,
        other => EventAction::Other(other.to_string()),
    }
}

/// A raw event as a [`ContainerEvent`]; `None` for non-container events and events without an
/// actor ID or action (nothing could act on them).
pub fn container_event(message: EventMessage) -> Option<ContainerEvent> {
    if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let action = message.action.filter(|action| !action.is_empty())?;
    let actor = message.actor?;
    let id = actor.id.filter(|id| !id.is_empty())?;
    let attributes = actor.attributes.unwrap_or_default();
    let time_nano = message
        .time_nano
        .or_else(|| {
            message
                .time
                .and_then(|secs| secs.checked_mul(1_000_000_000))
        })
        .unwrap_or(0);
    Some(ContainerEvent {
        name: attributes
            .get("name")
            .map(|name| strip_slash(name))
            .unwrap_or_default(),
        action: event_action(&action, &attributes),
        id,
        attributes,
        time_nano,
    })
}

/// `timeNano` as the `since` query value the events endpoint accepts: `"secs.nanos"`.
pub fn since_param(time_nano: i64) -> String {
    let secs = time_nano.div_euclid(1_000_000_000);
    let nanos = time_nano.rem_euclid(1_000_000_000);
    format!("{secs}.{nanos:09}")
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
