//! Who owns a server: operators, sticky API drains, crash records, reconciliation, dynamic servers.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::config::DrainMode;
use crate::drain::{Action, Clock, ContainerState, DrainResult, Input, Machine, Ownership};
use crate::drain::{Owner, Trigger};
use crate::haproxy::types::AdminState::{Drain, Maint, Ready};

#[test]
fn operator_maint_is_never_touched_but_follows_the_address() {
    check(
        DrainMode::Drain,
        None,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Maint, 10, true)),
                vec![],
                "operator",
            ),
            (1, stop(), vec![], "operator"),
            (2, Input::Died, vec![], "operator"),
            (
                3,
                Input::Started {
                    addr: Some((NEW_IP, Some(8080))),
                },
                vec![A::Addr(NEW_IP)],
                "operator",
            ),
            (4, Input::Gate { passed: true }, vec![], "operator"),
        ],
    );
}

#[test]
fn operator_drain_is_escalated_on_death_and_given_back() {
    check(
        DrainMode::Drain,
        None,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Drain, 10, false)),
                vec![],
                "operator",
            ),
            (
                1,
                Input::Died,
                vec![A::Own(Drain, Some(10), false), A::Admin(Maint)],
                "held",
            ),
            (
                2,
                Input::Started {
                    addr: Some((OLD_IP, Some(8080))),
                },
                vec![A::Probe],
                "gating",
            ),
            (
                3,
                Input::Gate { passed: true },
                vec![A::Admin(Drain), A::Disown, A::Restored],
                "operator",
            ),
        ],
    );
}

#[test]
fn api_drain_is_sticky_across_restarts_until_ready() {
    let api = Input::Stopping {
        trigger: Trigger::Api,
        sticky: true,
        timeout: Some(Duration::from_secs(5)),
        stop: None,
    };
    check(
        DrainMode::Drain,
        None,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Ready, 10, false)),
                vec![],
                "in_rotation",
            ),
            (
                0,
                api,
                vec![
                    A::Own(Ready, Some(10), true),
                    A::Admin(Drain),
                    A::Started,
                    A::Poll,
                ],
                "draining",
            ),
            (
                5,
                Input::Sessions(0),
                vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)],
                "held",
            ),
            (10, Input::Died, vec![], "held"),
            (
                20,
                Input::Started {
                    addr: Some((OLD_IP, Some(8080))),
                },
                vec![],
                "held",
            ),
            (
                30,
                Input::ReadyRequested,
                vec![A::Own(Ready, Some(10), false), A::Probe],
                "gating",
            ),
            (
                40,
                Input::Gate { passed: true },
                vec![A::Admin(Ready), A::Disown, A::Restored],
                "in_rotation",
            ),
        ],
    );
}

#[test]
fn reconcile_takes_stopped_containers_out_and_repairs_a_reload() {
    check(
        DrainMode::Drain,
        None,
        vec![
            // First sight: container stopped but HAProxy has it in rotation.
            (
                0,
                sync(ContainerState::Stopped, observed(Ready, 10, true)),
                vec![
                    A::Own(Ready, Some(10), false),
                    A::Admin(Maint),
                    A::Fix("stopped_container_in_rotation"),
                ],
                "held",
            ),
            (
                10,
                sync(ContainerState::Stopped, observed(Maint, 10, true)),
                vec![],
                "held",
            ),
            // HAProxy reloaded: runtime state reset to the config.
            (
                20,
                sync(ContainerState::Stopped, observed(Ready, 10, true)),
                vec![A::Admin(Maint), A::Fix("held_server_not_in_maint")],
                "held",
            ),
        ],
    );
}

#[test]
fn restart_after_own_crash_restores_from_the_record() {
    let record = Ownership {
        prior_admin: Ready,
        prior_weight: Some(10),
        sticky: false,
        dynamic: false,
        trigger: Trigger::DockerEvent,
        since_unix_ms: 999_000,
        stop: None,
        ramping: false,
    };
    check(
        DrainMode::Drain,
        Some(record),
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Drain, 10, false)),
                vec![A::Admin(Maint), A::Probe],
                "gating",
            ),
            (
                5,
                Input::Gate { passed: true },
                vec![A::Admin(Ready), A::Disown, A::Restored],
                "in_rotation",
            ),
        ],
    );
}

