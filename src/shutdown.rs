//! One shutdown signal, cloned into every task.
//!
//! A `Shutdown` is a cheap clone of a `watch` receiver: every long-running task `select!`s on
//! [`Shutdown::recv`], and the owner of the [`ShutdownTrigger`] fires it once (SIGTERM/SIGINT).

use tokio::sync::watch;

/// Fires the shutdown signal; dropping it fires it too, so a panicking owner stops everything.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// Listens for the shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A connected trigger/listener pair.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// A listener that never fires, for tests and one-shot CLI commands.
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Leaking one sender keeps the channel open forever; it is a few bytes, once.
        std::mem::forget(tx);
        Self { rx }
    }

    pub fn is_fired(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when shutdown is fired (or the trigger is dropped).
    pub async fn recv(&mut self) {
        // An error means the trigger was dropped, which also means: stop.
        let _ = self.rx.wait_for(|fired| *fired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_sees_the_signal() {
        let (trigger, mut a) = channel();
        let mut b = a.clone();
        assert!(!a.is_fired());
        trigger.fire();
        a.recv().await;
        b.recv().await;
        assert!(b.is_fired());
    }

    #[tokio::test]
    async fn dropping_the_trigger_fires_it() {
        let (trigger, mut a) = channel();
        drop(trigger);
        a.recv().await;
    }
}
