//! Edge-triggered transitions: stop, death, start, the health gate, restore, `ready`.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::machine::{Machine, Phase};
use super::poll_schedule::drain_poll_delay;
use super::{Action, Clock, ContainerState, DrainResult, Ownership, Report, StopRequest, Trigger};
use crate::config::DrainMode;
use crate::haproxy::types::AdminState;

impl Machine {
    pub(super) fn take_out_actions(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        match self.settings.mode {
            DrainMode::Drain => self.set_admin(AdminState::Drain, &mut out),
            DrainMode::Maint => self.set_admin(AdminState::Maint, &mut out),
            DrainMode::Weight => {
                out.push(Action::SetWeight(0));
                if let Some(o) = self.observed.as_mut() {
                    o.weight = 0;
                }
            }
        }
        out
    }

    pub(super) fn stopping(
        &mut self,
        trigger: Trigger,
        sticky: bool,
        timeout: Option<Duration>,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        match self.phase {
            Phase::Serving | Phase::Unknown => {
                self.own(trigger, sticky, clock, out);
                let actions = self.take_out_actions();
                out.extend(actions);
                out.push(Action::Report(Report::DrainStarted { trigger }));
                out.push(Action::PollSessions);
                let timeout = timeout.unwrap_or(self.settings.drain_timeout);
                self.phase = Phase::Draining {
                    trigger,
                    started: clock.now,
                    deadline: clock.now + timeout,
                    next_poll: clock.now
                        + drain_poll_delay(self.settings.poll_interval, Duration::ZERO),
                };
            }
            Phase::Draining { .. } | Phase::Held => self.own(trigger, sticky, clock, out),
            Phase::Gating { .. } | Phase::Warming { .. } => {
                self.own(trigger, sticky, clock, out);
                self.set_admin(AdminState::Maint, out);
                self.phase = Phase::Held;
            }
            Phase::Operator => {}
        }
    }

    pub(super) fn died(&mut self, clock: Clock, out: &mut Vec<Action>) {
        self.container = Some(ContainerState::Stopped);
        match self.phase {
            Phase::Serving | Phase::Unknown => {
                let trigger = Trigger::DockerEvent;
                self.own(trigger, false, clock, out);
                self.set_admin(AdminState::Maint, out);
                out.push(Action::Report(Report::DrainStarted { trigger }));
                out.push(Action::Report(Report::DrainFinished {
                    trigger,
                    result: DrainResult::Aborted,
                    elapsed: Duration::ZERO,
                    sessions_left: self.last_sessions,
                }));
                self.phase = Phase::Held;
            }
            Phase::Draining {
                trigger, started, ..
            } => {
                let result = if self.last_sessions == 0 {
                    DrainResult::Drained
                } else {
                    DrainResult::Aborted
                };
                self.finish_drain(trigger, result, started, clock, out);
            }
            Phase::Gating { .. } => self.phase = Phase::Held,
            Phase::Warming { .. } => {
                self.set_admin(AdminState::Maint, out);
                self.phase = Phase::Held;
            }
            Phase::Held => {}
            Phase::Operator => {
                if self.observed.is_some_and(|o| o.admin != AdminState::Maint) {
                    // An operator's DRAIN or weight 0 still serves persistent clients: escalate
                    // to MAINT, remembering to give the operator's state back.
                    self.own(Trigger::DockerEvent, false, clock, out);
                    self.set_admin(AdminState::Maint, out);
                    self.phase = Phase::Held;
                }
            }
        }
    }

