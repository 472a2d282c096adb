//! Data-driven tables: each scenario is a list of (elapsed ms, input, expected actions, phase).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::config::DrainMode;
use crate::controller::handle::{Owner, Trigger};
use crate::haproxy::types::AdminState::{Drain, Maint, Ready};

const OLD_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2));
const NEW_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 18, 0, 9));

fn settings(mode: DrainMode) -> MachineSettings {
    MachineSettings {
        mode,
        drain_timeout: Duration::from_secs(30),
        shutdown_sessions: true,
        health_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        probe_interval: Duration::from_millis(250),
    }
}

fn observed(admin: AdminState, weight: u32, checks: bool) -> Observed {
    Observed {
        admin,
        weight,
        initial_weight: 10,
        addr: Some(OLD_IP),
        port: Some(8080),
        checks_enabled: checks,
    }
}

fn running(ip: IpAddr) -> ContainerState {
    ContainerState::Running {
        addr: Some((ip, Some(8080))),
    }
}

fn sync(container: ContainerState, haproxy: Observed) -> Input {
    Input::Sync { container, haproxy }
}

fn stop() -> Input {
    Input::Stopping {
        trigger: Trigger::DockerEvent,
        sticky: false,
        timeout: None,
    }
}

/// Drops the parts of actions that carry times, so tables stay readable.
#[derive(Debug, PartialEq, Eq)]
enum A {
    Admin(AdminState),
    Weight(u32),
    Addr(IpAddr),
    Shutdown,
    Del,
    Poll,
    Probe,
    Check,
    Own(AdminState, Option<u32>, bool),
    Disown,
    Started,
    Finished(DrainResult, u64),
    Restored,
    GateTimeout,
    Fix(&'static str),
}

fn simplify(actions: Vec<Action>) -> Vec<A> {
    actions
        .into_iter()
        .map(|a| match a {
            Action::SetAdmin(s) => A::Admin(s),
            Action::SetWeight(w) => A::Weight(w),
            Action::SetAddr(ip, _) => A::Addr(ip),
            Action::ShutdownSessions => A::Shutdown,
            Action::DelServer => A::Del,
            Action::PollSessions => A::Poll,
            Action::Probe => A::Probe,
            Action::PollCheck => A::Check,
            Action::Own(o) => A::Own(o.prior_admin, o.prior_weight, o.sticky),
            Action::Disown => A::Disown,
            Action::Report(Report::DrainStarted { .. }) => A::Started,
            Action::Report(Report::DrainFinished {
                result,
                sessions_left,
                ..
            }) => A::Finished(result, sessions_left),
            Action::Report(Report::Restored { .. }) => A::Restored,
            Action::Report(Report::GateTimedOut { .. }) => A::GateTimeout,
            Action::Report(Report::Correction(kind)) => A::Fix(kind),
        })
        .collect()
}

type Step = (u64, Input, Vec<A>, &'static str);

fn check(mode: DrainMode, owned: Option<Ownership>, steps: Vec<Step>) {
    let t0 = Instant::now();
    let mut machine = Machine::new(settings(mode), owned);
    for (i, (ms, input, expected, phase)) in steps.into_iter().enumerate() {
        let clock = Clock {
            now: t0 + Duration::from_millis(ms),
            unix_ms: 1_000_000 + ms,
        };
        let got = simplify(machine.handle(input.clone(), clock));
        assert_eq!(got, expected, "step {i} ({input:?}) actions");
        assert_eq!(machine.phase_name(), phase, "step {i} ({input:?}) phase");
    }
}

#[test]
fn stop_drains_then_maint_then_restart_restores() {
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
                5,
                stop(),
                vec![
                    A::Own(Ready, Some(10), false),
                    A::Admin(Drain),
                    A::Started,
                    A::Poll,
                ],
                "draining",
            ),
            (50, Input::Tick, vec![], "draining"),
            (105, Input::Tick, vec![A::Poll], "draining"),
            (110, Input::Sessions(3), vec![], "draining"),
            (210, Input::Tick, vec![A::Poll], "draining"),
            (
                215,
                Input::Sessions(0),
                vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)],
                "held",
            ),
            (300, Input::Died, vec![], "held"),
            (
                900,
                Input::Started {
                    addr: Some((OLD_IP, Some(8080))),
                },
                vec![A::Probe],
                "gating",
            ),
            (950, Input::Gate { passed: false }, vec![], "gating"),
            (1150, Input::Tick, vec![A::Probe], "gating"),
            (
                1160,
                Input::Gate { passed: true },
                vec![A::Admin(Drain)],
                "warming",
            ),
            (1260, Input::Tick, vec![A::Check], "warming"),
            (
                1270,
                Input::HaproxyCheck { passed: false },
                vec![],
                "warming",
            ),
            (1370, Input::Tick, vec![A::Check], "warming"),
            (
                1380,
                Input::HaproxyCheck { passed: true },
                vec![A::Admin(Ready), A::Disown, A::Restored],
                "in_rotation",
            ),
        ],
    );
}

#[test]
fn drain_timeout_shuts_sessions_and_holds() {
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
                0,
                stop(),
                vec![
                    A::Own(Ready, Some(10), false),
                    A::Admin(Drain),
                    A::Started,
                    A::Poll,
                ],
                "draining",
            ),
            (10, Input::Sessions(4), vec![], "draining"),
            (
                30_000,
                Input::Tick,
                vec![
                    A::Shutdown,
                    A::Admin(Maint),
                    A::Finished(DrainResult::TimedOut, 4),
                ],
                "held",
            ),
        ],
    );
}

#[test]
fn crash_goes_to_maint_at_once_and_comes_back_at_the_new_address() {
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
                350,
                Input::Started {
                    addr: Some((NEW_IP, Some(8080))),
                },
                vec![A::Addr(NEW_IP), A::Probe],
                "gating",
            ),
            // No HAProxy checks on this backend: the gate alone decides.
            (
                400,
                Input::Gate { passed: true },
                vec![A::Admin(Ready), A::Disown, A::Restored],
                "in_rotation",
            ),
        ],
    );
}

#[test]
fn weight_mode_restores_the_prior_weight_not_one() {
    check(
        DrainMode::Weight,
        None,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Ready, 37, false)),
                vec![],
                "in_rotation",
            ),
            (
                0,
                stop(),
                vec![
                    A::Own(Ready, Some(37), false),
                    A::Weight(0),
                    A::Started,
                    A::Poll,
                ],
                "draining",
            ),
            (
                20,
                Input::Sessions(0),
                vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)],
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
                Input::Gate { passed: true },
                vec![A::Weight(37), A::Admin(Ready), A::Disown, A::Restored],
                "in_rotation",
            ),
        ],
    );
}

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
fn unhealthy_drains_and_healthy_again_restores() {
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
                stop(),
                vec![
                    A::Own(Ready, Some(10), false),
                    A::Admin(Drain),
                    A::Started,
                    A::Poll,
                ],
                "draining",
            ),
            (
                2,
                Input::Sessions(0),
                vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)],
                "held",
            ),
            (3, Input::Gate { passed: false }, vec![], "held"),
            (900, Input::Gate { passed: true }, vec![A::Probe], "gating"),
            (
                901,
                Input::Gate { passed: true },
                vec![A::Admin(Drain)],
                "warming",
            ),
            (
                1000,
                Input::HaproxyCheck { passed: true },
                vec![A::Admin(Ready), A::Disown, A::Restored],
                "in_rotation",
            ),
        ],
    );
}
