//! A load generator at fixed concurrency that keeps one sample per request (when it started,
//! how long it took, whether it succeeded), so latency percentiles can be taken over any window.
//! Bounded: each worker stops on `stop()` or after `max`, whichever comes first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// One request: offsets from the load's start.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub started: Duration,
    pub latency: Duration,
    pub ok: bool,
}

pub struct LatencyLoad {
    pub origin: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<(Vec<Sample>, Vec<String>)>>,
}

/// What the load saw, every request of every worker.
#[derive(Debug, Default)]
pub struct Recorded {
    pub samples: Vec<Sample>,
    /// The first few failures, verbatim.
    pub errors: Vec<String>,
}

impl Recorded {
    /// Requests that started within `[from, to)` (offsets from the load's start).
    pub fn window(&self, from: Duration, to: Duration) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.started >= from && s.started < to)
    }
}

impl LatencyLoad {
    /// `workers` loops of `GET path` (a new connection each, 15 s timeout per request).
    pub fn start(frontend: SocketAddr, workers: usize, path: &str, max: Duration) -> Self {
        let origin = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|_| {
                let (stop, path) = (stop.clone(), path.to_string());
                tokio::spawn(async move {
                    let (mut samples, mut errors) = (Vec::new(), Vec::new());
                    while !stop.load(Ordering::Relaxed) && origin.elapsed() < max {
                        let started = Instant::now();
                        let result = crate::support::roll::get(frontend, &path).await;
                        samples.push(Sample {
                            started: started - origin,
                            latency: started.elapsed(),
                            ok: result.is_ok(),
                        });
                        if let Err(error) = result {
                            if errors.len() < 5 {
                                errors.push(error);
                            }
                        }
                    }
                    (samples, errors)
                })
            })
            .collect();
        Self {
            origin,
            stop,
            tasks,
        }
    }

    /// Now, as an offset from the load's start.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub async fn stop(self) -> Recorded {
        self.stop.store(true, Ordering::Relaxed);
        let mut recorded = Recorded::default();
        for task in self.tasks {
            let (samples, errors) = task.await.expect("load worker did not panic");
            recorded.samples.extend(samples);
            recorded.errors.extend(errors);
        }
        recorded.errors.truncate(10);
        recorded
    }
}

/// Nearest-rank percentile `p` (0..=1) of `values`; zero for none.
pub fn percentile(values: &mut [Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort();
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// p99 latency of the successful requests among `samples`.
pub fn p99<'a>(samples: impl Iterator<Item = &'a Sample>) -> Duration {
    let mut latencies: Vec<Duration> = samples.filter(|s| s.ok).map(|s| s.latency).collect();
    percentile(&mut latencies, 0.99)
}
