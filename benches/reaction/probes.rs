//! What the reaction bench measures with: a Docker event log, a TCP connect prober, a
//! Prometheus histogram reader, percentiles; all timestamps are Unix nanos (Docker's clock).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures_util::StreamExt;

/// One container event: Docker's `timeNano`, and when this bench received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub container: String,
    pub action: String,
    pub nanos: i64,
    pub arrived: i64,
}

/// Container events as Docker reports them, recorded by a background task.
pub struct EventLog {
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventLog {
    /// Subscribes from now on (with `since`, so nothing between the call and the stream is lost).
    pub async fn subscribe() -> Self {
        let docker = Docker::connect_with_local_defaults().expect("Docker client");
        let now = now_nanos();
        let since = format!("{}.{:09}", now / 1_000_000_000, now % 1_000_000_000);
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("hdt.pid={}", std::process::id())],
            ),
        ]);
        let options = EventsOptions {
            since: Some(since),
            until: None,
            filters: Some(filters),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut stream = docker.events(Some(options));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => sink.lock().expect("event log").push(Seen {
                        arrived: now_nanos(),
                        container: event.actor.and_then(|a| a.id).unwrap_or_default(),
                        action: event.action.unwrap_or_default(),
                        nanos: event.time_nano.unwrap_or_default(),
                    }),
                    Err(err) => eprintln!("Docker event stream: {err}"),
                }
            }
        });
        Self { seen, task }
    }

    /// The first `action` event of `container` at or after `after` (Unix nanos).
    pub async fn wait(&self, container: &str, action: &str, after: i64) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .seen
                .lock()
                .expect("event log")
                .iter()
                .find(|e| e.container == container && e.action == action && e.nanos >= after)
                .cloned();
            if let Some(event) = found {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no `{action}` event for {container}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to the app's address over and over (20 ms timeout each: a stopped container's
/// address black-holes SYNs) and records when connects succeed.
pub struct ConnectProber {
    successes: Arc<Mutex<Vec<i64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectProber {
    pub fn start(addr: SocketAddr) -> Self {
        let successes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&successes);
        let task = tokio::spawn(async move {
            loop {
                let attempt = tokio::net::TcpStream::connect(addr);
                if let Ok(Ok(_stream)) =
                    tokio::time::timeout(Duration::from_millis(20), attempt).await
                {
                    sink.lock().expect("probe log").push(now_nanos());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        Self { successes, task }
    }

    pub fn first_success_after(&self, after: i64) -> Option<i64> {
        let successes = self.successes.lock().expect("probe log");
        successes.iter().copied().find(|t| *t >= after)
    }
}

impl Drop for ConnectProber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Count and sum of a histogram, summed over its label sets, and how many were ≤ 5 ms.
#[derive(Default)]
pub struct Histogram {
    pub count: f64,
    pub sum: f64,
    pub within_5ms: f64,
}

impl Histogram {
    /// Reads `name` from a Prometheus text exposition.
    pub fn parse(text: &str, name: &str) -> Histogram {
        let mut histogram = Histogram::default();
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let metric = series.split('{').next().unwrap_or_default();
            if metric == format!("{name}_count") {
                histogram.count += value;
            } else if metric == format!("{name}_sum") {
                histogram.sum += value;
            } else if metric == format!("{name}_bucket") && series.contains("le=\"0.005\"") {
                histogram.within_5ms += value;
            }
        }
        histogram
    }

    pub fn minus(&self, before: &Histogram) -> Histogram {
        Histogram {
            count: self.count - before.count,
            sum: self.sum - before.sum,
            within_5ms: self.within_5ms - before.within_5ms,
        }
    }

    pub fn mean(&self) -> String {
        if self.count == 0.0 {
            return "-".to_string();
        }
        ms(Duration::from_secs_f64(self.sum / self.count))
    }

    pub fn summary(&self) -> String {
        format!("{}, {}, {}", self.count, self.mean(), self.within_5ms)
    }
}

pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Stats {
    /// Nearest-rank percentiles; panics on no samples (a bench with none measured nothing).
    pub fn of(samples: &mut [Duration]) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        samples.sort();
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).max(1) - 1];
        Stats {
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

pub fn samples_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

pub fn now_nanos() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

pub fn nanos_between(from: i64, to: i64) -> Duration {
    Duration::from_nanos(u64::try_from(to - from).unwrap_or(0))
}

pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
