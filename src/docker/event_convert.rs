//! Pure conversion of the engine's raw events to [`ContainerEvent`]s, and of event times to the
//! `since` the stream resumes from. No I/O; never panics on odd input.

use std::collections::HashMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};

use super::convert::strip_slash;
use super::signal::parse_signal;
use super::types::{ContainerEvent, EventAction};

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
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn actions_convert_with_their_attributes() {
        let cases = [
            (
                "kill",
                attrs(&[("signal", "15")]),
                EventAction::Kill { signal: 15 },
            ),
            (
                "kill",
                attrs(&[("signal", "SIGHUP")]),
                EventAction::Kill { signal: 1 },
            ),
            ("kill", attrs(&[]), EventAction::Kill { signal: 0 }),
            (
                "kill",
                attrs(&[("signal", "x")]),
                EventAction::Kill { signal: 0 },
            ),
            (
                "die",
                attrs(&[("exitCode", "137")]),
                EventAction::Die {
                    exit_code: Some(137),
                },
            ),
            ("die", attrs(&[]), EventAction::Die { exit_code: None }),
            (
                "die",
                attrs(&[("exitCode", "")]),
                EventAction::Die { exit_code: None },
            ),
            ("health_status: healthy", attrs(&[]), EventAction::Healthy),
            (
                "health_status: unhealthy",
                attrs(&[]),
                EventAction::Unhealthy,
            ),
            (
                "health_status: starting",
                attrs(&[]),
                EventAction::Other("health_status: starting".into()),
            ),
            ("stop", attrs(&[]), EventAction::Stop),
            ("start", attrs(&[]), EventAction::Start),
            ("restart", attrs(&[]), EventAction::Restart),
            ("destroy", attrs(&[]), EventAction::Destroy),
            ("pause", attrs(&[]), EventAction::Pause),
            ("unpause", attrs(&[]), EventAction::Unpause),
            ("rename", attrs(&[]), EventAction::Other("rename".into())),
            (
                "exec_start: /bin/true",
                attrs(&[]),
                EventAction::Other("exec_start: /bin/true".into()),
            ),
            (
                "\u{1F600}",
                attrs(&[]),
                EventAction::Other("\u{1F600}".into()),
            ),
        ];
        for (action, attributes, expected) in cases {
            assert_eq!(
                event_action(action, &attributes),
                expected,
                "action {action:?}"
            );
        }
    }

    fn message(
        typ: Option<EventMessageTypeEnum>,
        action: Option<&str>,
        id: Option<&str>,
        attributes: Option<HashMap<String, String>>,
    ) -> EventMessage {
        EventMessage {
            typ,
            action: action.map(String::from),
            actor: Some(EventActor {
                id: id.map(String::from),
                attributes,
            }),
            scope: None,
            time: Some(1_795_675_378),
            time_nano: Some(1_795_675_378_009_795_966),
        }
    }

    #[test]
    fn a_full_kill_event_converts() {
        let raw = message(
            Some(EventMessageTypeEnum::CONTAINER),
            Some("kill"),
            Some("9ee857e5"),
            Some(attrs(&[
                ("name", "web1"),
                ("signal", "15"),
                ("facts.role", "web"),
            ])),
        );
        let event = container_event(raw).expect("a container event");
        assert_eq!(event.id, "9ee857e5");
        assert_eq!(event.name, "web1");
        assert_eq!(event.action, EventAction::Kill { signal: 15 });
        assert_eq!(event.time_nano, 1_795_675_378_009_795_966);
        assert_eq!(
            event.attributes.get("facts.role").map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn odd_event_shapes_never_panic() {
        let container = Some(EventMessageTypeEnum::CONTAINER);
        // Nothing to act on: skipped.
        assert!(container_event(message(
            Some(EventMessageTypeEnum::NETWORK),
            Some("connect"),
            Some("n"),
            None
        ))
        .is_none());
        assert!(container_event(message(None, Some("start"), Some("x"), None)).is_none());
        assert!(container_event(message(container, None, Some("x"), None)).is_none());
        assert!(container_event(message(container, Some(""), Some("x"), None)).is_none());
        assert!(container_event(message(container, Some("start"), None, None)).is_none());
        assert!(container_event(EventMessage::default()).is_none());
        let no_actor = EventMessage {
            typ: container,
            action: Some("start".into()),
            ..Default::default()
        };
        assert!(container_event(no_actor).is_none());

        // Missing attributes and times: defaults.
        let bare =
            container_event(message(container, Some("die"), Some("x"), None)).expect("event");
        assert_eq!(bare.name, "");
        assert_eq!(bare.action, EventAction::Die { exit_code: None });
        let no_time = EventMessage {
            time: None,
            time_nano: None,
            ..message(container, Some("start"), Some("x"), None)
        };
        assert_eq!(container_event(no_time).map(|e| e.time_nano), Some(0));
        let seconds_only = EventMessage {
            time_nano: None,
            ..message(container, Some("start"), Some("x"), None)
        };
        assert_eq!(
            container_event(seconds_only).map(|e| e.time_nano),
            Some(1_795_675_378_000_000_000)
        );
        let huge_time = EventMessage {
            time: Some(i64::MAX),
            time_nano: None,
            ..message(container, Some("start"), Some("x"), None)
        };
        assert_eq!(container_event(huge_time).map(|e| e.time_nano), Some(0));
        let slash_name = message(
            container,
            Some("start"),
            Some("x"),
            Some(attrs(&[("name", "/web")])),
        );
        assert_eq!(
            container_event(slash_name).map(|e| e.name),
            Some("web".into())
        );
    }

    #[test]
    fn since_is_fractional_seconds_with_nine_digits() {
        assert_eq!(
            since_param(1_795_675_465_542_273_331),
            "1795675465.542273331"
        );
        assert_eq!(since_param(1_000_000_005), "1.000000005");
        assert_eq!(since_param(0), "0.000000000");
    }
}
