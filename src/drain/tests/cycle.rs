//! Stop → drain → maint → start → gate → restore, and its variations.

use super::*;
use crate::config::DrainMode;
use crate::drain::{DrainResult, Input};
use crate::haproxy::types::AdminState::{Drain, Maint, Ready};

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
            (50, Input::Tick, vec![A::Poll], "draining"),
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