#[test]
fn recreate_while_serving_is_gated_at_the_new_address() {
    check(
        DrainMode::Drain,
        None,
        vec![
            (
                0,
                sync(running(NEW_IP), observed(Ready, 10, false)),
                vec![
                    A::Own(Ready, Some(10), false),
                    A::Admin(Maint),
                    A::Addr(NEW_IP),
                    A::Fix("address"),
                    A::Probe,
                ],
                "gating",
            ),
            (
                10_000,
                Input::Tick,
                vec![A::GateTimeout, A::Probe],
                "gating",
            ),
            (
                10_010,
                Input::Gate { passed: true },
                vec![A::Admin(Ready), A::Disown, A::Restored],
                "in_rotation",
            ),
        ],
    );
}

#[test]
fn dynamic_server_is_deleted_on_destroy() {
    let record = Ownership {
        prior_admin: Ready,
        prior_weight: Some(1),
        sticky: false,
        dynamic: true,
        trigger: Trigger::DockerEvent,
        since_unix_ms: 0,
        stop: None,
        ramping: false,
    };
    check(
        DrainMode::Drain,
        Some(record),
        vec![
            (
                0,
                sync(ContainerState::Stopped, observed(Maint, 1, true)),
                vec![],
                "held",
            ),
            (1, Input::Destroyed, vec![A::Del, A::Disown], "unknown"),
        ],
    );
}

#[test]
fn owner_is_reported() {
    let t0 = Instant::now();
    let clock = Clock {
        now: t0,
        unix_ms: 0,
    };
    let mut m = Machine::new(settings(DrainMode::Drain), None);
    m.handle(sync(running(OLD_IP), observed(Ready, 10, true)), clock);
    assert_eq!(m.owner(), Owner::None);
    m.handle(stop(), clock);
    assert_eq!(m.owner(), Owner::HaproxyDrain);
    let mut op = Machine::new(settings(DrainMode::Drain), None);
    op.handle(sync(running(OLD_IP), observed(Maint, 10, true)), clock);
    assert_eq!(op.owner(), Owner::Operator);
    assert_eq!(op.next_wakeup(), None);
    assert!(m.next_wakeup().is_some());
}

#[test]
fn a_fresh_read_before_acting_respects_a_new_operator_maint() {
    check(
        DrainMode::Drain,
        None,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Ready, 10, true)),
                vec![],
                "in_rotation",
            ),
            (
                1,
                Input::Observe(observed(Maint, 10, true)),
                vec![],
                "operator",
            ),
            (2, stop(), vec![], "operator"),
            (3, Input::Died, vec![], "operator"),
            (
                4,
                Input::Observe(observed(Ready, 10, true)),
                vec![],
                "in_rotation",
            ),
        ],
    );
}

#[test]
fn a_dynamic_server_is_deleted_even_after_a_restore() {
    let t0 = Instant::now();
    let clock = |ms: u64| Clock {
        now: t0 + Duration::from_millis(ms),
        unix_ms: ms,
    };
    let mut m = Machine::new(settings(DrainMode::Drain), None);
    m.set_dynamic(true);
    m.handle(sync(running(OLD_IP), observed(Ready, 9, false)), clock(0));
    m.handle(stop(), clock(1));
    m.handle(Input::Died, clock(2));
    let actions = m.handle(Input::Destroyed, clock(3));
    assert!(actions.contains(&Action::DelServer), "{actions:?}");
}

#[test]
fn a_published_port_address_is_kept() {
    let mut loopback = observed(Ready, 10, false);
    loopback.addr = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    loopback.port = Some(18081);
    check(
        DrainMode::Drain,
        None,
        vec![
            (0, sync(running(NEW_IP), loopback), vec![], "in_rotation"),
            (
                1,
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
                2,
                Input::Started {
                    addr: Some((NEW_IP, None)),
                },
                vec![A::Probe],
                "gating",
            ),
        ],
    );
}

#[test]
fn an_unresolved_address_is_replaced_by_the_container_address() {
    let mut unresolved = observed(Ready, 10, false);
    unresolved.addr = Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    check(
        DrainMode::Drain,
        None,
        vec![(
            0,
            sync(running(NEW_IP), unresolved),
            vec![
                A::Own(Ready, Some(10), false),
                A::Admin(Maint),
                A::Addr(NEW_IP),
                A::Fix("address"),
                A::Probe,
            ],
            "gating",
        )],
    );
}
