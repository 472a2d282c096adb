use std::time::Duration;

use super::*;

fn encoded(metrics: &Metrics) -> String {
    metrics.encode().expect("the registry encodes")
}

/// Every line of `text` that starts with `series` (a name plus its `{labels}`), with its value.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[test]
fn drains_are_counted_by_trigger_and_result_with_their_duration() {
    let metrics = Metrics::new();
    metrics.drain_started("docker_event", "be_app", "app1");
    metrics.drain_finished(
        "docker_event",
        DrainResult::TimedOut,
        "be_app",
        "app1",
        Duration::from_millis(1500),
        3,
    );
    let text = encoded(&metrics);
    let started = r#"haproxy_drain_drains_started_total{trigger="docker_event",proxy="be_app",server="app1"}"#;
    assert_eq!(value_of(&text, started), Some(1.0), "{text}");
    let finished = r#"haproxy_drain_drains_finished_total{trigger="docker_event",result="timed_out",proxy="be_app",server="app1"}"#;
    assert_eq!(value_of(&text, finished), Some(1.0), "{text}");
    let bucket = r#"haproxy_drain_drain_duration_seconds_bucket{result="timed_out",proxy="be_app",server="app1",le="2.5"}"#;
    assert_eq!(value_of(&text, bucket), Some(1.0), "{text}");
    let below = r#"haproxy_drain_drain_duration_seconds_bucket{result="timed_out",proxy="be_app",server="app1",le="1"}"#;
    assert_eq!(value_of(&text, below), Some(0.0), "{text}");
    let left = r#"haproxy_drain_drain_sessions_left{proxy="be_app",server="app1"}"#;
    assert_eq!(value_of(&text, left), Some(3.0), "{text}");
}

#[test]
fn unknown_triggers_become_other() {
    let metrics = Metrics::new();
    metrics.drain_started("cron-job-42", "be", "s");
    let text = encoded(&metrics);
    let series = r#"haproxy_drain_drains_started_total{trigger="other",proxy="be",server="s"}"#;
    assert_eq!(value_of(&text, series), Some(1.0), "{text}");
}

