//! Data-driven tables: each scenario is a list of (elapsed ms, input, expected actions, phase).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::config::DrainMode;
use crate::drain::Trigger;

pub(super) const OLD_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2));
pub(super) const NEW_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 18, 0, 9));

pub(super) fn settings(mode: DrainMode) -> MachineSettings {
    MachineSettings {
        mode,
        drain_timeout: Duration::from_secs(30),
        shutdown_sessions: true,
        health_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        probe_interval: Duration::from_millis(250),
        ramp: Duration::ZERO,
        watch: Duration::ZERO,
    }
}

pub(super) fn observed(admin: AdminState, weight: u32, checks: bool) -> Observed {
    Observed {
        admin,
        weight,
        initial_weight: 10,
        addr: Some(OLD_IP),
        port: Some(8080),
        checks_enabled: checks,
    }
}

pub(super) fn running(ip: IpAddr) -> ContainerState {
    ContainerState::Running {
        addr: Some((ip, Some(8080))),
        started_at_unix_nanos: None,
    }
}

pub(super) fn sync(container: ContainerState, haproxy: Observed) -> Input {
    Input::Sync { container, haproxy }
}

pub(super) fn stop() -> Input {
    Input::Stopping {
        trigger: Trigger::DockerEvent,
        sticky: false,
        timeout: None,
        stop: None,
    }
}

/// Drops the parts of actions that carry times, so tables stay readable.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum A {
    Admin(AdminState),
    Weight(u32),
    /// A ramp's step (`Action::RampStep`).
    Step(u32),
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
    StopIgnored,
    /// The record kept during a ramp, with its target weight.
    Ramping(Option<u32>),
    Read,
    Watch,
    Yielded(u32, u32),
}

pub(super) fn simplify(actions: Vec<Action>) -> Vec<A> {
    actions
        .into_iter()
        .map(|a| match a {
            Action::SetAdmin(s) => A::Admin(s),
            Action::SetWeight(w) => A::Weight(w),
            Action::RampStep(w) => A::Step(w),
            Action::SetAddr(ip, _) => A::Addr(ip),
            Action::ShutdownSessions => A::Shutdown,
            Action::DelServer => A::Del,
            Action::PollSessions => A::Poll,
            Action::Probe => A::Probe,
            Action::PollCheck => A::Check,
            Action::Own(o) if o.ramping => A::Ramping(o.prior_weight),
            Action::Own(o) => A::Own(o.prior_admin, o.prior_weight, o.sticky),
            Action::ReadServer => A::Read,
            Action::Watch(_) => A::Watch,
            Action::Report(Report::RampYielded { expected, found }) => A::Yielded(expected, found),
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
            Action::Report(Report::StopIgnored { .. }) => A::StopIgnored,
        })
        .collect()
}

pub(super) type Step = (u64, Input, Vec<A>, &'static str);

pub(super) fn check(mode: DrainMode, owned: Option<Ownership>, steps: Vec<Step>) {
    check_with(settings(mode), owned, steps)
}

pub(super) fn check_with(settings: MachineSettings, owned: Option<Ownership>, steps: Vec<Step>) {
    let t0 = Instant::now();
    let mut machine = Machine::new(settings, owned);
    for (i, (ms, input, expected, phase)) in steps.into_iter().enumerate() {
        let clock = Clock {
            now: t0 + Duration::from_millis(ms),
            unix_ms: 1_000_000 + ms,
        };
        let got = simplify(machine.handle(input.clone(), clock));
        assert_eq!(got, expected, "step {i} ({input:?}) actions");
        assert_eq!(
            machine.phase_name().as_str(),
            phase,
            "step {i} ({input:?}) phase"
        );
    }
}

mod agent;
mod cycle;
mod ownership;
mod properties;
mod ramp_cycle;
mod stop_rule;
