//! Which slots this sidecar should hold, from what its servers are doing now. Pure: the keeper
//! feeds it the local view and the time, and carries out the returned changes.
//!
//! - A server out of rotation without a slot takes one unconditionally (a crash, a `kill`, an
//!   operator's MAINT: they cannot be refused, they count).
//! - A slot reserved by a drain (`acquire`) is kept until the server has been seen out and is
//!   back in rotation, or, if it never went out (the drain failed), until `grace` has passed.
//! - A slot is never released while the server's state is unknown (a sidecar that just started).
//! - A slot not yet written under the current lease (a new lease, a failed put) is written again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::haproxy::ServerId;

/// What the controller says about one of its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalState {
    InRotation,
    Out,
    /// Not read yet (a task that just started).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub since_unix_ms: u64,
    pub reason: String,
    /// When this sidecar took or adopted it.
    pub created_at: Instant,
    pub seen_out: bool,
    /// Written under the current lease.
    pub written: bool,
    /// Released locally; the delete has not reached etcd yet.
    pub releasing: bool,
}

impl Hold {
    pub fn reserved(reason: &str, now: Instant, since_unix_ms: u64) -> Self {
        Self {
            since_unix_ms,
            reason: reason.to_string(),
            created_at: now,
            seen_out: false,
            written: true,
            releasing: false,
        }
    }