#[test]
fn out_of_rotation_follows_the_current_owner_only() {
    let metrics = Metrics::new();
    metrics.set_out_of_rotation("be", "s1", Some("operator"));
    metrics.set_out_of_rotation("be", "s2", Some("haproxy-drain"));
    let operator =
        r#"haproxy_drain_servers_out_of_rotation{proxy="be",server="s1",owner="operator"}"#;
    let ours =
        r#"haproxy_drain_servers_out_of_rotation{proxy="be",server="s1",owner="haproxy-drain"}"#;
    assert_eq!(value_of(&encoded(&metrics), operator), Some(1.0));

    metrics.set_out_of_rotation("be", "s1", Some("haproxy-drain"));
    let text = encoded(&metrics);
    assert_eq!(
        value_of(&text, operator),
        Some(0.0),
        "a stale owner's series drops to 0 (kept, so sums show 0, not no data): {text}"
    );
    assert_eq!(value_of(&text, ours), Some(1.0), "{text}");
    let since = r#"haproxy_drain_out_of_rotation_since_timestamp_seconds{proxy="be",server="s1",owner="haproxy-drain"}"#;
    let first_since = value_of(&text, since).expect("since timestamp present");
    assert!(first_since > 1.7e9, "a Unix time, got {first_since}");

    // The same owner again keeps the original "since".
    metrics.set_out_of_rotation("be", "s1", Some("haproxy-drain"));
    assert_eq!(value_of(&encoded(&metrics), since), Some(first_since));

    metrics.set_out_of_rotation("be", "s1", None);
    let text = encoded(&metrics);
    assert_eq!(value_of(&text, ours), Some(0.0), "{text}");
    assert_eq!(
        value_of(&text, since),
        None,
        "no 'since' while in rotation: {text}"
    );
    metrics.forget_server("be", "s1");
    assert!(!encoded(&metrics).contains(r#"server="s1",owner"#));
    let other =
        r#"haproxy_drain_servers_out_of_rotation{proxy="be",server="s2",owner="haproxy-drain"}"#;
    assert_eq!(
        value_of(&text, other),
        Some(1.0),
        "other servers untouched: {text}"
    );
}

#[test]
fn desired_and_actual_state_are_one_hot() {
    let metrics = Metrics::new();
    metrics.set_server_state("be", "s", "maint", "ready");
    let text = encoded(&metrics);
    for (state, desired, actual) in [
        ("ready", 0.0, 1.0),
        ("drain", 0.0, 0.0),
        ("maint", 1.0, 0.0),
    ] {
        let labels = format!(r#"{{proxy="be",server="s",state="{state}"}}"#);
        let want = format!("haproxy_drain_server_desired_state{labels}");
        let have = format!("haproxy_drain_server_actual_state{labels}");
        assert_eq!(value_of(&text, &want), Some(desired), "{text}");
        assert_eq!(value_of(&text, &have), Some(actual), "{text}");
    }
    metrics.forget_server("be", "s");
    let text = encoded(&metrics);
    assert!(
        !text.contains(r#"server="s",state"#),
        "state series must go: {text}"
    );
}

#[test]
fn docker_actions_and_commands_are_bounded() {
    let metrics = Metrics::new();
    metrics.docker_event("health_status: healthy");
    metrics.docker_event("exec_start: /bin/sh -c id");
    metrics.haproxy_command("set_weight", "weird", Duration::from_micros(700));
    let text = encoded(&metrics);
    assert_eq!(
        value_of(
            &text,
            r#"haproxy_drain_docker_events_total{action="healthy"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(
            &text,
            r#"haproxy_drain_docker_events_total{action="other"}"#
        ),
        Some(1.0)
    );
    let errors = r#"haproxy_drain_haproxy_commands_total{command="set_weight",result="error"}"#;
    assert_eq!(value_of(&text, errors), Some(1.0), "{text}");
    let fastest =
        r#"haproxy_drain_haproxy_command_duration_seconds_bucket{command="set_weight",le="0.001"}"#;
    assert_eq!(value_of(&text, fastest), Some(1.0), "{text}");
}

#[test]
fn readiness_needs_docker_and_every_haproxy() {
    let metrics = Metrics::new();
    assert!(matches!(metrics.readiness(), Readiness::NotReady(missing) if missing.len() == 3));
    metrics.set_docker_connected(true);
    metrics.reconciled();
    metrics.set_haproxy_connected("/run/haproxy/a.sock", true);
    metrics.set_haproxy_connected("/run/haproxy/b.sock", false);
    match metrics.readiness() {
        Readiness::NotReady(missing) => {
            assert_eq!(missing, ["haproxy /run/haproxy/b.sock: not connected"])
        }
        Readiness::Ready => panic!("b.sock is down, yet ready"),
    }
    metrics.set_haproxy_connected("/run/haproxy/b.sock", true);
    assert_eq!(metrics.readiness(), Readiness::Ready);
    metrics.set_docker_connected(false);
    assert!(matches!(metrics.readiness(), Readiness::NotReady(_)));
}

#[test]
fn build_info_carries_the_version() {
    let text = encoded(&Metrics::new());
    let series = format!(
        r#"haproxy_drain_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value_of(&text, &series), Some(1.0), "{text}");
}

#[test]
fn a_known_server_has_its_drain_and_restore_counters_at_zero() {
    let metrics = Metrics::new();
    metrics.set_server_state("be", "s", "ready", "ready");
    let text = encoded(&metrics);
    let timed_out = r#"haproxy_drain_drains_finished_total{trigger="docker_event",result="timed_out",proxy="be",server="s"}"#;
    assert_eq!(value_of(&text, timed_out), Some(0.0), "{text}");
    let failed = r#"haproxy_drain_restores_total{result="failed",proxy="be",server="s"}"#;
    assert_eq!(value_of(&text, failed), Some(0.0), "{text}");
}
