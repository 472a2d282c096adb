//! The per-server drain/restore state machine.

use std::net::IpAddr;

use tokio::time::Instant;

use super::poll_schedule::drain_poll_delay;
use super::ramp::Ramp;
use super::{
    Action, Clock, ContainerState, DrainResult, Input, MachineSettings, Observed, Owner, Ownership,
    PhaseName, Report, StopRequest, Trigger,
};
use crate::config::DrainMode;
use crate::haproxy::types::AdminState;

/// Where a server is in its drain/restore cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// No ground truth yet.
    Unknown,
    /// In rotation; haproxy-drain holds nothing.
    Serving,
    /// Out of rotation by someone else's hand (MAINT, DRAIN or weight 0): hands off.
    Operator,
    /// Taken out; waiting for sessions to reach 0 or the deadline.
    Draining {
        trigger: Trigger,
        started: Instant,
        deadline: Instant,
        next_poll: Instant,
    },
    /// Out of rotation (MAINT) and owned by haproxy-drain.
    Held,
    /// Container running; probing it while the server stays in MAINT.
    Gating {
        deadline: Instant,
        next_probe: Instant,
        timeout_reported: bool,
    },
    /// Gate passed; server in DRAIN so HAProxy's checks run; waiting for one to pass.
    Warming {
        deadline: Instant,
        next_poll: Instant,
        timeout_reported: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub(super) settings: MachineSettings,
    pub(super) phase: Phase,
    pub(super) owned: Option<Ownership>,
    pub(super) observed: Option<Observed>,
    pub(super) container: Option<ContainerState>,
    pub(super) last_sessions: u64,
    pub(super) started_at: Option<Instant>,
    pub(super) gate_started: Option<Instant>,
    /// haproxy-drain added this server (`add server`): delete it when its container is removed.
    pub(super) dynamic: bool,
    /// The container's current run was asked to end; see [`StopRequest`].
    pub(super) stop: Option<StopRequest>,
    /// When `stop`'s hold ends, on the monotonic clock (set at the first input after `stop`).
    pub(super) stop_deadline: Option<Instant>,
    /// A slow start in progress (see `after_restore.rs`).
    pub(super) ramp: Option<Ramp>,
}

impl Machine {
    /// `owned` is the persisted record, if haproxy-drain held this server before a restart.
    pub fn new(settings: MachineSettings, owned: Option<Ownership>) -> Self {
        Self {
            settings,
            phase: Phase::Unknown,
            observed: None,
            container: None,
            last_sessions: 0,
            started_at: None,
            gate_started: None,
            dynamic: false,
            stop: owned.as_ref().and_then(|o| o.stop),
            stop_deadline: None,
            ramp: None,
            owned,
        }
    }

    pub fn settings(&self) -> &MachineSettings {
        &self.settings
    }

    pub fn set_settings(&mut self, settings: MachineSettings) {
        self.settings = settings;
    }

    /// Marks the server as added by haproxy-drain (it outlives any single ownership record).
    pub fn set_dynamic(&mut self, dynamic: bool) {
        self.dynamic = dynamic;
    }

    pub fn ownership(&self) -> Option<&Ownership> {
        self.owned.as_ref()
    }

    /// Who holds the server out of rotation right now.
    pub fn owner(&self) -> Owner {
        match (self.phase, &self.owned) {
            (Phase::Serving, _) => Owner::None,
            (_, Some(_)) => Owner::HaproxyDrain,
            (Phase::Operator, None) => Owner::Operator,
            _ => match self.observed {
                Some(o) if !o.in_rotation() => Owner::Operator,
                _ => Owner::None,
            },
        }
    }

    pub fn phase_name(&self) -> PhaseName {
        match self.phase {
            Phase::Unknown => PhaseName::Unknown,
            Phase::Serving => PhaseName::InRotation,
            Phase::Operator => PhaseName::Operator,
            Phase::Draining { .. } if self.failed() => PhaseName::Failed,
            Phase::Draining { .. } => PhaseName::Draining,
            Phase::Held if self.failed() => PhaseName::Failed,
            Phase::Held => PhaseName::Held,
            Phase::Gating { .. } => PhaseName::Gating,
            Phase::Warming { .. } => PhaseName::Warming,
        }
    }