    pub(super) fn started(
        &mut self,
        addr: Option<(IpAddr, Option<u16>)>,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        let sticky = self.owned.as_ref().is_some_and(|o| o.sticky);
        match self.phase {
            Phase::Serving | Phase::Unknown => {
                if let Some(fix) = self.addr_fix(addr) {
                    self.own(Trigger::DockerEvent, false, clock, out);
                    self.set_admin(AdminState::Maint, out);
                    out.push(fix);
                    self.enter_gating(clock, out);
                }
            }
            Phase::Operator => out.extend(self.addr_fix(addr)),
            Phase::Draining { .. } | Phase::Held | Phase::Gating { .. } | Phase::Warming { .. } => {
                if self.observed.is_some_and(|o| o.admin != AdminState::Maint) {
                    self.set_admin(AdminState::Maint, out);
                }
                if let Some(fix) = self.addr_fix(addr) {
                    if let (Action::SetAddr(ip, port), Some(o)) = (&fix, self.observed.as_mut()) {
                        o.addr = Some(*ip);
                        o.port = port.or(o.port);
                    }
                    out.push(fix);
                }
                if sticky {
                    self.phase = Phase::Held;
                } else {
                    self.enter_gating(clock, out);
                }
            }
        }
    }

    pub(super) fn enter_gating(&mut self, clock: Clock, out: &mut Vec<Action>) {
        self.gate_started = Some(clock.now);
        out.push(Action::Probe);
        self.phase = Phase::Gating {
            deadline: clock.now + self.settings.health_timeout,
            next_probe: clock.now + self.settings.probe_interval,
            timeout_reported: false,
        };
    }

    pub(super) fn gate(&mut self, passed: bool, clock: Clock, out: &mut Vec<Action>) {
        let sticky = self.owned.as_ref().is_some_and(|o| o.sticky);
        if self.phase == Phase::Held && passed && self.run_may_serve() && !sticky {
            // Healthy again (Docker said so) after an unhealthy drain: confirm through the gate.
            self.enter_gating(clock, out);
            return;
        }
        let Phase::Gating {
            deadline,
            timeout_reported,
            ..
        } = self.phase
        else {
            return;
        };
        if !passed || !self.run_may_serve() {
            return;
        }
        if self.observed.is_some_and(|o| o.checks_enabled) {
            // Checks are paused in MAINT and run in DRAIN: let one pass before traffic.
            self.set_admin(AdminState::Drain, out);
            self.phase = Phase::Warming {
                deadline,
                next_poll: clock.now + self.settings.poll_interval,
                timeout_reported,
            };
        } else {
            self.restore(clock, out);
        }
    }

    pub(super) fn restore(&mut self, clock: Clock, out: &mut Vec<Action>) {
        if self.stop.is_some() {
            // The last guard of the rule: nothing goes back while its run is ending.
            self.phase = Phase::Held;
            return;
        }
        let Some(owned) = self.owned.take() else {
            self.phase = Phase::Serving;
            return;
        };
        let back_in = owned.prior_admin == AdminState::Ready && owned.prior_weight != Some(0);
        let ramp = self.ramp_for(&owned, back_in, clock);
        let weight = ramp.map(|r| r.last_set).or(owned.prior_weight);
        if let (Some(weight), Some(obs)) = (weight, self.observed) {
            if obs.weight != weight {
                out.push(match ramp {
                    Some(_) => Action::RampStep(weight),
                    None => Action::SetWeight(weight),
                });
            }
        }
        self.set_admin(owned.prior_admin, out);
        self.ramp = ramp;
        if ramp.is_some() {
            let record = Ownership {
                ramping: true,
                ..owned.clone()
            };
            out.push(Action::Own(record.clone()));
            self.owned = Some(record);
        } else {
            out.push(Action::Disown);
        }
        out.push(Action::Report(Report::Restored {
            start_to_rotation: self.started_at.map(|s| clock.now - s),
            out_of_rotation: Duration::from_millis(
                clock.unix_ms.saturating_sub(owned.since_unix_ms),
            ),
        }));
        if let (Some(weight), Some(obs)) = (weight, self.observed.as_mut()) {
            obs.weight = weight;
        }
        self.phase = if back_in {
            if !self.settings.watch.is_zero() {
                out.push(Action::Watch(self.settings.watch));
            }
            Phase::Serving
        } else {
            Phase::Operator
        };
    }

