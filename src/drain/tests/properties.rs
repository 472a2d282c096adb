//! Property tests: random input sequences (events, syncs with random ground truth, session
//! counts, timers, operator changes) against the machine's invariants.

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::config::DrainMode;
use crate::drain::{Input, Report, StopRequest, Trigger};
use crate::haproxy::types::AdminState::{self, Drain, Maint, Ready};

/// One random happening, at `dt_ms` after the previous one.
#[derive(Debug, Clone)]
enum Event {
    Term {
        stop_timeout_s: u64,
    },
    Unhealthy,
    ApiDrain {
        sticky: bool,
    },
    Died,
    Destroyed,
    Started,
    /// Ground truth: running (with a run start: unknown, old, or now), stopped or absent.
    Sync {
        container: u8,
        admin: u8,
        weight0: bool,
    },
    Observe {
        admin: u8,
        weight0: bool,
    },
    Sessions(u64),
    Gate(bool),
    Check(bool),
    Ready,
    Tick,
}

fn event() -> impl Strategy<Value = Event> {
    // Weighted towards what moves a held server back (syncs, passing gates and checks), so
    // that a missing guard shows within a few hundred cases.
    prop_oneof![
        4 => (0u64..6).prop_map(|stop_timeout_s| Event::Term { stop_timeout_s }),
        1 => Just(Event::Unhealthy),
        1 => any::<bool>().prop_map(|sticky| Event::ApiDrain { sticky }),
        2 => Just(Event::Died),
        1 => Just(Event::Destroyed),
        2 => Just(Event::Started),
        6 => (0u8..5, 0u8..3, any::<bool>()).prop_map(|(container, admin, weight0)| Event::Sync {
            container,
            admin,
            weight0
        }),
        1 => (0u8..3, any::<bool>()).prop_map(|(admin, weight0)| Event::Observe { admin, weight0 }),
        3 => (0u64..2).prop_map(Event::Sessions),
        4 => Just(Event::Gate(true)),
        1 => Just(Event::Gate(false)),
        4 => Just(Event::Check(true)),
        1 => Just(Event::Check(false)),
        2 => Just(Event::Ready),
        3 => Just(Event::Tick),
    ]
}

const ADMINS: [AdminState; 3] = [Ready, Drain, Maint];

fn observed_of(admin: u8, weight0: bool) -> Observed {
    observed(
        ADMINS[admin as usize % 3],
        if weight0 { 0 } else { 10 },
        true,
    )
}

struct World {
    t0: Instant,
    ms: u64,
    /// The last run start Docker would report (table time, ms).
    run_started_ms: u64,
    /// The stop request the model says is pending: no restore may happen while it is.
    pending: Option<StopRequest>,
}

impl World {
    fn clock(&self) -> Clock {
        Clock {
            now: self.t0 + Duration::from_millis(self.ms),
            unix_ms: 1_000_000 + self.ms,
        }
    }

    fn nanos(&self, ms: u64) -> i64 {
        ((1_000_000 + ms) * 1_000_000) as i64
    }