    pub fn is_draining(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. })
    }

    /// Out of rotation and held by haproxy-drain, not in the middle of a drain.
    pub fn is_held(&self) -> bool {
        matches!(
            self.phase,
            Phase::Held | Phase::Gating { .. } | Phase::Warming { .. }
        )
    }

    /// For budgets: would a load balancer send this server new requests?
    pub fn in_rotation(&self) -> bool {
        self.phase == Phase::Serving
    }

    /// A stop of the container's current run is pending: the controller must read the run's
    /// `StartedAt` before it reports the container as running (see [`StopRequest`]).
    pub fn awaits_new_run(&self) -> bool {
        self.stop.is_some()
    }

    /// The state haproxy-drain wants HAProxy to show, for the desired-vs-actual metric.
    pub fn desired_admin(&self) -> Option<AdminState> {
        match self.phase {
            Phase::Unknown | Phase::Operator => None,
            Phase::Serving => Some(AdminState::Ready),
            Phase::Draining { .. } => Some(match self.settings.mode {
                DrainMode::Maint => AdminState::Maint,
                DrainMode::Drain => AdminState::Drain,
                DrainMode::Weight => AdminState::Ready,
            }),
            Phase::Held | Phase::Gating { .. } => Some(AdminState::Maint),
            Phase::Warming { .. } => Some(AdminState::Drain),
        }
    }

    /// When the controller must feed [`Input::Tick`] next.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let stop = self.stop_deadline.filter(|_| self.stop.is_some());
        let ramp = self.ramp.map(|r| r.next);
        [self.phase_wakeup(), stop, ramp]
            .into_iter()
            .flatten()
            .min()
    }

    fn phase_wakeup(&self) -> Option<Instant> {
        match self.phase {
            Phase::Draining {
                deadline,
                next_poll,
                ..
            } => Some(deadline.min(next_poll)),
            Phase::Gating {
                deadline,
                next_probe,
                timeout_reported,
            } => Some(if timeout_reported {
                next_probe
            } else {
                deadline.min(next_probe)
            }),
            Phase::Warming {
                deadline,
                next_poll,
                timeout_reported,
            } => Some(if timeout_reported {
                next_poll
            } else {
                deadline.min(next_poll)
            }),
            _ => None,
        }
    }

    pub fn handle(&mut self, input: Input, clock: Clock) -> Vec<Action> {
        let mut out = Vec::new();
        if let (Some(stop), None) = (self.stop, self.stop_deadline) {
            // Loaded from the state file: place the hold on this process's monotonic clock.
            self.stop_deadline = Some(clock.now + stop.remaining(clock.unix_ms));
        }
        self.interrupt_ramp(&input, clock, &mut out);
        match input {
            Input::Sync { container, haproxy } => {
                self.sync_after(container, haproxy, clock, &mut out)
            }
            Input::Observe(observed) => self.observe_after(observed, clock, &mut out),
            Input::Stopping {
                trigger,
                sticky,
                timeout,
                stop,
            } => {
                if let Some(stop) = stop {
                    self.stop_requested(stop, clock);
                }
                self.stopping(trigger, sticky, timeout, clock, &mut out)
            }
            Input::Died => self.died(clock, &mut out),
            Input::Destroyed => {
                self.died(clock, &mut out);
                self.container = Some(ContainerState::Absent);
                if self.dynamic || self.owned.as_ref().is_some_and(|o| o.dynamic) {
                    self.new_run();
                    self.dynamic = false;
                    out.push(Action::DelServer);
                    out.push(Action::Disown);
                    self.owned = None;
                    self.phase = Phase::Unknown;
                }
            }
            Input::Started { addr } => {
                self.new_run();
                self.container = Some(ContainerState::Running {
                    addr,
                    started_at_unix_nanos: None,
                });
                self.started_at = Some(clock.now);
                self.started(addr, clock, &mut out);
            }
            Input::Gate { passed } => self.gate(passed, clock, &mut out),
            Input::Sessions(n) => {
                self.last_sessions = n;
                if let Phase::Draining {
                    trigger, started, ..
                } = self.phase
                {
                    if n == 0 {
                        self.finish_drain(trigger, DrainResult::Drained, started, clock, &mut out);
                    }
                }
            }
            Input::HaproxyCheck { passed } => {
                if passed && matches!(self.phase, Phase::Warming { .. }) {
                    self.restore(clock, &mut out);
                }
            }
            Input::ReadyRequested => self.ready_requested(clock, &mut out),
            Input::StopWithdrawn => {
                if self.stop.is_some() {
                    self.new_run();
                    out.extend(self.owned.clone().map(Action::Own));
                }
            }
            Input::Tick => self.tick(clock, &mut out),
        }
        out
    }

    pub(super) fn container_running(&self) -> bool {
        matches!(self.container, Some(ContainerState::Running { .. }))
    }

    /// `SetAddr` when the container's address differs from HAProxy's.
    pub(super) fn addr_fix(&self, addr: Option<(IpAddr, Option<u16>)>) -> Option<Action> {
        let (ip, port) = addr?;
        let observed = self.observed?;
        if observed.addr.is_some_and(|a| a.is_loopback()) {
            // HAProxy reaches the container through a published port on this host: that
            // address survives a recreate, and the container's own IP must not replace it.
            return None;
        }
        let port_differs = port.is_some() && port != observed.port;
        (observed.addr != Some(ip) || port_differs).then_some(Action::SetAddr(ip, port))
    }

    pub(super) fn set_admin(&mut self, admin: AdminState, out: &mut Vec<Action>) {
        out.push(Action::SetAdmin(admin));
        if let Some(o) = self.observed.as_mut() {
            o.admin = admin;
        }
    }

    /// Records ownership (write-ahead), or updates the record when the request adds stickiness
    /// or a stop request to what haproxy-drain already holds.
    pub(super) fn own(
        &mut self,
        trigger: Trigger,
        sticky: bool,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        let stop = self.stop;
        match self.owned.as_mut() {
            Some(o) if (o.sticky || !sticky) && o.stop == stop => return,
            Some(o) => {
                o.sticky |= sticky;
                o.stop = stop;
            }
            None => {
                let prior = self.observed;
                self.owned = Some(Ownership {
                    prior_admin: match prior.map(|o| o.admin) {
                        Some(AdminState::Drain) => AdminState::Drain,
                        _ => AdminState::Ready,
                    },
                    prior_weight: prior.map(|o| o.weight),
                    sticky,
                    dynamic: self.dynamic,
                    trigger,
                    since_unix_ms: clock.unix_ms,
                    stop,
                    ramping: false,
                });
            }
        }
        out.extend(self.owned.clone().map(Action::Own));
    }

    fn tick(&mut self, clock: Clock, out: &mut Vec<Action>) {
        let now = clock.now;
        self.ramp_due(clock, out);
        if self.stop_deadline.is_some_and(|d| now >= d) {
            self.stop_hold_over(clock, out);
        }
        match &mut self.phase {
            Phase::Draining {
                trigger,
                started,
                deadline,
                next_poll,
            } => {
                if now >= *deadline {
                    let (trigger, started) = (*trigger, *started);
                    self.finish_drain(trigger, DrainResult::TimedOut, started, clock, out);
                } else if now >= *next_poll {
                    *next_poll =
                        now + drain_poll_delay(self.settings.poll_interval, now - *started);
                    out.push(Action::PollSessions);
                }
            }
            Phase::Gating {
                deadline,
                next_probe,
                timeout_reported,
            } => {
                if now >= *deadline && !*timeout_reported {
                    *timeout_reported = true;
                    let waited = now - self.gate_started.unwrap_or(now);
                    out.push(Action::Report(Report::GateTimedOut { waited }));
                }
                if now >= *next_probe {
                    *next_probe = now + self.settings.probe_interval;
                    out.push(Action::Probe);
                }
            }
            Phase::Warming {
                deadline,
                next_poll,
                timeout_reported,
            } => {
                if now >= *deadline && !*timeout_reported {
                    *timeout_reported = true;
                    let waited = now - self.gate_started.unwrap_or(now);
                    out.push(Action::Report(Report::GateTimedOut { waited }));
                }
                if now >= *next_poll {
                    *next_poll = now + self.settings.poll_interval;
                    out.push(Action::PollCheck);
                }
            }
            _ => {}
        }
    }
}
