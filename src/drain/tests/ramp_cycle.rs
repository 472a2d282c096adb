//! After a restore: the ramp's steps, an operator's weight winning, a drain or a crash in the
//! middle of a ramp, and the watch's failed mark.

use std::time::Duration;

use super::*;
use crate::config::DrainMode;
use crate::drain::{DrainResult, Input, Ownership, Trigger};
use crate::haproxy::types::AdminState::{Drain, Maint, Ready};

/// Ramps of 1 s: ten steps of 100 ms towards the weight 10 of `observed`.
fn ramping(mode: DrainMode) -> MachineSettings {
    MachineSettings {
        ramp: Duration::from_secs(1),
        ..settings(mode)
    }
}

fn seen(weight: u32) -> Input {
    Input::Observe(observed(Ready, weight, false))
}

/// Serving at weight 10 → stop → drained → started → gate passed at 1000 ms: the ramp's first
/// step (with `mode = "drain"`).
fn out_and_back() -> Vec<Step> {
    vec![
        (
            0,
            sync(running(OLD_IP), observed(Ready, 10, false)),
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
        (
            10,
            Input::Sessions(0),
            vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)],
            "held",
        ),
        (20, Input::Died, vec![], "held"),
        (
            900,
            Input::Started {
                addr: Some((OLD_IP, Some(8080))),
            },
            vec![A::Probe],
            "gating",
        ),
        (
            1000,
            Input::Gate { passed: true },
            vec![
                A::Step(1),
                A::Admin(Ready),
                A::Ramping(Some(10)),
                A::Restored,
            ],
            "in_rotation",
        ),
    ]
}

#[test]
fn the_weight_comes_back_in_steps_and_the_record_goes_with_the_last() {
    let mut steps = out_and_back();
    for k in 2..=10u32 {
        let at = 1000 + 100 * u64::from(k - 1);
        let mut set = vec![A::Step(k)];
        if k == 10 {
            set.push(A::Disown);
        }
        steps.push((at, Input::Tick, vec![A::Read], "in_rotation"));
        steps.push((at, seen(k - 1), set, "in_rotation"));
    }
    steps.push((2500, Input::Tick, vec![], "in_rotation"));
    check_with(ramping(DrainMode::Drain), None, steps);
}

#[test]
fn an_operators_weight_wins_once_a_second_read_confirms_it() {
    let mut steps = out_and_back();
    #[rustfmt::skip]
    steps.extend([
        (1100, Input::Tick, vec![A::Read], "in_rotation"),
        (1100, seen(1), vec![A::Step(2)], "in_rotation"),
        // A reconciliation read shows 7: confirmed by a fresh read before the ramp yields.
        (1150, sync(running(OLD_IP), observed(Ready, 7, false)), vec![A::Read], "in_rotation"),
        (1150, seen(7), vec![A::Yielded(2, 7), A::Disown], "in_rotation"),
        (1300, Input::Tick, vec![], "in_rotation"),
    ]);
    check_with(ramping(DrainMode::Drain), None, steps);
}

#[test]
fn a_stale_read_does_not_end_the_ramp() {
    let mut steps = out_and_back();
    #[rustfmt::skip]
    steps.extend([
        (1100, Input::Tick, vec![A::Read], "in_rotation"),
        // A read another task started before the first step landed: still the old 10.
        (1100, seen(10), vec![A::Read], "in_rotation"),
        (1100, seen(1), vec![A::Step(2)], "in_rotation"),
    ]);
    check_with(ramping(DrainMode::Drain), None, steps);
}

#[test]
fn an_operators_maint_during_the_ramp_is_left_alone() {
    let mut steps = out_and_back();
    #[rustfmt::skip]
    steps.extend([
        (1050, sync(running(OLD_IP), observed(Maint, 1, false)), vec![A::Read], "in_rotation"),
        (1050, Input::Observe(observed(Maint, 1, false)), vec![A::Yielded(1, 1), A::Disown], "operator"),
        (5000, sync(running(OLD_IP), observed(Maint, 1, false)), vec![], "operator"),
    ]);
    check_with(ramping(DrainMode::Drain), None, steps);
}

#[test]
fn a_drain_mid_ramp_wins_and_restores_the_original_weight() {
    let mut steps = out_and_back();
    #[rustfmt::skip]
    steps.extend([
        (1100, Input::Tick, vec![A::Read], "in_rotation"),
        (1100, seen(1), vec![A::Step(2)], "in_rotation"),
        // The record becomes an ordinary one: prior weight 10, not the step's 2.
        (1150, stop(), vec![A::Own(Ready, Some(10), false), A::Admin(Drain), A::Started, A::Poll], "draining"),
        (1160, Input::Sessions(0), vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)], "held"),
        (1170, Input::Died, vec![], "held"),
        (1200, Input::Started { addr: Some((OLD_IP, Some(8080))) }, vec![A::Probe], "gating"),
        (1300, Input::Gate { passed: true }, vec![A::Step(1), A::Admin(Ready), A::Ramping(Some(10)), A::Restored], "in_rotation"),
    ]);
    check_with(ramping(DrainMode::Drain), None, steps);
}

fn ramp_record() -> Ownership {
    Ownership {
        prior_admin: Ready,
        prior_weight: Some(10),
        sticky: false,
        dynamic: false,
        trigger: Trigger::DockerEvent,
        since_unix_ms: 999_000,
        stop: None,
        ramping: true,
    }
}

