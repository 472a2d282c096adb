//! One read for many pollers, never an old one: a caller gets the result of a read that started
//! after its call. Callers of one key while a read is in flight wait for the next read, which
//! one of them sends; everyone who arrived during the first read shares the second.
//!
//! The session poll needs this rather than [`super::single_flight::SingleFlight`]: a drained
//! server's sessions count only if they were read after the drain reached HAProxy, so joining a
//! read that is already in flight (it may predate the drain) is not allowed. Without it, 100
//! servers draining in one backend each read the whole backend's `show stat` every poll
//! interval: 100 × 100 rows per interval, quadratic in the backend's size.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub struct NextRead<V> {
    slots: Mutex<HashMap<String, Arc<watch::Sender<Slot<V>>>>>,
}

/// One key's reads: generations are numbered from 1, at most one is in flight.
struct Slot<V> {
    reading: bool,
    started: u64,
    finished: u64,
    value: Option<V>,
}

enum Step<V> {
    Done(V),
    Lead(u64),
    Wait,
}

impl<V> Default for NextRead<V> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> std::fmt::Debug for NextRead<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextRead").finish_non_exhaustive()
    }
}

/// Ends the leader's read in the slot when it is cancelled, so a waiter leads instead.
struct Reading<'a, V> {
    slot: &'a watch::Sender<Slot<V>>,
    armed: bool,
}

impl<V> Drop for Reading<'_, V> {
    fn drop(&mut self) {
        if self.armed {
            self.slot.send_modify(|s| s.reading = false);
        }
    }
}

impl<V: Clone> NextRead<V> {
    fn slot(&self, key: &str) -> Arc<watch::Sender<Slot<V>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key.to_string())
            .or_insert_with(|| {
                let idle = Slot {
                    reading: false,
                    started: 0,
                    finished: 0,
                    value: None,
                };
                Arc::new(watch::channel(idle).0)
            })
            .clone()
    }

    /// The result of a read of `key` that started after this call: `read()` itself when no
    /// read is in flight, else the next read, shared with every caller waiting for it.
    pub async fn run<F, Fut>(&self, key: &str, read: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let slot = self.slot(key);
        let mut changes = slot.subscribe();
        let mut wanted = None;
        let generation = loop {
            let mut step = Step::Wait;
            slot.send_if_modified(|s| {
                let wanted = *wanted.get_or_insert(s.started + 1);
                if s.finished >= wanted {
                    if let Some(value) = &s.value {
                        step = Step::Done(value.clone());
                    }
                } else if !s.reading {
                    s.reading = true;
                    s.started += 1;
                    step = Step::Lead(s.started);
                }
                false // starting a read wakes nobody: only its end does
            });
            match step {
                Step::Done(value) => return value,
                Step::Lead(generation) => break generation,
                // The sender lives in `slot`: `changed` cannot fail while we hold it.
                Step::Wait => {
                    let _ = changes.changed().await;
                }
            }
        };
        let mut reading = Reading {
            slot: &slot,
            armed: true,
        };
        let value = read().await;
        reading.armed = false;
        slot.send_modify(|s| {
            s.reading = false;
            s.finished = generation;
            s.value = Some(value.clone());
        });
        value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    async fn counted_read(reads: Arc<AtomicUsize>) -> usize {
        tokio::time::sleep(Duration::from_millis(10)).await;
        reads.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[tokio::test(start_paused = true)]
    async fn callers_during_a_read_share_the_next_one_never_the_one_in_flight() {
        let flight = Arc::new(NextRead::<usize>::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let first = tokio::spawn({
            let (flight, reads) = (flight.clone(), reads.clone());
            async move { flight.run("be", || counted_read(reads)).await }
        });
        tokio::task::yield_now().await;
        let later: Vec<_> = (0..20)
            .map(|_| {
                let (flight, reads) = (flight.clone(), reads.clone());
                tokio::spawn(async move { flight.run("be", || counted_read(reads)).await })
            })
            .collect();
        assert_eq!(
            first.await.unwrap(),
            1,
            "nothing in flight: it reads at once"
        );
        for caller in later {
            assert_eq!(
                caller.await.unwrap(),
                2,
                "the read after their call, shared"
            );
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2, "21 callers, 2 reads");
        assert_eq!(flight.run("be", || counted_read(reads.clone())).await, 3);
        assert_eq!(flight.run("other", || counted_read(reads.clone())).await, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_leader_lets_a_waiter_read() {
        let flight = Arc::new(NextRead::<u8>::default());
        let leader = tokio::spawn({
            let flight = flight.clone();
            async move { flight.run("be", std::future::pending).await }
        });
        tokio::task::yield_now().await;
        let waiter = tokio::spawn({
            let flight = flight.clone();
            async move { flight.run("be", || async { 7 }).await }
        });
        tokio::task::yield_now().await;
        leader.abort();
        assert_eq!(waiter.await.unwrap(), 7);
    }
}
