//! The per-server drain/restore state machine.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Action, Clock, ContainerState, DrainResult, Input, MachineSettings, Observed, Ownership, Report,
};
use crate::config::DrainMode;
use crate::controller::handle::{Owner, Trigger};
use crate::haproxy::types::AdminState;

/// Where a server is in its drain/restore cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
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
    settings: MachineSettings,
    phase: Phase,
    owned: Option<Ownership>,
    observed: Option<Observed>,
    container: Option<ContainerState>,
    last_sessions: u64,
    started_at: Option<Instant>,
    gate_started: Option<Instant>,
    /// haproxy-drain added this server (`add server`): delete it when its container is removed.
    dynamic: bool,
}

impl Machine {
    /// `owned` is the persisted record, if haproxy-drain held this server before a restart.
    pub fn new(settings: MachineSettings, owned: Option<Ownership>) -> Self {
        Self {
            settings,
            phase: Phase::Unknown,
            owned,
            observed: None,
            container: None,
            last_sessions: 0,
            started_at: None,
            gate_started: None,
            dynamic: false,
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

    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Unknown => "unknown",
            Phase::Serving => "in_rotation",
            Phase::Operator => "operator",
            Phase::Draining { .. } => "draining",
            Phase::Held => "held",
            Phase::Gating { .. } => "gating",
            Phase::Warming { .. } => "warming",
        }
    }

    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Serving
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
        match input {
            Input::Sync { container, haproxy } => self.sync(container, haproxy, clock, &mut out),
            Input::Observe(observed) => self.observe(observed),
            Input::Stopping {
                trigger,
                sticky,
                timeout,
            } => self.stopping(trigger, sticky, timeout, clock, &mut out),
            Input::Died => self.died(clock, &mut out),
            Input::Destroyed => {
                self.died(clock, &mut out);
                self.container = Some(ContainerState::Absent);
                if self.dynamic || self.owned.as_ref().is_some_and(|o| o.dynamic) {
                    self.dynamic = false;
                    out.push(Action::DelServer);
                    out.push(Action::Disown);
                    self.owned = None;
                    self.phase = Phase::Unknown;
                }
            }
            Input::Started { addr } => {
                self.container = Some(ContainerState::Running { addr });
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
            Input::Tick => self.tick(clock, &mut out),
        }
        out
    }

    fn container_running(&self) -> bool {
        matches!(self.container, Some(ContainerState::Running { .. }))
    }

    /// `SetAddr` when the container's address differs from HAProxy's.
    fn addr_fix(&self, addr: Option<(IpAddr, Option<u16>)>) -> Option<Action> {
        let (ip, port) = addr?;
        let observed = self.observed?;
        let port_differs = port.is_some() && port != observed.port;
        (observed.addr != Some(ip) || port_differs).then_some(Action::SetAddr(ip, port))
    }

    fn set_admin(&mut self, admin: AdminState, out: &mut Vec<Action>) {
        out.push(Action::SetAdmin(admin));
        if let Some(o) = self.observed.as_mut() {
            o.admin = admin;
        }
    }

    /// Records ownership (write-ahead) unless haproxy-drain already holds the server.
    fn own(&mut self, trigger: Trigger, sticky: bool, clock: Clock, out: &mut Vec<Action>) {
        match self.owned.as_mut() {
            Some(o) if o.sticky || !sticky => return,
            Some(o) => o.sticky = true,
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
                });
            }
        }
        out.extend(self.owned.clone().map(Action::Own));
    }

    fn sync(
        &mut self,
        container: ContainerState,
        obs: Observed,
        clock: Clock,
        out: &mut Vec<Action>,
    ) {
        self.observed = Some(obs);
        self.container = Some(container);
        let addr = match container {
            ContainerState::Running { addr } => Some(addr),
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

    fn observe(&mut self, observed: Observed) {
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
                if sticky {
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

    fn take_out_actions(&mut self) -> Vec<Action> {
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

    fn stopping(
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
                    next_poll: clock.now + self.settings.poll_interval,
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

    fn died(&mut self, clock: Clock, out: &mut Vec<Action>) {
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

    fn started(
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

    fn enter_gating(&mut self, clock: Clock, out: &mut Vec<Action>) {
        self.gate_started = Some(clock.now);
        out.push(Action::Probe);
        self.phase = Phase::Gating {
            deadline: clock.now + self.settings.health_timeout,
            next_probe: clock.now + self.settings.probe_interval,
            timeout_reported: false,
        };
    }

    fn gate(&mut self, passed: bool, clock: Clock, out: &mut Vec<Action>) {
        let sticky = self.owned.as_ref().is_some_and(|o| o.sticky);
        if self.phase == Phase::Held && passed && self.container_running() && !sticky {
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
        if !passed || !self.container_running() {
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

    fn restore(&mut self, clock: Clock, out: &mut Vec<Action>) {
        let Some(owned) = self.owned.take() else {
            self.phase = Phase::Serving;
            return;
        };
        if let (Some(weight), Some(obs)) = (owned.prior_weight, self.observed) {
            if obs.weight != weight {
                out.push(Action::SetWeight(weight));
            }
        }
        self.set_admin(owned.prior_admin, out);
        out.push(Action::Disown);
        out.push(Action::Report(Report::Restored {
            start_to_rotation: self.started_at.map(|s| clock.now - s),
            out_of_rotation: Duration::from_millis(
                clock.unix_ms.saturating_sub(owned.since_unix_ms),
            ),
        }));
        if let (Some(weight), Some(obs)) = (owned.prior_weight, self.observed.as_mut()) {
            obs.weight = weight;
        }
        let back_in = owned.prior_admin == AdminState::Ready && owned.prior_weight != Some(0);
        self.phase = if back_in {
            Phase::Serving
        } else {
            Phase::Operator
        };
    }

    fn finish_drain(
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
        if self.container_running()
            && !self.owned.as_ref().is_some_and(|o| o.sticky)
            && self.started_at.is_some_and(|s| s > started)
        {
            self.enter_gating(clock, out);
        }
    }

    fn ready_requested(&mut self, clock: Clock, out: &mut Vec<Action>) {
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
                if self.container_running() {
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

    fn tick(&mut self, clock: Clock, out: &mut Vec<Action>) {
        let now = clock.now;
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
                    *next_poll = now + self.settings.poll_interval;
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
