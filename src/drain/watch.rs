//! The post-restore watch: is a server that just came back clearly worse than its peers? Pure.
//!
//! Two readings of the backend's counters — one when the server went back into rotation, one
//! now — give what the server and each peer answered in between. The server is bad when it has
//! answered enough requests ([`WatchLimits::min_requests`]) and either its error rate is above
//! both the floor and its peers' rate plus a margin, or its average response time is both a
//! factor and a margin above its peers'. Peers without enough requests of their own count as
//! error-free and give no response time to compare with: alone in its backend, a server is
//! judged on the error floor only.

use std::collections::BTreeMap;

use crate::config::WatchLimits;
use crate::haproxy::Traffic;

/// One reading of a backend: every server's counters by name.
pub type Reading = BTreeMap<String, Traffic>;

/// What the watch says about a server.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing wrong yet; `requests` answered so far in the window.
    Pending { requests: u64 },
    /// The window is over and the server was never clearly worse.
    Passed { requests: u64 },
    /// The window is over before enough requests came to judge.
    NotEnoughRequests { requests: u64 },
    /// Clearly worse than its peers; the reason is for the log and `status`.
    Bad { reason: String },
}

/// What one server answered between two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Delta {
    requests: u64,
    errors: u64,
}

impl Delta {
    fn between(before: Option<&Traffic>, now: &Traffic) -> Self {
        let before = before.copied().unwrap_or_default();
        if now.requests < before.requests {
            // Counters were cleared (or the server re-added): count from zero.
            return Self {
                requests: now.requests,
                errors: now.errors,
            };
        }
        Self {
            requests: now.requests - before.requests,
            errors: now.errors.saturating_sub(before.errors),
        }
    }

    fn error_rate(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            (self.errors as f64 / self.requests as f64).min(1.0)
        }
    }
}

