//! Which Docker events move a server, and as what input: decided here, applied by the server's
//! task. Pure: the container's facts come in, an [`Input`] goes out.

use std::time::Duration;

use super::{Input, StopRequest, Trigger};
use crate::config::UnhealthyAction;
use crate::docker::EventAction;

pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

/// Signals that end a container whatever its image says (its own stop signal ends it too).
pub const TERMINATING_SIGNALS: [i32; 4] = [SIGINT, SIGQUIT, SIGKILL, SIGTERM];

/// What the server's task knows about the container when one of its events arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFacts {
    /// `Config.StopSignal` (`--stop-signal`, image `STOPSIGNAL`) as a number.
    pub stop_signal: i32,
    /// `--stop-timeout`; `None`: Docker's default.
    pub stop_timeout: Option<Duration>,
    pub drain_timeout: Duration,
    pub unhealthy: UnhealthyAction,
    /// The event's `timeNano`: when Docker was asked.
    pub time_nano: i64,
}

/// A `kill` with this signal ends the container's run.
pub fn is_terminating(signal: i32, stop_signal: i32) -> bool {
    TERMINATING_SIGNALS.contains(&signal) || signal == stop_signal
}

/// The input an event means for the server, `None` when it means nothing (`start` is not
/// decided here: it needs the new run's address first).
pub fn input_for(action: &EventAction, facts: &EventFacts) -> Option<Input> {
    let drain = |stop| Input::Stopping {
        trigger: Trigger::DockerEvent,
        sticky: false,
        timeout: None,
        stop,
    };
    match action {
        EventAction::Kill { signal } if is_terminating(*signal, facts.stop_signal) => {
            Some(drain(Some(StopRequest::new(
                facts.time_nano,
                facts.stop_timeout,
                facts.drain_timeout,
            ))))
        }
        EventAction::Die { .. } | EventAction::Stop => Some(Input::Died),
        EventAction::Destroy => Some(Input::Destroyed),
        EventAction::Healthy => Some(Input::Gate { passed: true }),
        EventAction::Unhealthy if facts.unhealthy == UnhealthyAction::Drain => Some(drain(None)),
        _ => None,
    }
}

/// A drain by request ends the container's run only when a roll or the Docker API gate asked
/// for it: the container is stopped right after, whatever a reconciliation in between may
/// read. An API drain leaves the container running.
pub fn stop_for_drain(
    trigger: Trigger,
    at_unix_nanos: i64,
    stop_timeout: Option<Duration>,
    drain_timeout: Duration,
) -> Option<StopRequest> {
    matches!(trigger, Trigger::Roll | Trigger::Gate)
        .then(|| StopRequest::new(at_unix_nanos, stop_timeout, drain_timeout))
}

/// The drain input of a request, with the stop request a roll's drain carries.
pub fn with_roll_stop(
    input: Input,
    at_unix_nanos: i64,
    stop_timeout: Option<Duration>,
    drain_timeout: Duration,
) -> Input {
    match input {
        Input::Stopping {
            trigger,
            sticky,
            timeout,
            stop: None,
        } => Input::Stopping {
            trigger,
            sticky,
            timeout,
            stop: stop_for_drain(
                trigger,
                at_unix_nanos,
                stop_timeout,
                drain_timeout.max(timeout.unwrap_or_default()),
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGUSR1: i32 = 10;

    fn facts(stop_signal: i32, unhealthy: UnhealthyAction) -> EventFacts {
        EventFacts {
            stop_signal,
            stop_timeout: Some(Duration::from_secs(3)),
            drain_timeout: Duration::from_secs(30),
            unhealthy,
            time_nano: 5_000_000_000,
        }
    }

    #[test]
    fn which_events_move_the_server() {
        use EventAction::*;
        let stop = Some(StopRequest::new(
            5_000_000_000,
            Some(Duration::from_secs(3)),
            Duration::from_secs(30),
        ));
        let drained = |stop| {
            Some(Input::Stopping {
                trigger: Trigger::DockerEvent,
                sticky: false,
                timeout: None,
                stop,
            })
        };
        #[rustfmt::skip]
        let table: Vec<(EventAction, i32, UnhealthyAction, Option<Input>)> = vec![
            (Kill { signal: SIGTERM }, SIGTERM, UnhealthyAction::Drain, drained(stop)),
            (Kill { signal: SIGKILL }, SIGTERM, UnhealthyAction::Drain, drained(stop)),
            (Kill { signal: SIGINT }, SIGTERM, UnhealthyAction::Drain, drained(stop)),
            (Kill { signal: SIGQUIT }, SIGTERM, UnhealthyAction::Drain, drained(stop)),
            (Kill { signal: SIGUSR1 }, SIGUSR1, UnhealthyAction::Drain, drained(stop)),
            (Kill { signal: SIGUSR1 }, SIGTERM, UnhealthyAction::Drain, None),
            (Kill { signal: 0 }, SIGTERM, UnhealthyAction::Drain, None),
            (Die { exit_code: Some(137) }, SIGTERM, UnhealthyAction::Drain, Some(Input::Died)),
            (Stop, SIGTERM, UnhealthyAction::Drain, Some(Input::Died)),
            (Destroy, SIGTERM, UnhealthyAction::Drain, Some(Input::Destroyed)),
            (Healthy, SIGTERM, UnhealthyAction::Drain, Some(Input::Gate { passed: true })),
            (Unhealthy, SIGTERM, UnhealthyAction::Drain, drained(None)),
            (Unhealthy, SIGTERM, UnhealthyAction::Ignore, None),
            (Start, SIGTERM, UnhealthyAction::Drain, None),
            (Restart, SIGTERM, UnhealthyAction::Drain, None),
            (Pause, SIGTERM, UnhealthyAction::Drain, None),
        ];
        for (action, stop_signal, unhealthy, expected) in table {
            assert_eq!(
                input_for(&action, &facts(stop_signal, unhealthy)),
                expected,
                "{action:?} with stop signal {stop_signal}"
            );
        }
    }

    #[test]
    fn only_a_roll_ends_the_run_of_a_drained_container() {
        let stop = stop_for_drain(Trigger::Roll, 7, None, Duration::from_secs(1));
        assert_eq!(stop.map(|s| s.at_unix_nanos), Some(7));
        assert_eq!(
            stop_for_drain(Trigger::Api, 7, None, Duration::from_secs(1)),
            None
        );
        assert_eq!(
            stop_for_drain(Trigger::Reconcile, 7, None, Duration::from_secs(1)),
            None
        );
    }
}
