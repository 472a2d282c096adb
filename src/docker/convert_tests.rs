use super::*;
use bollard::models::{EventActor, EventMessageTypeEnum};

fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn stop_signals_in_every_spelling() {
    let cases: &[(Option<&str>, i32)] = &[
        (None, 15),
        (Some(""), 15),
        (Some("  "), 15),
        (Some("SIGUSR1"), 10),
        (Some("USR1"), 10),
        (Some("sigusr1"), 10),
        (Some("10"), 10),
        (Some("SIGTERM"), 15),
        (Some("SIGQUIT"), 3),
        (Some("SIGKILL"), 9),
        (Some("SIGWINCH"), 28),
        (Some("SIGRTMIN"), 34),
        (Some("SIGRTMIN+3"), 37),
        (Some("RTMAX-2"), 62),
        (Some("SIGRTMAX"), 64),
        (Some("SIGBOGUS"), 15),
        (Some("0"), 15),
        (Some("65"), 15),
        (Some("-3"), 15),
        (Some("SIGRTMIN+99"), 15),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_stop_signal(*input), *expected, "input {input:?}");
    }
}

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
    let bare = container_event(message(container, Some("die"), Some("x"), None)).expect("event");
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
