//! Slow start after a restore: the weight a server gets back in steps over a period. Pure.
//!
//! HAProxy's own `slowstart` is a server setting of its config file, which haproxy-drain does not
//! own, and HAProxy 2.6 applies it only when a server leaves MAINT: a restore that warms up in
//! DRAIN first (every backend with checks) goes from DRAIN to READY at full weight at once. So
//! haproxy-drain ramps itself with `set weight`, which HAProxy reports as the server's weight.
//!
//! The period is cut into at most [`MAX_STEPS`] equal steps (fewer for a small weight: one per
//! weight unit). Step `k` of `n` is due `k-1` n-ths into the period and sets
//! `ceil(target * k / n)`: never 0 (0 would take the server out), never more than the target,
//! never lower than the step before, and the last one is the target itself.

use std::time::Duration;

use tokio::time::Instant;

/// Steps of one ramp at most: every second for a 10 s ramp.
pub const MAX_STEPS: u32 = 10;

/// The weight to set now and when the next step is due (`None`: the ramp is over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RampStep {
    pub weight: u32,
    pub next_after: Option<Duration>,
}

/// Where a ramp is at `elapsed` into `period`, towards `target`.
pub fn ramp_step(period: Duration, target: u32, elapsed: Duration) -> RampStep {
    let steps = target.clamp(1, MAX_STEPS);
    if target <= 1 || period.is_zero() || elapsed >= period {
        return RampStep {
            weight: target,
            next_after: None,
        };
    }
    let step_len = period / steps;
    // Which step is due: 1 at the start, `steps` in the last n-th of the period.
    let due = u32::try_from(elapsed.as_nanos() / step_len.as_nanos().max(1))
        .unwrap_or(u32::MAX)
        .saturating_add(1)
        .min(steps);
    let weight = (u64::from(target) * u64::from(due)).div_ceil(u64::from(steps));
    let next_after = (due < steps).then(|| step_len * due);
    RampStep {
        weight: u32::try_from(weight).unwrap_or(target).max(1),
        next_after,
    }
}

/// A ramp in progress: what it aims at and what it last told HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ramp {
    pub started: Instant,
    pub period: Duration,
    pub target: u32,
    /// The weight haproxy-drain set last; anything else observed is someone else's change.
    pub last_set: u32,
    /// When the next step is due.
    pub next: Instant,
    /// A read showed another weight and is being confirmed by a second, fresh one (the first
    /// may have started before the last step reached HAProxy).
    pub rechecking: bool,
}

impl Ramp {
    /// Starts a ramp at `now`; `None` when there is nothing to ramp (off, or a weight of 1).
    pub fn start(period: Duration, target: u32, now: Instant) -> Option<Self> {
        let step = ramp_step(period, target, Duration::ZERO);
        let next_after = step.next_after?;
        Some(Self {
            started: now,
            period,
            target,
            last_set: step.weight,
            next: now + next_after,
            rechecking: false,
        })
    }

    /// The step due at `now`; `next` moves on. `None` when the ramp had already ended.
    pub fn advance(&mut self, now: Instant) -> RampStep {
        let step = ramp_step(self.period, self.target, now - self.started);
        self.last_set = step.weight;
        self.rechecking = false;
        if let Some(after) = step.next_after {
            self.next = self.started + after;
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn steps_of_a_ramp() {
        #[rustfmt::skip]
        let table = [
            // period, target, elapsed, weight, next step after
            (10 * S, 100, Duration::ZERO, 10, Some(S)),
            (10 * S, 100, S / 2, 10, Some(S)),
            (10 * S, 100, S, 20, Some(2 * S)),
            (10 * S, 100, 9 * S, 100, None),
            (10 * S, 100, 10 * S, 100, None),
            (10 * S, 100, 60 * S, 100, None),
            // Fewer steps than weight units: 3 steps of 3 1/3 s.
            (10 * S, 3, Duration::ZERO, 1, Some(Duration::from_nanos(3_333_333_333))),
            (10 * S, 3, 4 * S, 2, Some(Duration::from_nanos(6_666_666_666))),
            (10 * S, 3, 7 * S, 3, None),
            (10 * S, 7, Duration::ZERO, 1, Some(Duration::from_nanos(1_428_571_428))),
            (10 * S, 256, Duration::ZERO, 26, Some(S)),
            // Nothing to ramp.
            (10 * S, 1, Duration::ZERO, 1, None),
            (10 * S, 0, Duration::ZERO, 0, None),
            (Duration::ZERO, 100, Duration::ZERO, 100, None),
        ];
        for (period, target, elapsed, weight, next_after) in table {
            assert_eq!(
                ramp_step(period, target, elapsed),
                RampStep { weight, next_after },
                "{target} over {period:?} at {elapsed:?}"
            );
        }
    }

    #[test]
    fn a_ramp_walks_its_steps_and_ends_at_the_target() {
        let now = Instant::now();
        let mut ramp = Ramp::start(2 * S, 4, now).expect("a weight of 4 ramps");
        assert_eq!((ramp.last_set, ramp.next), (1, now + S / 2));
        let mut seen = vec![ramp.last_set];
        while ramp.advance(ramp.next).next_after.is_some() {
            seen.push(ramp.last_set);
        }
        seen.push(ramp.last_set);
        assert_eq!(seen, [1, 2, 3, 4]);
        assert!(Ramp::start(2 * S, 1, now).is_none());
        assert!(Ramp::start(Duration::ZERO, 50, now).is_none());
    }

    proptest! {
        /// During the ramp no weight is 0, none goes down, none passes the target, and the
        /// ramp ends at the target at the latest when the period is over.
        #[test]
        fn ramps_never_reach_zero_and_end_at_the_target(
            period_ms in 1u64..120_000,
            target in 1u32..=256,
            mut probes in proptest::collection::vec(0u64..150_000, 1..40),
        ) {
            let period = Duration::from_millis(period_ms);
            probes.sort_unstable();
            let mut last = 0;
            for ms in probes {
                let step = ramp_step(period, target, Duration::from_millis(ms));
                prop_assert!(step.weight >= 1);
                prop_assert!(step.weight <= target);
                prop_assert!(step.weight >= last, "went down at {ms} ms");
                if let Some(next) = step.next_after {
                    prop_assert!(next > Duration::from_millis(ms) && next < period);
                    prop_assert!(step.weight < target);
                }
                last = step.weight;
            }
            prop_assert_eq!(ramp_step(period, target, period).weight, target);
        }
    }
}
