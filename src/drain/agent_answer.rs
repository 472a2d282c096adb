//! What the agent-check responder tells HAProxy about a server in pull mode: the admin state
//! and weight the controller last decided, in the words of HAProxy's agent protocol. Pure.
//!
//! HAProxy 2.6 (measured, see docs/agent-check.md): `drain` and `maint` set the same admin bits
//! as the runtime API's `set server … state` (and pause health checks in MAINT, not the agent
//! check); `ready` clears DRAIN and MAINT — an operator's too; `N%` is relative to the initial
//! weight; `up` only raises the agent's own health. A refused or silent agent changes nothing.

use crate::haproxy::{AdminState, WeightSpec};

/// The desired state of one server as the agent answers it. A part is `None` while
/// haproxy-drain has decided nothing about it: HAProxy keeps its own (an operator's) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentAnswer {
    pub admin: Option<AdminState>,
    /// Percent of the server's initial weight (the protocol knows no absolute weights).
    pub weight_percent: Option<u32>,
}

impl AgentAnswer {
    /// Records a `set server … state` the controller decided.
    pub fn set_admin(&mut self, admin: AdminState) {
        self.admin = Some(admin);
    }

    /// Records a `set weight` the controller decided; `initial` is the server's configured
    /// weight, which an agent's `N%` is relative to.
    pub fn set_weight(&mut self, spec: WeightSpec, initial: u32) {
        self.weight_percent = Some(match spec {
            WeightSpec::Percent(percent) => percent,
            WeightSpec::Absolute(weight) => weight_percent(weight, initial),
        });
    }

    /// The line HAProxy reads. `up` goes with `ready` and with no opinion at all (it touches
    /// only the agent's own health, which haproxy-drain never lowers); `drain`/`maint` stand
    /// alone, so a restore is the only answer that raises anything.
    pub fn line(&self) -> String {
        let mut words: Vec<String> = Vec::new();
        match self.admin {
            Some(AdminState::Ready) => words.extend(["ready".into(), "up".into()]),
            Some(AdminState::Drain) => words.push("drain".into()),
            Some(AdminState::Maint) => words.push("maint".into()),
            None => words.push("up".into()),
        }
        if let Some(percent) = self.weight_percent {
            words.push(format!("{percent}%"));
        }
        format!("{}\n", words.join(" "))
    }
}

/// `weight` as a whole percent of `initial`. HAProxy computes `initial × N / 100` rounded down
/// (measured: 54% of 37 is 19), so the percent is rounded up: exact for every initial weight up
/// to 100, and always for 0 and the initial weight itself, the usual restore targets.
pub fn weight_percent(weight: u32, initial: u32) -> u32 {
    if initial == 0 {
        return if weight == 0 { 0 } else { 100 };
    }
    (weight * 100).div_ceil(initial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_gets_back_every_weight_of_an_initial_weight_up_to_100() {
        for initial in 1..=100u32 {
            for weight in 0..=256u32 {
                let percent = weight_percent(weight, initial);
                assert_eq!(
                    initial * percent / 100,
                    weight,
                    "{weight} of {initial}: {percent}%"
                );
            }
        }
    }

    #[test]
    fn lines_say_only_what_was_decided() {
        let cases = [
            (None, None, "up\n"),
            (Some(AdminState::Ready), None, "ready up\n"),
            (Some(AdminState::Ready), Some(100), "ready up 100%\n"),
            (Some(AdminState::Drain), None, "drain\n"),
            (Some(AdminState::Maint), Some(0), "maint 0%\n"),
            (None, Some(0), "up 0%\n"),
        ];
        for (admin, weight_percent, line) in cases {
            let answer = AgentAnswer {
                admin,
                weight_percent,
            };
            assert_eq!(answer.line(), line, "{answer:?}");
        }
    }

    #[test]
    fn weights_become_percent_of_the_initial_weight() {
        let cases = [
            (WeightSpec::Percent(100), 50, 100),
            (WeightSpec::Percent(0), 50, 0),
            (WeightSpec::Absolute(25), 50, 50),
            (WeightSpec::Absolute(50), 50, 100),
            (WeightSpec::Absolute(1), 3, 34),
            (WeightSpec::Absolute(2), 3, 67),
            (WeightSpec::Absolute(20), 37, 55),
            (WeightSpec::Absolute(7), 0, 100),
            (WeightSpec::Absolute(0), 0, 0),
        ];
        for (spec, initial, percent) in cases {
            let mut answer = AgentAnswer::default();
            answer.set_weight(spec, initial);
            assert_eq!(
                answer.weight_percent,
                Some(percent),
                "{spec:?} of {initial}"
            );
        }
    }
}