    pub(super) fn finish_drain(
        &mut self,
        trigger: Trigger,
        result: DrainResult,
        started: Instant,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        if result == DrainResult::TimedOut && self.settings.shutdown_sessions {
            out.push(Action::ShutdownSessions);
        }
        if self.observed.is_none_or(|o| o.admin != AdminState::Maint) {
            self.set_admin(AdminState::Maint, out);
        }
        out.push(Action::Report(Report::DrainFinished {
            trigger,
            result,
            elapsed: clock.now - started,
            sessions_left: self.last_sessions,
        }));
        self.phase = Phase::Held;
        // A container that restarted while we drained goes straight to the gate.
        if self.run_may_serve()
            && !self.owned.as_ref().is_some_and(|o| o.sticky)
            && self.started_at.is_some_and(|s| s > started)
        {
            self.enter_gating(clock, out);
        }
    }

    pub(super) fn ready_requested(&mut self, clock: Clock, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Serving | Phase::Gating { .. } | Phase::Warming { .. } => {
                if let Some(o) = self.owned.as_mut() {
                    o.sticky = false;
                }
            }
            Phase::Unknown => {}
            Phase::Operator => {
                // An explicit `ready` is the operator handing the server over.
                let Some(obs) = self.observed else { return };
                self.owned = Some(Ownership {
                    prior_admin: AdminState::Ready,
                    prior_weight: Some(if obs.weight == 0 {
                        obs.initial_weight
                    } else {
                        obs.weight
                    }),
                    sticky: false,
                    dynamic: false,
                    trigger: Trigger::Api,
                    since_unix_ms: clock.unix_ms,
                    stop: self.stop,
                    ramping: false,
                });
                out.extend(self.owned.clone().map(Action::Own));
                self.phase = Phase::Held;
                self.ready_requested(clock, out);
            }
            Phase::Draining { .. } | Phase::Held => {
                if let Some(o) = self.owned.as_mut() {
                    if o.sticky {
                        o.sticky = false;
                        out.push(Action::Own(o.clone()));
                    }
                }
                if self.run_may_serve() {
                    if self.observed.is_some_and(|o| o.admin != AdminState::Maint) {
                        self.set_admin(AdminState::Maint, out);
                    }
                    self.enter_gating(clock, out);
                } else {
                    self.phase = Phase::Held;
                }
            }
        }
    }
}

impl Machine {
    /// The container runs and this run was not asked to end: the only run worth restoring.
    pub(super) fn run_may_serve(&self) -> bool {
        self.container_running() && self.stop.is_none()
    }

    pub(super) fn stop_requested(&mut self, stop: StopRequest, clock: Clock) {
        let merged = self.stop.map_or(stop, |pending| pending.merge(stop));
        self.stop = Some(merged);
        self.stop_deadline = Some(clock.now + merged.remaining(clock.unix_ms));
    }

    /// Docker reported a run that started after the stop request: the request is spent.
    pub(super) fn new_run(&mut self) {
        self.stop = None;
        self.stop_deadline = None;
        if let Some(owned) = self.owned.as_mut() {
            // Not persisted on its own: a stale record is ended by `StartedAt` after a restart.
            owned.stop = None;
        }
    }

    /// The hold of a stop request is over. A container still on the same run ignored the
    /// signal (`docker kill -s TERM` with no SIGKILL after it): it serves, so it goes back
    /// through the gate like any healthy container; the report says so.
    pub(super) fn stop_hold_over(&mut self, clock: Clock, out: &mut Vec<Action>) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        self.stop_deadline = None;
        if let Some(owned) = self.owned.as_mut() {
            owned.stop = None;
            out.push(Action::Own(owned.clone()));
        }
        if !self.container_running() {
            // A stopped container waits for its start anyway.
            return;
        }
        let asked_ms = u64::try_from(stop.at_unix_nanos.max(0) / 1_000_000).unwrap_or(0);
        out.push(Action::Report(Report::StopIgnored {
            held: Duration::from_millis(clock.unix_ms.saturating_sub(asked_ms)),
        }));
        let sticky = self.owned.as_ref().is_some_and(|o| o.sticky);
        if self.phase == Phase::Held && self.owned.is_some() && !sticky {
            if self.observed.is_some_and(|o| o.admin != AdminState::Maint) {
                self.set_admin(AdminState::Maint, out);
            }
            self.enter_gating(clock, out);
        }
    }
}
