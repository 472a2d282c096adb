//! What the agent answers in each phase (pull mode): the machine's own admin and weight actions,
//! recorded the way the responder records them, and nothing for what it never decided.

use super::*;
use crate::drain::agent_answer::AgentAnswer;
use crate::drain::server_options::weight_spec;
use crate::haproxy::types::AdminState::{Drain, Maint, Ready};

/// (elapsed ms, input, phase after it, the agent's answer after it)
type AgentStep = (u64, Input, &'static str, &'static str);

fn check_answers(mode: DrainMode, steps: Vec<AgentStep>) {
    let t0 = Instant::now();
    let mut machine = Machine::new(settings(mode), None);
    let mut answer = AgentAnswer::default();
    let initial = observed(Ready, 10, true).initial_weight;
    for (i, (ms, input, phase, line)) in steps.into_iter().enumerate() {
        let clock = Clock {
            now: t0 + Duration::from_millis(ms),
            unix_ms: 1_000_000 + ms,
        };
        for action in machine.handle(input.clone(), clock) {
            match action {
                Action::SetAdmin(state) => answer.set_admin(state),
                Action::SetWeight(w) => answer.set_weight(weight_spec(w, Some(initial)), initial),
                _ => {}
            }
        }
        assert_eq!(machine.phase_name().as_str(), phase, "step {i} ({input:?})");
        assert_eq!(answer.line(), line, "step {i} ({input:?})");
    }
}

fn started() -> Input {
    Input::Started {
        addr: Some((OLD_IP, Some(8080))),
    }
}

#[test]
fn each_phase_of_a_cycle_answers_its_admin_state() {
    check_answers(
        DrainMode::Drain,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Ready, 10, true)),
                "in_rotation",
                "up\n",
            ),
            (5, stop(), "draining", "drain\n"),
            (10, Input::Sessions(0), "held", "maint\n"),
            (20, Input::Died, "held", "maint\n"),
            (900, started(), "gating", "maint\n"),
            (910, Input::Gate { passed: true }, "warming", "drain\n"),
            (1010, Input::Tick, "warming", "drain\n"),
            (
                1020,
                Input::HaproxyCheck { passed: true },
                "in_rotation",
                "ready up\n",
            ),
        ],
    );
}

#[test]
fn weight_mode_answers_percent_of_the_initial_weight_and_restores_it() {
    check_answers(
        DrainMode::Weight,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Ready, 10, true)),
                "in_rotation",
                "up\n",
            ),
            (5, stop(), "draining", "up 0%\n"),
            (10, Input::Sessions(0), "held", "maint 0%\n"),
            (900, started(), "gating", "maint 0%\n"),
            (910, Input::Gate { passed: true }, "warming", "drain 0%\n"),
            (1010, Input::Tick, "warming", "drain 0%\n"),
            (
                1020,
                Input::HaproxyCheck { passed: true },
                "in_rotation",
                "ready up 100%\n",
            ),
        ],
    );
}

#[test]
fn an_operators_own_state_gets_no_opinion() {
    check_answers(
        DrainMode::Drain,
        vec![
            (
                0,
                sync(running(OLD_IP), observed(Drain, 10, true)),
                "operator",
                "up\n",
            ),
            (1, stop(), "operator", "up\n"),
            (
                2,
                sync(running(OLD_IP), observed(Maint, 10, true)),
                "operator",
                "up\n",
            ),
        ],
    );
}
