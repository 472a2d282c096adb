//! What follows a restore: the slow start (`ramp`) and the watch's failed mark.
//!
//! A ramp keeps the ownership record, marked `ramping`, until its last step: the record's
//! `prior_weight` is the target, so a drain in the middle of a ramp restores the original weight
//! (not the step it had reached), and a restart in the middle sets that weight at once. Every
//! step first re-reads the server (`ReadServer` → `Observe`): a weight that is not the one the
//! ramp set last is someone else's, and the ramp ends without touching it again.

use std::time::Duration;

use super::machine::{Machine, Phase};
use super::ramp::Ramp;
use super::{Action, Clock, ContainerState, Input, Observed, Ownership, Report, Trigger};
use crate::config::DrainMode;

impl Machine {
    /// The ramp a restore to `owned` starts, if any: a ramp period is set and the server goes
    /// back into rotation at a weight above 1.
    pub(super) fn ramp_for(&self, owned: &Ownership, back_in: bool, clock: Clock) -> Option<Ramp> {
        let target = owned.prior_weight?;
        if !back_in || self.settings.ramp.is_zero() {
            return None;
        }
        Ramp::start(self.settings.ramp, target, clock.now)
    }

    /// Taken out by the post-restore watch and not yet handed back with `ready`.
    pub(super) fn failed(&self) -> bool {
        self.owned
            .as_ref()
            .is_some_and(|o| o.trigger == Trigger::Watch && o.sticky)
    }

    fn ramping(&self) -> bool {
        self.owned.as_ref().is_some_and(|o| o.ramping)
    }

    /// A stop, a death or a new run in the middle of a ramp: the ramp ends, and the record
    /// becomes an ordinary one for what follows (the original weight, the new trigger and time).
    pub(super) fn interrupt_ramp(&mut self, input: &Input, clock: Clock, out: &mut Vec<Action>) {
        let trigger = match input {
            Input::Stopping { trigger, .. } => *trigger,
            Input::Died | Input::Destroyed | Input::Started { .. } => Trigger::DockerEvent,
            _ => return,
        };
        if !self.ramping() {
            return;
        }
        self.ramp = None;
        if let Some(owned) = self.owned.as_mut() {
            owned.ramping = false;
            owned.trigger = trigger;
            owned.since_unix_ms = clock.unix_ms;
            out.push(Action::Own(owned.clone()));
        }
    }

    /// `Sync`: the ramp's, else the ordinary correction.
    pub(super) fn sync_after(
        &mut self,
        container: ContainerState,
        obs: Observed,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        if !self.ramp_synced(container, obs, out) {
            self.sync(container, obs, clock, out);
        }
    }

    /// `Observe`: the ramp's, else the ordinary one.
    pub(super) fn observe_after(
        &mut self,
        observed: Observed,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        if !self.ramp_observed(observed, clock, out) {
            self.observe(observed);
        }
    }

    /// The next step is due: read the server first (the answer comes back as `Observe`). The
    /// step is retried a poll interval later if the read brings nothing.
    pub(super) fn ramp_due(&mut self, clock: Clock, out: &mut Vec<Action>) {
        let retry = self.settings.poll_interval.max(Duration::from_millis(10));
        if let Some(ramp) = self.ramp.as_mut().filter(|r| clock.now >= r.next) {
            ramp.next = clock.now + retry;
            out.push(Action::ReadServer);
        }
    }

    /// `Observe` during a ramp: the next step when the weight is still ours, else the ramp
    /// yields. Returns false when no ramp runs (the ordinary `observe` applies).
    fn ramp_observed(&mut self, observed: Observed, clock: Clock, out: &mut Vec<Action>) -> bool {
        let Some(mut ramp) = self.ramp.filter(|_| self.phase == Phase::Serving) else {
            return false;
        };
        self.observed = Some(observed);
        if !observed.in_rotation() || observed.weight != ramp.last_set {
            self.ramp_mismatch(ramp, observed, out);
            return true;
        }
        let step = ramp.advance(clock.now);
        if observed.weight != step.weight {
            out.push(Action::RampStep(step.weight));
            if let Some(o) = self.observed.as_mut() {
                o.weight = step.weight;
            }
        }
        if step.next_after.is_some() {
            self.ramp = Some(ramp);
        } else {
            self.end_ramp(out);
        }
        true
    }

    /// Ground truth during (or, after a restart, left over from) a ramp. Returns false when the
    /// ordinary `sync` must handle it: the container stopped, runs at another address or was
    /// asked to stop. A server out of rotation was taken out by someone else (a restore HAProxy
    /// refused never became a ramp).
    fn ramp_synced(
        &mut self,
        container: ContainerState,
        obs: Observed,
        out: &mut Vec<Action>,
    ) -> bool {
        if !self.ramping() {
            return false;
        }
        self.observed = Some(obs);
        let moved = match container {
            ContainerState::Running { addr, .. } => self.addr_fix(addr).is_some(),
            _ => true,
        };
        if moved || self.stop.is_some() {
            // Stopped, or running elsewhere (events missed): the ordinary correction takes it
            // out and gates it again; its restore ramps anew to the original weight.
            self.ramp = None;
            if let Some(owned) = self.owned.as_mut() {
                owned.ramping = false;
            }
            return false;
        }
        self.container = Some(container);
        match self.ramp {
            Some(ramp) if obs.weight != ramp.last_set || !obs.in_rotation() => {
                self.ramp_mismatch(ramp, obs, out)
            }
            Some(_) => {}
            None if !obs.in_rotation() => {
                self.end_ramp(out);
                self.phase = Phase::Operator;
            }
            None => {
                // A ramp an earlier run of haproxy-drain did not finish: its target at once.
                let target = self.owned.as_ref().and_then(|o| o.prior_weight);
                if let Some(target) = target.filter(|t| *t != obs.weight) {
                    out.push(Action::SetWeight(target));
                }
                self.end_ramp(out);
                self.phase = Phase::Serving;
            }
        }
        true
    }

    /// A weight the ramp did not set: confirmed by a second read before the ramp yields, as a
    /// read shared with another server's task may have started before the last step.
    fn ramp_mismatch(&mut self, mut ramp: Ramp, observed: Observed, out: &mut Vec<Action>) {
        if ramp.rechecking {
            self.yield_ramp(ramp, observed, out);
        } else {
            ramp.rechecking = true;
            self.ramp = Some(ramp);
            out.push(Action::ReadServer);
        }
    }

    /// Someone else set the weight: theirs stands. The one exception is the weight 0 of our own
    /// `mode = "weight"` drain, which a refused first step leaves behind (static algorithms
    /// accept only 0% and 100%): the target then goes back at once.
    fn yield_ramp(&mut self, ramp: Ramp, observed: Observed, out: &mut Vec<Action>) {
        let our_zero = observed.weight == 0 && self.settings.mode == DrainMode::Weight;
        if our_zero {
            out.push(Action::SetWeight(ramp.target));
        } else {
            out.push(Action::Report(Report::RampYielded {
                expected: ramp.last_set,
                found: observed.weight,
            }));
        }
        self.end_ramp(out);
        self.phase = if observed.in_rotation() || our_zero {
            Phase::Serving
        } else {
            Phase::Operator
        };
    }

    fn end_ramp(&mut self, out: &mut Vec<Action>) {
        self.ramp = None;
        if self.owned.take().is_some() {
            out.push(Action::Disown);
        }
    }
}