    /// A slot found in etcd under this host at start-up: its server was out when it was taken.
    pub fn adopted(reason: &str, now: Instant, since_unix_ms: u64) -> Self {
        Self {
            since_unix_ms,
            reason: reason.to_string(),
            created_at: now,
            seen_out: true,
            written: false,
            releasing: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotChange {
    Put(ServerId),
    Delete(ServerId),
}

pub type Holds = BTreeMap<ServerId, Hold>;

/// One pass: updates `holds` and returns what to write to etcd. A server missing from `local`
/// (no task for it) counts as in rotation once its hold is older than `grace`.
pub fn step(
    holds: &mut Holds,
    local: &BTreeMap<ServerId, LocalState>,
    now: Instant,
    now_unix_ms: u64,
    grace: Duration,
) -> Vec<SlotChange> {
    let mut changes = Vec::new();
    for (id, state) in local {
        if *state == LocalState::Out && !holds.contains_key(id) {
            let hold = Hold::adopted("out", now, now_unix_ms);
            holds.insert(id.clone(), hold);
        }
    }
    for (id, hold) in holds.iter_mut() {
        let state = local.get(id).copied();
        match state {
            Some(LocalState::Out) => {
                hold.seen_out = true;
                hold.releasing = false;
            }
            Some(LocalState::Unknown) => {}
            Some(LocalState::InRotation) | None => {
                let old = now.saturating_duration_since(hold.created_at) >= grace;
                // Without a task the server's state is not known: only age releases it.
                if old || (hold.seen_out && state.is_some()) {
                    hold.releasing = true;
                }
            }
        }
        if hold.releasing {
            changes.push(SlotChange::Delete(id.clone()));
        } else if !hold.written {
            changes.push(SlotChange::Put(id.clone()));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);

    fn id(server: &str) -> ServerId {
        ServerId::new("app", server)
    }

    fn run(
        holds: &mut Holds,
        local: &[(&str, LocalState)],
        now: Instant,
        now_unix_ms: u64,
    ) -> Vec<SlotChange> {
        let local = local.iter().map(|(s, st)| (id(s), *st)).collect();
        step(holds, &local, now, now_unix_ms, GRACE)
    }

    #[test]
    fn a_crash_takes_a_slot_unconditionally() {
        let mut holds = Holds::new();
        let now = Instant::now();
        let changes = run(&mut holds, &[("a1", LocalState::Out)], now, 1_000);
        assert_eq!(changes, vec![SlotChange::Put(id("a1"))]);
        assert_eq!(holds[&id("a1")].reason, "out");
        holds.get_mut(&id("a1")).unwrap().written = true;
        assert_eq!(
            run(&mut holds, &[("a1", LocalState::Out)], now, 1_000),
            vec![]
        );
        // Back in rotation: released.
        let changes = run(&mut holds, &[("a1", LocalState::InRotation)], now, 2_000);
        assert_eq!(changes, vec![SlotChange::Delete(id("a1"))]);
    }

    #[test]
    fn a_reservation_waits_for_its_drain_then_for_the_restore() {
        let start = Instant::now();
        let mut holds = Holds::from([(id("a1"), Hold::reserved("roll", start, 0))]);
        // The drain has not reached the server's task yet.
        assert_eq!(
            run(&mut holds, &[("a1", LocalState::InRotation)], start, 0),
            vec![]
        );
        assert_eq!(
            run(&mut holds, &[("a1", LocalState::Out)], start, 0),
            vec![]
        );
        assert!(holds[&id("a1")].seen_out);
        // Unknown (a restarted task) never releases.
        let later = start + Duration::from_secs(60);
        assert_eq!(
            run(&mut holds, &[("a1", LocalState::Unknown)], later, 60_000),
            vec![]
        );
        assert_eq!(
            run(&mut holds, &[("a1", LocalState::InRotation)], later, 60_000),
            vec![SlotChange::Delete(id("a1"))]
        );
    }

    #[test]
    fn a_drain_that_never_happened_gives_its_slot_back_after_the_grace() {
        let start = Instant::now();
        let mut holds = Holds::from([(id("a1"), Hold::reserved("api", start, 0))]);
        let soon = start + GRACE / 2;
        assert_eq!(
            run(&mut holds, &[("a1", LocalState::InRotation)], soon, 5_000),
            vec![]
        );
        let late = start + GRACE;
        assert_eq!(
            run(&mut holds, &[("a1", LocalState::InRotation)], late, 10_000),
            vec![SlotChange::Delete(id("a1"))]
        );
    }

    #[test]
    fn adopted_slots_are_rewritten_and_released_when_their_server_is_back() {
        let now = Instant::now();
        let mut holds = Holds::from([
            (id("a1"), Hold::adopted("roll", now, 0)),
            (id("a2"), Hold::adopted("out", now, 0)),
        ]);
        let changes = run(
            &mut holds,
            &[("a1", LocalState::Unknown), ("a2", LocalState::InRotation)],
            now,
            1_000,
        );
        assert_eq!(
            changes,
            vec![SlotChange::Put(id("a1")), SlotChange::Delete(id("a2"))]
        );
    }

    #[test]
    fn a_server_without_a_task_is_released_after_the_grace() {
        let now = Instant::now();
        let mut holds = Holds::from([(id("gone"), Hold::reserved("api", now, 1_000))]);
        assert_eq!(run(&mut holds, &[], now, 2_000), vec![]);
        assert_eq!(
            run(&mut holds, &[], now + GRACE, 11_000),
            vec![SlotChange::Delete(id("gone"))]
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;
        use crate::haproxy::ServerId;

        const GRACE: Duration = Duration::from_secs(10);

        fn state() -> impl Strategy<Value = Option<LocalState>> {
            prop_oneof![
                Just(None),
                Just(Some(LocalState::InRotation)),
                Just(Some(LocalState::Out)),
                Just(Some(LocalState::Unknown)),
            ]
        }

        proptest! {
            /// Random sequences of two servers' states, reservations, failed and successful
            /// writes and time: a server out of rotation always holds a slot that is not being
            /// released; a slot is released only when its server is in rotation, has no task,
            /// or its reservation is old; a server seen out is released once it is back.
            #[test]
            fn a_server_out_of_rotation_always_holds_its_slot(
                steps in proptest::collection::vec(
                    (state(), state(), any::<bool>(), any::<bool>(), 0u64..15_000),
                    1..60,
                )
            ) {
                let ids = [ServerId::new("app", "a1"), ServerId::new("app", "a2")];
                let start = Instant::now();
                let (mut elapsed_ms, mut holds) = (0u64, Holds::new());
                for (s1, s2, reserve, writes_succeed, advance) in steps {
                    elapsed_ms += advance;
                    let now = start + Duration::from_millis(elapsed_ms);
                    if reserve && !holds.contains_key(&ids[0]) {
                        holds.insert(ids[0].clone(), Hold::reserved("roll", now, elapsed_ms));
                    }
                    let local: BTreeMap<ServerId, LocalState> = [(&ids[0], s1), (&ids[1], s2)]
                        .into_iter()
                        .filter_map(|(id, s)| s.map(|s| (id.clone(), s)))
                        .collect();
                    let seen_out_before: BTreeMap<ServerId, bool> =
                        holds.iter().map(|(id, h)| (id.clone(), h.seen_out)).collect();
                    let releasing_before: BTreeMap<ServerId, bool> =
                        holds.iter().map(|(id, h)| (id.clone(), h.releasing)).collect();
                    let changes = step(&mut holds, &local, now, elapsed_ms, GRACE);
                    for (id, state) in &local {
                        if *state == LocalState::Out {
                            let hold = holds.get(id);
                            prop_assert!(hold.is_some_and(|h| !h.releasing), "{id} out without a slot");
                            prop_assert!(!changes.contains(&SlotChange::Delete(id.clone())));
                        }
                        if *state == LocalState::InRotation
                            && seen_out_before.get(id).copied().unwrap_or(false)
                        {
                            prop_assert!(changes.contains(&SlotChange::Delete(id.clone())));
                        }
                    }
                    for change in &changes {
                        if let SlotChange::Delete(id) = change {
                            let state = local.get(id).copied();
                            prop_assert_ne!(state, Some(LocalState::Out));
                            let hold = &holds[id];
                            let old = now.saturating_duration_since(hold.created_at) >= GRACE;
                            // A release whose delete failed is retried whatever the state but out.
                            let retried = releasing_before.get(id).copied().unwrap_or(false);
                            prop_assert!(
                                state.is_none() && old
                                    || state == Some(LocalState::InRotation)
                                    || retried,
                                "{id} released while {state:?}"
                            );
                        }
                    }
                    // The keeper carries out the changes.
                    for change in changes {
                        match change {
                            SlotChange::Put(id) if writes_succeed => {
                                if let Some(hold) = holds.get_mut(&id) {
                                    hold.written = true;
                                }
                            }
                            SlotChange::Delete(id) if writes_succeed => {
                                holds.remove(&id);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}