    fn input(&mut self, event: &Event) -> Input {
        let drain = |trigger, sticky, stop| Input::Stopping {
            trigger,
            sticky,
            timeout: None,
            stop,
        };
        match *event {
            Event::Term { stop_timeout_s } => {
                let stop = StopRequest::new(
                    self.nanos(self.ms),
                    Some(Duration::from_secs(stop_timeout_s)),
                    Duration::from_secs(3),
                );
                self.pending = Some(self.pending.map_or(stop, |p| p.merge(stop)));
                drain(Trigger::DockerEvent, false, Some(stop))
            }
            Event::Unhealthy => drain(Trigger::DockerEvent, false, None),
            Event::ApiDrain { sticky } => drain(Trigger::Api, sticky, None),
            Event::Died => Input::Died,
            Event::Destroyed => Input::Destroyed,
            Event::Started => {
                self.run_started_ms = self.ms;
                self.pending = None;
                Input::Started {
                    addr: Some((OLD_IP, Some(8080))),
                }
            }
            Event::Sync {
                container,
                admin,
                weight0,
            } => {
                let started = match container {
                    0 => None,
                    1 => Some(self.run_started_ms),
                    _ => {
                        // A start we never saw an event for.
                        self.run_started_ms = self.ms;
                        Some(self.ms)
                    }
                };
                let state = match container {
                    3 => ContainerState::Stopped,
                    4 => ContainerState::Absent,
                    _ => ContainerState::Running {
                        addr: Some((OLD_IP, Some(8080))),
                        started_at_unix_nanos: started.map(|ms| self.nanos(ms)),
                    },
                };
                if container < 3
                    && self
                        .pending
                        .is_some_and(|p| p.ended_by(started.map(|ms| self.nanos(ms))))
                {
                    self.pending = None;
                }
                sync(state, observed_of(admin, weight0))
            }
            Event::Observe { admin, weight0 } => Input::Observe(observed_of(admin, weight0)),
            Event::Sessions(n) => Input::Sessions(n),
            Event::Gate(passed) => Input::Gate { passed },
            Event::Check(passed) => Input::HaproxyCheck { passed },
            Event::Ready => Input::ReadyRequested,
            Event::Tick => Input::Tick,
        }
    }
}

fn puts_in_rotation(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::SetAdmin(AdminState::Ready) | Action::Report(Report::Restored { .. })
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn invariants_hold_for_any_sequence(
        mode in prop_oneof![Just(DrainMode::Drain), Just(DrainMode::Maint), Just(DrainMode::Weight)],
        ramp_ms in prop_oneof![Just(0u64), Just(1_000u64)],
        events in proptest::collection::vec((0u64..600, event()), 1..60),
    ) {
        let mut world = World { t0: Instant::now(), ms: 0, run_started_ms: 0, pending: None };
        let ramp = Duration::from_millis(ramp_ms);
        let mut m = Machine::new(MachineSettings { ramp, ..settings(mode) }, None);
        m.handle(sync(running(OLD_IP), observed(Ready, 10, true)), world.clock());
        for (dt, event) in &events {
            world.ms += dt;
            if world.pending.is_some_and(|p| p.expired(world.clock().unix_ms)) {
                world.pending = None;
            }
            let owned_before = m.ownership().is_some();
            let input = world.input(event);
            let actions = m.handle(input.clone(), world.clock());
            if puts_in_rotation(&actions) {
                // Never restores what it did not take out (an explicit `ready` hands it over).
                prop_assert!(owned_before || matches!(input, Input::ReadyRequested),
                    "restored a server it did not own: {input:?} -> {actions:?}");
                // Never back in rotation while the container's current run is ending.
                prop_assert!(world.pending.is_none(),
                    "put in rotation while a stop is pending: {input:?} -> {actions:?}");
            }
            if world.pending.is_some() && m.ownership().is_some() {
                prop_assert!(!m.in_rotation(), "owned, stop pending, yet in rotation");
            }
        }

        // Settle: the container runs a new run, the gate and the checks pass, time passes.
        world.ms += 10;
        let started = Event::Started;
        let input = world.input(&started);
        m.handle(input, world.clock());
        for _ in 0..40 {
            world.ms += 300;
            let truth = sync(
                ContainerState::Running {
                    addr: Some((OLD_IP, Some(8080))),
                    started_at_unix_nanos: Some(world.nanos(world.run_started_ms)),
                },
                m.ownership().map_or(observed(Ready, 10, true), |_| {
                    observed(m.desired_admin().unwrap_or(Maint), 10, true)
                }),
            );
            for input in [truth, Input::Tick, Input::Sessions(0), Input::Gate { passed: true }, Input::HaproxyCheck { passed: true }] {
                m.handle(input, world.clock());
            }
        }
        let sticky = m.ownership().is_some_and(|o| o.sticky);
        let phase = m.phase_name().as_str();
        if sticky {
            prop_assert_eq!(phase, "held", "a sticky drain stays held until ready");
        } else {
            prop_assert!(m.ownership().is_none(), "every owned server ends restored (phase {phase})");
            prop_assert!(matches!(phase, "in_rotation" | "operator"), "settled in {phase}");
        }
    }
}
