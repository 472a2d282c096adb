//! The stop rule: a container whose run was asked to end is not "running" for any restore
//! decision until Docker reports a run that started after the request.

use std::time::Duration;

use super::*;
use crate::config::DrainMode;
use crate::drain::{DrainResult, Input, StopRequest, Trigger};
use crate::haproxy::types::AdminState::{Drain, Maint, Ready};

/// Unix nanoseconds of table time `ms` (the tables' `unix_ms` is `1_000_000 + ms`).
fn at(ms: u64) -> i64 {
    ((1_000_000 + ms) * 1_000_000) as i64
}

/// `docker kill -s TERM` at table time `ms`; held for stop timeout 2 s + drain timeout 3 s.
fn term(ms: u64) -> Input {
    Input::Stopping {
        trigger: Trigger::DockerEvent,
        sticky: false,
        timeout: None,
        stop: Some(StopRequest::new(
            at(ms),
            Some(Duration::from_secs(2)),
            Duration::from_secs(3),
        )),
    }
}

/// Ground truth of a running container whose run started at table time `ms` (`None`: unknown).
fn running_since(ms: Option<u64>) -> ContainerState {
    ContainerState::Running {
        addr: Some((OLD_IP, Some(8080))),
        started_at_unix_nanos: ms.map(at),
    }
}

fn drained_and_held(term_at: u64) -> Vec<Step> {
    vec![
        (
            0,
            sync(running_since(Some(0)), observed(Ready, 10, true)),
            vec![],
            "in_rotation",
        ),
        (
            term_at,
            term(term_at),
            vec![
                A::Own(Ready, Some(10), false),
                A::Admin(Drain),
                A::Started,
                A::Poll,
            ],
            "draining",
        ),
        (
            term_at + 100,
            Input::Sessions(0),
            vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)],
            "held",
        ),
    ]
}

#[test]
fn a_reconciliation_during_a_graceful_shutdown_does_not_restore() {
    // The timeline of the bug: SIGTERM, drained, then periodic reconciliations see "running"
    // for as long as the app shuts down; only the new start puts the server back.
    let mut steps = drained_and_held(100);
    steps.extend([
        (
            1_600,
            sync(running_since(None), observed(Maint, 10, true)),
            vec![],
            "held",
        ),
        (
            2_600,
            sync(running_since(Some(0)), observed(Maint, 10, true)),
            vec![],
            "held",
        ),
        (3_000, Input::Gate { passed: true }, vec![], "held"),
        (3_100, Input::ReadyRequested, vec![], "held"),
        (3_200, Input::Died, vec![], "held"),
        (
            3_500,
            Input::Started {
                addr: Some((OLD_IP, Some(8080))),
            },
            vec![A::Probe],
            "gating",
        ),
        (
            3_600,
            Input::Gate { passed: true },
            vec![A::Admin(Drain)],
            "warming",
        ),
        (
            3_700,
            Input::HaproxyCheck { passed: true },
            vec![A::Admin(Ready), A::Disown, A::Restored],
            "in_rotation",
        ),
    ]);
    check(DrainMode::Drain, None, steps);
}

#[test]
fn a_run_that_started_after_the_request_is_restored_without_its_start_event() {
    let mut steps = drained_and_held(100);
    steps.extend([
        (
            2_000,
            sync(running_since(Some(1_900)), observed(Maint, 10, true)),
            vec![A::Probe],
            "gating",
        ),
        (
            2_100,
            Input::Gate { passed: true },
            vec![A::Admin(Drain)],
            "warming",
        ),
    ]);
    check(DrainMode::Drain, None, steps);
}

