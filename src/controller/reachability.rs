//! Which HAProxies answer: one that failed [`DOWN_AFTER_FAILURES`] calls in a row is down, and a
//! down HAProxy must not hold the others back.
//!
//! A HAProxy whose runtime API cannot be reached cannot be drained either, so waiting for its
//! sessions or checks only delays every other HAProxy (and every restore) by its timeouts. While
//! it is down, servers' commands and reads skip it; its own watcher keeps probing it with
//! `show info`, and the first answer makes it up again and triggers a reconciliation, which
//! brings it in line with what the others were told meanwhile.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::haproxy::HaproxyError;

/// Consecutive failed calls after which a HAProxy counts as down. One timeout or refused
/// connection on a busy HAProxy is not enough: a success in between resets the count.
pub const DOWN_AFTER_FAILURES: u32 = 3;

#[derive(Debug)]
pub struct Reachability {
    /// Consecutive failures, one per HAProxy.
    failures: Vec<AtomicU32>,
}

impl Reachability {
    pub fn new(haproxies: usize) -> Self {
        Self {
            failures: (0..haproxies).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Counts one call's result. A command HAProxy refused is an answer: it is reachable.
    pub fn record<T>(&self, index: usize, result: &Result<T, HaproxyError>) {
        let Some(failures) = self.failures.get(index) else {
            return;
        };
        match result {
            Ok(_) | Err(HaproxyError::Command(_)) => failures.store(0, Ordering::Relaxed),
            Err(_) => {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn is_up(&self, index: usize) -> bool {
        self.failures
            .get(index)
            .is_some_and(|f| f.load(Ordering::Relaxed) < DOWN_AFTER_FAILURES)
    }

    /// The HAProxies a server's command or read goes to: those that are up, or every one when
    /// none is (nobody else to delay, and one may just have come back).
    pub fn targets(&self) -> Vec<usize> {
        let up: Vec<usize> = (0..self.failures.len())
            .filter(|&i| self.is_up(i))
            .collect();
        if up.is_empty() {
            (0..self.failures.len()).collect()
        } else {
            up
        }
    }

    /// The answers of a read sent to [`targets`](Self::targets): an error from a HAProxy that is
    /// still up fails the read (the caller retries); one that is now down is left out, unless
    /// nobody answered at all.
    pub fn answers<T>(
        &self,
        results: Vec<(usize, Result<T, HaproxyError>)>,
    ) -> Result<Vec<T>, HaproxyError> {
        let mut answers = Vec::with_capacity(results.len());
        let mut down_error = None;
        for (index, result) in results {
            match result {
                Ok(value) => answers.push(value),
                Err(error) if self.is_up(index) => return Err(error),
                Err(error) => down_error = Some(error),
            }
        }
        match down_error {
            Some(error) if answers.is_empty() => Err(error),
            _ => Ok(answers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> Result<(), HaproxyError> {
        Err(HaproxyError::Timeout {
            addr: "unix:///x".into(),
            after: std::time::Duration::from_secs(2),
        })
    }

    #[test]
    fn down_after_consecutive_failures_and_up_after_one_answer() {
        let r = Reachability::new(2);
        for _ in 0..DOWN_AFTER_FAILURES - 1 {
            r.record(1, &timeout());
        }
        assert!(r.is_up(1), "not yet");
        r.record(1, &Ok(()));
        for _ in 0..DOWN_AFTER_FAILURES - 1 {
            r.record(1, &timeout());
        }
        assert!(r.is_up(1), "a success in between resets the count");
        r.record(1, &timeout());
        assert!(!r.is_up(1));
        assert_eq!(r.targets(), vec![0]);
        let refused: Result<(), HaproxyError> = Err(HaproxyError::Command(
            crate::haproxy::CommandError::NoSuchBackend {
                command: "show stat x".into(),
            },
        ));
        r.record(1, &refused);
        assert!(r.is_up(1), "a refusal is an answer");
    }

    #[test]
    fn every_haproxy_is_a_target_when_all_are_down() {
        let r = Reachability::new(2);
        for i in 0..2 {
            for _ in 0..DOWN_AFTER_FAILURES {
                r.record(i, &timeout());
            }
        }
        assert_eq!(r.targets(), vec![0, 1]);
    }

    #[test]
    fn answers_leave_out_only_haproxies_that_are_down() {
        let r = Reachability::new(3);
        for _ in 0..DOWN_AFTER_FAILURES {
            r.record(2, &timeout());
        }
        let ok = |i: usize, v: u32| (i, Ok(v));
        let fail = |i: usize| (i, timeout().map(|_| 0u32));
        assert_eq!(
            r.answers(vec![ok(0, 1), ok(1, 2), fail(2)]).unwrap(),
            vec![1, 2]
        );
        assert!(
            r.answers(vec![ok(0, 1), fail(1)]).is_err(),
            "1 is up: retry"
        );
        assert!(r.answers(vec![fail(2)]).is_err(), "nobody answered");
        assert_eq!(r.answers::<u32>(vec![]).unwrap(), Vec::<u32>::new());
    }
}