#[test]
fn a_restart_mid_ramp_sets_the_original_weight_at_once() {
    #[rustfmt::skip]
    let steps = vec![
        (0, sync(running(OLD_IP), observed(Ready, 4, false)), vec![A::Weight(10), A::Disown], "in_rotation"),
        (3000, Input::Tick, vec![], "in_rotation"),
    ];
    check_with(ramping(DrainMode::Drain), Some(ramp_record()), steps);
    // Its container stopped meanwhile: an ordinary hold, restored (ramping) to 10 later.
    #[rustfmt::skip]
    let steps = vec![
        (0, sync(ContainerState::Stopped, observed(Ready, 4, false)), vec![A::Admin(Maint), A::Fix("held_server_not_in_maint")], "held"),
        (100, Input::Started { addr: Some((OLD_IP, Some(8080))) }, vec![A::Probe], "gating"),
        (200, Input::Gate { passed: true }, vec![A::Step(1), A::Admin(Ready), A::Ramping(Some(10)), A::Restored], "in_rotation"),
    ];
    check_with(ramping(DrainMode::Drain), Some(ramp_record()), steps);
}

#[test]
fn a_refused_step_on_a_static_algorithm_gives_the_weight_back_at_once() {
    #[rustfmt::skip]
    let steps = vec![
        (0, sync(running(OLD_IP), observed(Ready, 10, false)), vec![], "in_rotation"),
        (5, stop(), vec![A::Own(Ready, Some(10), false), A::Weight(0), A::Started, A::Poll], "draining"),
        (10, Input::Sessions(0), vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)], "held"),
        (900, Input::Started { addr: Some((OLD_IP, Some(8080))) }, vec![A::Probe], "gating"),
        (1000, Input::Gate { passed: true }, vec![A::Step(1), A::Admin(Ready), A::Ramping(Some(10)), A::Restored], "in_rotation"),
        (1100, Input::Tick, vec![A::Read], "in_rotation"),
        // `static-rr` refused `set weight … 1`: still our 0.
        (1100, seen(0), vec![A::Read], "in_rotation"),
        (1100, seen(0), vec![A::Weight(10), A::Disown], "in_rotation"),
    ];
    check_with(ramping(DrainMode::Weight), None, steps);
}

#[test]
fn a_bad_watch_verdict_holds_the_server_failed_until_ready() {
    let settings = MachineSettings {
        watch: Duration::from_secs(30),
        ..settings(DrainMode::Drain)
    };
    let watch_failed = Input::Stopping {
        trigger: Trigger::Watch,
        sticky: true,
        timeout: None,
        stop: None,
    };
    #[rustfmt::skip]
    let steps = vec![
        (0, sync(running(OLD_IP), observed(Ready, 10, false)), vec![], "in_rotation"),
        (5, stop(), vec![A::Own(Ready, Some(10), false), A::Admin(Drain), A::Started, A::Poll], "draining"),
        (10, Input::Sessions(0), vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)], "held"),
        (900, Input::Started { addr: Some((NEW_IP, Some(8080))) }, vec![A::Addr(NEW_IP), A::Probe], "gating"),
        (1000, Input::Gate { passed: true }, vec![A::Admin(Ready), A::Disown, A::Restored, A::Watch], "in_rotation"),
        // Failed from the start of its drain: a roll waiting on it need not wait for the sessions.
        (3000, watch_failed, vec![A::Own(Ready, Some(10), true), A::Admin(Drain), A::Started, A::Poll], "failed"),
        (3010, Input::Sessions(0), vec![A::Admin(Maint), A::Finished(DrainResult::Drained, 0)], "failed"),
        // Neither a reconciliation nor a new start of the bad container lifts it.
        (4000, sync(running(NEW_IP), Observed { addr: Some(NEW_IP), ..observed(Maint, 10, false) }), vec![], "failed"),
        (5000, Input::Started { addr: Some((NEW_IP, Some(8080))) }, vec![], "failed"),
        (6000, Input::ReadyRequested, vec![A::Own(Ready, Some(10), false), A::Probe], "gating"),
    ];
    check_with(settings, None, steps);
}

#[test]
fn a_new_run_or_address_mid_ramp_goes_back_through_the_gate_to_the_original_weight() {
    let mut steps = out_and_back();
    #[rustfmt::skip]
    steps.extend([
        (1100, Input::Tick, vec![A::Read], "in_rotation"),
        (1100, seen(1), vec![A::Step(2)], "in_rotation"),
        // A start whose die we missed: gated again, the record an ordinary one.
        (1150, Input::Started { addr: Some((NEW_IP, Some(8080))) }, vec![A::Own(Ready, Some(10), false), A::Admin(Maint), A::Addr(NEW_IP), A::Probe], "gating"),
        (1300, Input::Tick, vec![], "gating"),
        (1400, Input::Gate { passed: true }, vec![A::Step(1), A::Admin(Ready), A::Ramping(Some(10)), A::Restored], "in_rotation"),
    ]);
    check_with(ramping(DrainMode::Drain), None, steps);
    // The same found by a reconciliation: the container runs at another address.
    let mut steps = out_and_back();
    #[rustfmt::skip]
    steps.extend([
        (1050, sync(running(NEW_IP), observed(Ready, 1, false)), vec![A::Admin(Maint), A::Fix("held_server_not_in_maint"), A::Addr(NEW_IP), A::Probe], "gating"),
    ]);
    check_with(ramping(DrainMode::Drain), None, steps);
}
