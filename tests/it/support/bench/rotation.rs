//! Polls HAProxy's `show stat` every 20 ms and adds up, per server of one backend, how long it
//! was out of rotation (not `UP`, or a weight below the configured one): the time a rollout took
//! each container away from the clients, as HAProxy itself saw it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use haproxy_drain::haproxy::Client;
use tokio::task::JoinHandle;

const PERIOD: Duration = Duration::from_millis(20);

pub struct RotationSampler {
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<HashMap<String, Duration>>>,
    task: JoinHandle<()>,
}

impl RotationSampler {
    /// Samples `backend`'s servers; a server is in rotation when its status starts with `UP`
    /// and its weight is `weight`.
    pub fn start(client: Client, backend: &str, weight: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let out: Arc<Mutex<HashMap<String, Duration>>> = Arc::default();
        let (flag, sink, backend) = (stop.clone(), out.clone(), backend.to_string());
        let task = tokio::spawn(async move {
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(rows) = client.show_stat().await {
                    let now = Instant::now();
                    let step = now - last;
                    last = now;
                    let mut out = sink.lock().expect("rotation log");
                    for row in rows.iter().filter(|r| r.proxy == backend) {
                        if row.name == "BACKEND" || row.name == "FRONTEND" {
                            continue;
                        }
                        let entry = out.entry(row.name.clone()).or_default();
                        let in_rotation =
                            row.status_text.starts_with("UP") && row.weight == Some(weight);
                        if !in_rotation {
                            *entry += step;
                        }
                    }
                }
                tokio::time::sleep(PERIOD).await;
            }
        });
        Self { stop, out, task }
    }

    /// Stops sampling; time out of rotation per server (every server seen, 0 for those never
    /// out).
    pub async fn stop(self) -> HashMap<String, Duration> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let out = self.out.lock().expect("rotation log");
        out.clone()
    }
}

/// The mean of the values (zero for none).
pub fn mean(values: &HashMap<String, Duration>) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.values().sum::<Duration>() / values.len() as u32
}
