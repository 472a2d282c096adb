//! The slot arithmetic: may one more server of a backend go out fleet-wide? Pure: it takes
//! what one etcd read returned and answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Budget;

/// One slot: a server out of rotation somewhere in the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub server: String,
    /// When the slot was taken (Unix milliseconds, the holder's clock).
    pub since_unix_ms: u64,
    /// `roll`, `api`, `gate` (a drain that waited or checked) or `out` (taken unconditionally:
    /// a crash, a kill, an operator's MAINT).
    pub reason: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ({})", self.host, self.server, self.reason)
    }
}

/// What etcd holds for one backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendView {
    pub holders: Vec<Holder>,
    /// Each live host's server count in the backend (for percentage budgets).
    pub servers_per_host: BTreeMap<String, usize>,
}

impl BackendView {
    /// Servers in the backend across the live hosts.
    pub fn total_servers(&self) -> usize {
        self.servers_per_host.values().sum()
    }

    /// How many may be out at once fleet-wide.
    pub fn max_out(&self, budget: Budget) -> usize {
        budget.max_out(self.total_servers())
    }

    /// `host-a/app1 (roll), host-b/app3 (out)`, or `nobody`.
    pub fn holders_text(&self) -> String {
        if self.holders.is_empty() {
            return "nobody".to_string();
        }
        let names: Vec<String> = self.holders.iter().map(Holder::to_string).collect();
        names.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotVerdict {
    /// This server already holds a slot: nothing more to take.
    AlreadyHeld,
    /// A slot is free: take it (in a transaction that fails if the slots changed meanwhile).
    Free,
    /// Every slot is held.
    Full { max_out: usize, held: usize },
}

pub fn verdict(budget: Budget, view: &BackendView, host: &str, server: &str) -> SlotVerdict {
    if view
        .holders
        .iter()
        .any(|h| h.host == host && h.server == server)
    {
        return SlotVerdict::AlreadyHeld;
    }
    let max_out = view.max_out(budget);
    let held = view.holders.len();
    if held < max_out {
        SlotVerdict::Free
    } else {
        SlotVerdict::Full { max_out, held }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, server: &str) -> Holder {
        Holder {
            host: host.into(),
            server: server.into(),
            since_unix_ms: 0,
            reason: "roll".into(),
        }
    }

    fn view(holders: &[(&str, &str)], hosts: &[(&str, usize)]) -> BackendView {
        BackendView {
            holders: holders.iter().map(|(h, s)| holder(h, s)).collect(),
            servers_per_host: hosts.iter().map(|(h, n)| (h.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn the_slot_table() {
        use SlotVerdict::*;
        let three = [("a", 2), ("b", 2), ("c", 2)];
        #[rustfmt::skip]
        let table: Vec<(Budget, BackendView, &str, &str, SlotVerdict)> = vec![
            // budget, what etcd holds, host, server → verdict
            (Budget::Count(1), view(&[], &three), "a", "app1", Free),
            (Budget::Count(1), view(&[("b", "app1")], &three), "a", "app1", Full { max_out: 1, held: 1 }),
            (Budget::Count(1), view(&[("a", "app1")], &three), "a", "app1", AlreadyHeld),
            // The same server name on another host is another server.
            (Budget::Count(2), view(&[("b", "app1")], &three), "a", "app1", Free),
            // A crash may have pushed the count over the budget.
            (Budget::Count(1), view(&[("b", "app1"), ("c", "app2")], &three), "a", "app1", Full { max_out: 1, held: 2 }),
            (Budget::Count(0), view(&[], &three), "a", "app1", Full { max_out: 0, held: 0 }),
            // 35% of 6 servers is 2.
            (Budget::Percent(35), view(&[("b", "app1")], &three), "a", "app1", Free),
            (Budget::Percent(35), view(&[("b", "app1"), ("c", "app1")], &three), "a", "app1", Full { max_out: 2, held: 2 }),
            // A dead host's servers leave the total with its lease.
            (Budget::Percent(35), view(&[], &[("a", 2)]), "a", "app1", Full { max_out: 0, held: 0 }),
            (Budget::Percent(50), view(&[], &[("a", 2)]), "a", "app1", Free),
            (Budget::KeepOne, view(&[("b", "app1")], &[("a", 1), ("b", 1)]), "a", "app1", Full { max_out: 1, held: 1 }),
        ];
        for (budget, view, host, server, expected) in table {
            assert_eq!(
                verdict(budget, &view, host, server),
                expected,
                "{budget:?} {view:?} {host}/{server}"
            );
        }
    }

    #[test]
    fn holders_are_named() {
        assert_eq!(view(&[], &[]).holders_text(), "nobody");
        assert_eq!(
            view(&[("a", "app1"), ("b", "app2")], &[]).holders_text(),
            "a/app1 (roll), b/app2 (roll)"
        );
    }
}