/// Judges `server` from the reading at the restore and the one `now`; `window_over` turns a
/// pending verdict into a final one.
pub fn judge(
    server: &str,
    at_restore: &Reading,
    now: &Reading,
    limits: &WatchLimits,
    window_over: bool,
) -> Verdict {
    let Some(current) = now.get(server) else {
        return Verdict::Pending { requests: 0 };
    };
    let own = Delta::between(at_restore.get(server), current);
    let mut peers = Delta::default();
    let (mut rtime_sum, mut rtime_requests) = (0.0, 0u64);
    for (name, traffic) in now.iter().filter(|(name, _)| *name != server) {
        let delta = Delta::between(at_restore.get(name), traffic);
        if delta.requests < limits.min_requests {
            continue;
        }
        peers.requests += delta.requests;
        peers.errors += delta.errors;
        if let Some(rtime) = traffic.rtime_ms {
            rtime_sum += rtime as f64 * delta.requests as f64;
            rtime_requests += delta.requests;
        }
    }
    if own.requests < limits.min_requests {
        return if window_over {
            Verdict::NotEnoughRequests {
                requests: own.requests,
            }
        } else {
            Verdict::Pending {
                requests: own.requests,
            }
        };
    }
    let (rate, peer_rate) = (own.error_rate(), peers.error_rate());
    if rate >= limits.max_error_rate && rate >= peer_rate + limits.error_margin {
        return Verdict::Bad {
            reason: format!(
                "error rate {:.0}% ({} of {} requests) against {:.0}% on its peers",
                rate * 100.0,
                own.errors,
                own.requests,
                peer_rate * 100.0
            ),
        };
    }
    if let (Some(rtime), true) = (current.rtime_ms, rtime_requests > 0) {
        let peer_rtime = rtime_sum / rtime_requests as f64;
        let rtime = rtime as f64;
        if rtime >= peer_rtime * limits.rtime_factor
            && rtime >= peer_rtime + limits.rtime_margin_ms as f64
        {
            return Verdict::Bad {
                reason: format!(
                    "response time {rtime:.0} ms against {peer_rtime:.0} ms on its peers"
                ),
            };
        }
    }
    if window_over {
        Verdict::Passed {
            requests: own.requests,
        }
    } else {
        Verdict::Pending {
            requests: own.requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(requests: u64, errors: u64, rtime: Option<u64>) -> Traffic {
        Traffic {
            requests,
            errors,
            rtime_ms: rtime,
        }
    }

    fn reading(rows: &[(&str, Traffic)]) -> Reading {
        rows.iter().map(|(n, t)| (n.to_string(), *t)).collect()
    }

    /// Name, the reading now, whether the window is over, the verdict expected.
    type Case = (
        &'static str,
        [(&'static str, Traffic); 3],
        bool,
        &'static str,
    );

    fn verdict_kind(verdict: &Verdict) -> &'static str {
        match verdict {
            Verdict::Pending { .. } => "pending",
            Verdict::Passed { .. } => "passed",
            Verdict::NotEnoughRequests { .. } => "not_enough",
            Verdict::Bad { .. } => "bad",
        }
    }

    #[test]
    fn verdicts() {
        let base = reading(&[
            ("new", traffic(100, 10, Some(5))),
            ("p1", traffic(1000, 0, Some(5))),
            ("p2", traffic(1000, 0, Some(5))),
        ]);
        let t = traffic;
        #[rustfmt::skip]
        let table: [Case; 11] = [
            // Half of its 40 requests failed, peers none: bad at once.
            ("half fail", [("new", t(140, 30, Some(5))), ("p1", t(1040, 0, Some(5))), ("p2", t(1040, 0, Some(5)))], false, "bad"),
            // Errors before the restore do not count.
            ("old errors", [("new", t(140, 10, Some(5))), ("p1", t(1040, 0, Some(5))), ("p2", t(1040, 0, Some(5)))], true, "passed"),
            // Too few requests to judge: pending, then not enough.
            ("few", [("new", t(110, 20, Some(5))), ("p1", t(1040, 0, Some(5))), ("p2", t(1040, 0, Some(5)))], false, "pending"),
            ("few, over", [("new", t(110, 20, Some(5))), ("p1", t(1040, 0, Some(5))), ("p2", t(1040, 0, Some(5)))], true, "not_enough"),
            // Everyone fails alike (the backend's database is down): not this server's fault.
            ("all fail", [("new", t(140, 20, Some(5))), ("p1", t(1040, 20, Some(5))), ("p2", t(1040, 20, Some(5)))], true, "passed"),
            // Above its peers but under the floor.
            ("under floor", [("new", t(140, 16, Some(5))), ("p1", t(1040, 0, Some(5))), ("p2", t(1040, 0, Some(5)))], true, "passed"),
            // Slow: 50x its peers and 1 s above them.
            ("slow", [("new", t(140, 10, Some(1000))), ("p1", t(1040, 0, Some(20))), ("p2", t(1040, 0, Some(20)))], false, "bad"),
            // Slower, but within the margin.
            ("bit slow", [("new", t(140, 10, Some(100))), ("p1", t(1040, 0, Some(20))), ("p2", t(1040, 0, Some(20)))], true, "passed"),
            // Peers too idle to compare with: judged on the floor only.
            ("idle peers", [("new", t(140, 30, Some(900))), ("p1", t(1001, 0, Some(5))), ("p2", t(1001, 0, Some(5)))], false, "bad"),
            ("idle peers, slow", [("new", t(140, 10, Some(900))), ("p1", t(1001, 0, Some(5))), ("p2", t(1001, 0, Some(5)))], true, "passed"),
            // Counters cleared since the restore: counted from zero.
            ("cleared", [("new", t(40, 20, Some(5))), ("p1", t(40, 0, Some(5))), ("p2", t(40, 0, Some(5)))], false, "bad"),
        ];
        let limits = WatchLimits::default();
        for (name, now, window_over, expected) in table {
            let verdict = judge("new", &base, &reading(&now), &limits, window_over);
            assert_eq!(verdict_kind(&verdict), expected, "{name}: {verdict:?}");
        }
    }

    proptest::proptest! {
        /// A server that fails no more often than its peers (with enough requests to compare
        /// with) and is no slower is never bad,
        /// whatever the numbers.
        #[test]
        fn no_worse_than_its_peers_is_never_bad(
            requests in 0u64..10_000,
            peer_requests in 20u64..10_000,
            peer_errors_permille in 0u64..=1000,
            own_share in 0u64..=1000,
            rtime in 0u64..5_000,
            window_over: bool,
        ) {
            let peer_errors = peer_requests * peer_errors_permille / 1000;
            // At most the peers' rate: errors / requests <= peer_errors / peer_requests.
            let errors = requests * peer_errors / peer_requests * own_share / 1000;
            let base = reading(&[("new", traffic(0, 0, None)), ("p", traffic(0, 0, None))]);
            let now = reading(&[
                ("new", traffic(requests, errors, Some(rtime))),
                ("p", traffic(peer_requests, peer_errors, Some(rtime))),
            ]);
            let verdict = judge("new", &base, &now, &WatchLimits::default(), window_over);
            proptest::prop_assert!(!matches!(verdict, Verdict::Bad { .. }), "{:?}", verdict);
        }
    }

    #[test]
    fn the_reason_names_the_numbers_and_a_missing_server_is_pending() {
        let base = reading(&[("new", traffic(0, 0, None)), ("p", traffic(0, 0, None))]);
        let now = reading(&[("new", traffic(40, 20, None)), ("p", traffic(40, 0, None))]);
        let Verdict::Bad { reason } = judge("new", &base, &now, &WatchLimits::default(), false)
        else {
            panic!("40 requests with 20 errors are bad");
        };
        assert_eq!(
            reason,
            "error rate 50% (20 of 40 requests) against 0% on its peers"
        );
        assert_eq!(
            judge("gone", &base, &now, &WatchLimits::default(), true),
            Verdict::Pending { requests: 0 }
        );
    }
}
