//! One read for many readers: callers asking for the same key while a read is in flight wait for
//! its result instead of sending their own.
//!
//! When hundreds of containers of one backend stop at once, each server's task re-reads its
//! backend (`show servers state <backend>`) before it acts. Those reads are the same read, and
//! sent one by one they queue behind HAProxy's few runtime API connections and delay every other
//! server's drain by seconds. Only reads whose result may be a round trip old go through here.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

pub struct SingleFlight<V> {
    waiting: Mutex<HashMap<String, Vec<oneshot::Sender<V>>>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> std::fmt::Debug for SingleFlight<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight").finish_non_exhaustive()
    }
}

/// Removes the key when the leader finishes or is cancelled: its waiters then read on their own.
struct Leader<'a, V> {
    flight: &'a SingleFlight<V>,
    key: &'a str,
}

impl<V> Drop for Leader<'_, V> {
    fn drop(&mut self) {
        self.flight.lock().remove(self.key);
    }
}

impl<V> SingleFlight<V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<oneshot::Sender<V>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<V: Clone> SingleFlight<V> {
    /// `read()`'s result, or the result of the read of `key` already in flight.
    pub async fn run<F, Fut>(&self, key: &str, read: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let joined = {
            let mut waiting = self.lock();
            match waiting.get_mut(key) {
                Some(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    waiting.insert(key.to_string(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = joined {
            match rx.await {
                Ok(value) => return value,
                // The leader was cancelled: read ourselves.
                Err(_) => return read().await,
            }
        }
        let leader = Leader { flight: self, key };
        let value = read().await;
        let waiters = self.lock().remove(key).unwrap_or_default();
        drop(leader);
        for waiter in waiters {
            let _ = waiter.send(value.clone());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_read_and_later_ones_read_again() {
        let flight = Arc::new(SingleFlight::<usize>::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let read = |reads: Arc<AtomicUsize>| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            reads.fetch_add(1, Ordering::SeqCst) + 1
        };
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let (flight, reads) = (flight.clone(), reads.clone());
                tokio::spawn(async move { flight.run("be", || read(reads)).await })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 1, "every caller got the one read");
        }
        assert_eq!(flight.run("be", || read(reads.clone())).await, 2);
        assert_eq!(flight.run("other", || read(reads.clone())).await, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_leader_lets_its_waiters_read() {
        let flight = Arc::new(SingleFlight::<u8>::default());
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
