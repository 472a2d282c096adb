//! Polls HAProxy's `show stat` and keeps the fewest servers of one backend that were in rotation
//! at once (`UP` with a weight above 0): what `roll --surge` promises never drops below the
//! count before the roll. Also names every server it saw, so a temporary server shows up.

#![allow(dead_code)] // the tests use it; the bench binaries include the fixtures by path

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use haproxy_drain::haproxy::Client;
use tokio::task::JoinHandle;

const PERIOD: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Default)]
pub struct Capacity {
    /// The fewest servers in rotation at one sample (`None`: no sample answered).
    pub min_in_rotation: Option<usize>,
    pub max_in_rotation: usize,
    pub samples: usize,
    /// Every server name seen in the backend.
    pub servers_seen: BTreeSet<String>,
    /// The first sample at the minimum: each server's `status weight`, to tell what was out.
    pub at_min: Vec<String>,
}

pub struct CapacitySampler {
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Capacity>>,
    task: JoinHandle<()>,
}

impl CapacitySampler {
    pub fn start(client: Client, backend: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let out: Arc<Mutex<Capacity>> = Arc::default();
        let (flag, sink, backend) = (stop.clone(), out.clone(), backend.to_string());
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                if let Ok(rows) = client.show_stat().await {
                    let servers: Vec<_> = rows
                        .iter()
                        .filter(|r| r.proxy == backend)
                        .filter(|r| r.name != "BACKEND" && r.name != "FRONTEND")
                        .collect();
                    let in_rotation = servers
                        .iter()
                        .filter(|r| r.status_text.starts_with("UP") && r.weight.unwrap_or(0) > 0)
                        .count();
                    let mut out = sink.lock().expect("capacity log");
                    out.samples += 1;
                    if out.min_in_rotation.is_none_or(|m| in_rotation < m) {
                        out.at_min = servers
                            .iter()
                            .map(|r| format!("{} {} {:?}", r.name, r.status_text, r.weight))
                            .collect();
                    }
                    out.min_in_rotation = Some(
                        out.min_in_rotation
                            .map_or(in_rotation, |m| m.min(in_rotation)),
                    );
                    out.max_in_rotation = out.max_in_rotation.max(in_rotation);
                    out.servers_seen
                        .extend(servers.iter().map(|r| r.name.clone()));
                }
                tokio::time::sleep(PERIOD).await;
            }
        });
        Self { stop, out, task }
    }

    pub async fn stop(self) -> Capacity {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let out = self.out.lock().expect("capacity log");
        out.clone()
    }
}
