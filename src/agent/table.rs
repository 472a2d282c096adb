//! The agent's answers, one per server: what the controller last decided about its admin state
//! and weight. Writers are the controller's commands (in pull mode instead of sending them);
//! the reader is the responder, which also records that HAProxy asked, so that a decision can
//! wait until HAProxy has picked it up before its effect (a drain's session count) is read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::drain::agent_answer::AgentAnswer;
use crate::haproxy::{AdminState, ServerId, WeightSpec};

/// How long a restore (`ready`, with its weight) is answered before the agent falls silent.
pub const READY_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Default)]
struct Entry {
    /// When the answer last became `ready`.
    ready_since: Option<Instant>,
    answer: AgentAnswer,
    /// The generation of the last decision; `served` the last one HAProxy read.
    decided: u64,
    served: u64,
    /// HAProxy has asked about this server at least once: it exists there with an agent check.
    asked: bool,
}

#[derive(Debug)]
pub struct AgentTable {
    entries: Mutex<HashMap<ServerId, Entry>>,
    generations: Mutex<u64>,
    /// Bumped at every answer served, so waiters look again.
    served: watch::Sender<u64>,
}

impl Default for AgentTable {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            generations: Mutex::new(0),
            served: watch::channel(0).0,
        }
    }
}

impl AgentTable {
    /// Records a `set server … state`; returns the decision's generation for [`Self::picked_up`].
    pub fn set_admin(&self, id: &ServerId, admin: AdminState) -> u64 {
        self.decide(id, |answer| answer.set_admin(admin))
    }

    /// Records a `set weight`; `initial` is the server's configured weight.
    pub fn set_weight(&self, id: &ServerId, spec: WeightSpec, initial: u32) -> u64 {
        self.decide(id, |answer| answer.set_weight(spec, initial))
    }

    fn decide(&self, id: &ServerId, change: impl FnOnce(&mut AgentAnswer)) -> u64 {
        let generation = {
            let mut next = self.generations.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(id.clone()).or_default();
        change(&mut entry.answer);
        entry.decided = generation;
        entry.ready_since = (entry.answer.admin == Some(AdminState::Ready)).then(Instant::now);
        generation
    }

    /// The answer to one agent request (the `agent-send` text, `backend/server`); the server is
    /// then known to be asked about, and its current decision picked up. A request that names
    /// no server gets the answer that changes nothing.
    pub fn answer(&self, request: &str) -> (Option<ServerId>, String) {
        let Some(id) = ServerId::parse(request.trim()) else {
            return (None, AgentAnswer::default().line());
        };
        let line = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let entry = entries.entry(id.clone()).or_default();
            entry.asked = true;
            entry.served = entry.decided;
            if entry
                .ready_since
                .is_some_and(|since| since.elapsed() >= READY_HOLD)
            {
                entry.answer = AgentAnswer::default();
                entry.ready_since = None;
            }
            entry.answer.line()
        };
        self.served.send_modify(|count| *count += 1);
        (Some(id), line)
    }

    /// True once HAProxy has asked about `id` since decision `generation` (or a later one) was
    /// recorded; false after `bound` (HAProxy does not ask: no agent check on that server line,
    /// or HAProxy is down).
    pub async fn picked_up(&self, id: &ServerId, generation: u64, bound: Duration) -> bool {
        let mut served = self.served.subscribe();
        let seen = || {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.get(id).is_some_and(|e| e.served >= generation)
        };
        let wait = async {
            while !seen() {
                if served.changed().await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(bound, wait).await.unwrap_or(false)
    }

    /// Every server HAProxy has asked about, with its current answer: all that can be known of
    /// HAProxy without a socket.
    pub fn asked(&self) -> Vec<(ServerId, AgentAnswer)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut asked: Vec<_> = entries
            .iter()
            .filter(|(_, e)| e.asked)
            .map(|(id, e)| (id.clone(), e.answer))
            .collect();
        asked.sort_by(|a, b| a.0.cmp(&b.0));
        asked
    }

    /// Waits until HAProxy's agent requests stop naming new servers for `quiet` (one round of
    /// agent checks has come in), at most `bound`: without a socket these requests are the only
    /// way to learn which servers HAProxy has, and the first reconciliation should know them.
    pub async fn settle(&self, quiet: Duration, bound: Duration) -> usize {
        let count = || self.asked().len();
        let deadline = tokio::time::Instant::now() + bound;
        let mut known = count();
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(quiet).await;
            let now = count();
            if now == known && now > 0 {
                break;
            }
            known = now;
        }
        known
    }

    /// The current answer for one server, if HAProxy has asked about it.
    pub fn asked_about(&self, id: &ServerId) -> Option<AgentAnswer> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(id).filter(|e| e.asked).map(|e| e.answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_decision_is_picked_up_by_the_next_request_for_its_server() {
        let table = AgentTable::default();
        let web1 = ServerId::new("be", "web1");
        assert_eq!(
            table.answer("be/web1\n"),
            (Some(web1.clone()), "up\n".into())
        );
        let generation = table.set_admin(&web1, AdminState::Drain);
        let bound = Duration::from_secs(5);
        let waiter = table.picked_up(&web1, generation, bound);
        let asker = async {
            tokio::task::yield_now().await;
            assert_eq!(table.answer("be/other\n").1, "up\n");
            table.answer("be/web1\n").1
        };
        let (picked, line) = tokio::join!(waiter, asker);
        assert!(picked);
        assert_eq!(line, "drain\n");
        assert_eq!(table.asked().len(), 2);
    }

    #[tokio::test]
    async fn a_decision_no_one_asks_for_is_not_picked_up() {
        let table = AgentTable::default();
        let web1 = ServerId::new("be", "web1");
        let generation = table.set_admin(&web1, AdminState::Maint);
        table.answer("be/web2");
        assert!(
            !table
                .picked_up(&web1, generation, Duration::from_millis(30))
                .await
        );
        assert_eq!(table.asked_about(&web1), None, "never asked about");
    }

    #[tokio::test(start_paused = true)]
    async fn a_restore_is_answered_for_the_hold_then_the_agent_has_no_opinion() {
        let table = AgentTable::default();
        let web1 = ServerId::new("be", "web1");
        table.set_admin(&web1, AdminState::Maint);
        tokio::time::advance(READY_HOLD * 2).await;
        assert_eq!(
            table.answer("be/web1").1,
            "maint\n",
            "out of rotation: for as long as it lasts"
        );
        table.set_admin(&web1, AdminState::Ready);
        table.set_weight(&web1, WeightSpec::Percent(100), 10);
        tokio::time::advance(READY_HOLD / 2).await;
        assert_eq!(table.answer("be/web1").1, "ready up 100%\n");
        tokio::time::advance(READY_HOLD / 2).await;
        assert_eq!(
            table.answer("be/web1").1,
            "up\n",
            "an operator's later drain stands"
        );
        table.set_admin(&web1, AdminState::Drain);
        assert_eq!(table.answer("be/web1").1, "drain\n");
    }

    #[test]
    fn unreadable_requests_get_the_answer_that_changes_nothing() {
        let table = AgentTable::default();
        for request in ["", "\n", "be", "/x", "be/", "a/b/c", "\u{0}\u{1}"] {
            assert_eq!(table.answer(request), (None, "up\n".into()), "{request:?}");
        }
    }
}