#[test]
fn the_record_keeps_the_request_across_our_own_restart() {
    let t0 = tokio::time::Instant::now();
    let clock = |ms: u64| Clock {
        now: t0 + Duration::from_millis(ms),
        unix_ms: 1_000_000 + ms,
    };
    let mut before = Machine::new(settings(DrainMode::Drain), None);
    before.handle(
        sync(running_since(Some(0)), observed(Ready, 10, true)),
        clock(0),
    );
    let actions = before.handle(term(100), clock(100));
    let Some(Action::Own(record)) = actions.first().cloned() else {
        panic!("the request must be recorded first (write-ahead): {actions:?}");
    };
    assert_eq!(record.stop.map(|s| s.at_unix_nanos), Some(at(100)));
    let text = serde_json::to_string(&record).expect("record serializes");
    let record: Ownership = serde_json::from_str(&text).expect("record deserializes");

    // A new process: still the old run → held; a run started later → gated.
    check(
        DrainMode::Drain,
        Some(record),
        vec![
            (
                500,
                sync(running_since(Some(0)), observed(Maint, 10, true)),
                vec![],
                "held",
            ),
            (
                900,
                sync(running_since(Some(800)), observed(Maint, 10, true)),
                vec![A::Probe],
                "gating",
            ),
        ],
    );
}

#[test]
fn an_ignored_term_is_restored_after_stop_timeout_plus_drain_timeout() {
    let mut steps = drained_and_held(100);
    steps.extend([
        (
            3_000,
            sync(running_since(Some(0)), observed(Maint, 10, true)),
            vec![],
            "held",
        ),
        // Hold: 100 ms + 2 s stop timeout + 3 s drain timeout.
        (5_099, Input::Tick, vec![], "held"),
        (
            5_100,
            Input::Tick,
            vec![A::Own(Ready, Some(10), false), A::StopIgnored, A::Probe],
            "gating",
        ),
        (
            5_200,
            Input::Gate { passed: true },
            vec![A::Admin(Drain)],
            "warming",
        ),
        (
            5_300,
            Input::HaproxyCheck { passed: true },
            vec![A::Admin(Ready), A::Disown, A::Restored],
            "in_rotation",
        ),
    ]);
    check(DrainMode::Drain, None, steps);
}

#[test]
fn the_hold_wakes_the_machine() {
    let t0 = tokio::time::Instant::now();
    let clock = Clock {
        now: t0,
        unix_ms: 1_000_000,
    };
    let mut m = Machine::new(settings(DrainMode::Drain), None);
    m.handle(
        sync(running_since(Some(0)), observed(Ready, 10, true)),
        clock,
    );
    m.handle(term(0), clock);
    m.handle(Input::Sessions(0), clock);
    assert!(m.awaits_new_run());
    assert_eq!(m.next_wakeup(), Some(t0 + Duration::from_secs(5)));
}

#[test]
fn a_stopped_container_is_not_restored_when_the_hold_ends() {
    let mut steps = drained_and_held(100);
    steps.extend([
        (200, Input::Died, vec![], "held"),
        (
            5_100,
            Input::Tick,
            vec![A::Own(Ready, Some(10), false)],
            "held",
        ),
        (
            6_000,
            sync(ContainerState::Stopped, observed(Maint, 10, true)),
            vec![],
            "held",
        ),
    ]);
    check(DrainMode::Drain, None, steps);
}

#[test]
fn a_stop_during_the_gate_ends_it_and_waits_for_the_next_run() {
    check(
        DrainMode::Drain,
        None,
        vec![
            (
                0,
                sync(running_since(Some(0)), observed(Ready, 10, true)),
                vec![],
                "in_rotation",
            ),
            (
                10,
                Input::Died,
                vec![
                    A::Own(Ready, Some(10), false),
                    A::Admin(Maint),
                    A::Started,
                    A::Finished(DrainResult::Aborted, 0),
                ],
                "held",
            ),
            (
                500,
                Input::Started {
                    addr: Some((OLD_IP, Some(8080))),
                },
                vec![A::Probe],
                "gating",
            ),
            (
                600,
                term(600),
                vec![A::Own(Ready, Some(10), false), A::Admin(Maint)],
                "held",
            ),
            (700, Input::Gate { passed: true }, vec![], "held"),
            (
                800,
                sync(running_since(Some(500)), observed(Maint, 10, true)),
                vec![],
                "held",
            ),
        ],
    );
}
