//! Level-triggered correction: what the machine does with ground truth (`Sync`, `Observe`).

use std::net::IpAddr;

use super::machine::{Machine, Phase};
use super::{Action, Clock, ContainerState, Observed, Report, Trigger};
use crate::haproxy::types::AdminState;

impl Machine {
    pub(super) fn sync(
        &mut self,
        container: ContainerState,
        obs: Observed,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        self.observed = Some(obs);
        self.container = Some(container);
        let addr = match container {
            ContainerState::Running {
                addr,
                started_at_unix_nanos,
            } => {
                if self.stop.is_some_and(|s| s.ended_by(started_at_unix_nanos)) {
                    // A start whose event we missed (stream down, our own restart).
                    self.new_run();
                }
                Some(addr)
            }
            _ => None,
        };
        match (self.owned.is_some(), addr) {
            (false, None) => {
                if obs.admin == AdminState::Maint {
                    self.phase = Phase::Operator;
                } else {
                    self.own(Trigger::Reconcile, false, clock, out);
                    self.set_admin(AdminState::Maint, out);
                    out.push(Action::Report(Report::Correction(
                        "stopped_container_in_rotation",
                    )));
                    self.phase = Phase::Held;
                }
            }
            (true, None) => {
                if !self.is_draining() {
                    if obs.admin != AdminState::Maint {
                        self.set_admin(AdminState::Maint, out);
                        out.push(Action::Report(Report::Correction(
                            "held_server_not_in_maint",
                        )));
                    }
                    self.phase = Phase::Held;
                }
            }
            (false, Some(addr)) => {
                let fix = self.addr_fix(addr);
                if !obs.in_rotation() {
                    // An operator's server: follow the container's address, touch nothing else.
                    out.extend(fix);
                    self.phase = Phase::Operator;
                } else if let Some(fix) = fix {
                    self.own(Trigger::Reconcile, false, clock, out);
                    self.set_admin(AdminState::Maint, out);
                    out.push(fix);
                    out.push(Action::Report(Report::Correction("address")));
                    self.enter_gating(clock, out);
                } else {
                    self.phase = Phase::Serving;
                }
            }
            (true, Some(addr)) => self.sync_owned_running(obs, addr, clock, out),
        }
    }

    pub(super) fn observe(&mut self, observed: Observed) {
        self.observed = Some(observed);
        if self.owned.is_some() {
            return;
        }
        match self.phase {
            Phase::Serving | Phase::Unknown if !observed.in_rotation() => {
                self.phase = Phase::Operator
            }
            Phase::Operator if observed.in_rotation() => self.phase = Phase::Serving,
            _ => {}
        }
    }

    fn sync_owned_running(
        &mut self,
        obs: Observed,
        addr: Option<(IpAddr, Option<u16>)>,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        let sticky = self.owned.as_ref().is_some_and(|o| o.sticky);
        match self.phase {
            Phase::Draining { .. } => {
                if obs.in_rotation() {
                    out.extend(self.take_out_actions());
                    out.push(Action::Report(Report::Correction("drain_lost")));
                }
            }
            Phase::Gating { .. } => {
                if obs.admin != AdminState::Maint {
                    self.set_admin(AdminState::Maint, out);
                    out.push(Action::Report(Report::Correction(
                        "held_server_not_in_maint",
                    )));
                }
                out.extend(self.addr_fix(addr));
            }
            Phase::Warming { .. } => {
                if obs.admin == AdminState::Ready {
                    self.set_admin(AdminState::Drain, out);
                    out.push(Action::Report(Report::Correction(
                        "held_server_not_in_maint",
                    )));
                }
                out.extend(self.addr_fix(addr));
            }
            _ => {
                if obs.in_rotation() {
                    self.set_admin(AdminState::Maint, out);
                    out.push(Action::Report(Report::Correction(
                        "held_server_not_in_maint",
                    )));
                }
                out.extend(self.addr_fix(addr));
                if self.stop.is_some() {
                    // Still running, but this run was asked to end: it is shutting down.
                    if obs.admin != AdminState::Maint {
                        self.set_admin(AdminState::Maint, out);
                    }
                    self.phase = Phase::Held;
                } else if sticky {
                    self.phase = Phase::Held;
                } else {
                    if obs.admin != AdminState::Maint && !obs.in_rotation() {
                        self.set_admin(AdminState::Maint, out);
                    }
                    self.enter_gating(clock, out);
                }
            }
        }
    }
}
