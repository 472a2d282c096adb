//! Scale: one real HAProxy with many servers in many backends — most of them pointing at
//! loopback HTTP listeners of this process, a few at real testapp containers that haproxy-drain
//! maps — and haproxy-drain reconciling it every second. Measured: the time of each full
//! reconciliation (the daemon's `reconciled` log line: from the start of `docker ps` and the
//! HAProxy reads to the last server's update), the time from start to `/readyz`, and the
//! daemon's RSS and CPU.

use std::time::{Duration, Instant};

use super::cost::CostSampler;
use super::report::median;
use crate::support::daemon::Daemon;
use crate::support::docker::IMAGE_HC;
use crate::support::docker::{unique_name, ContainerSpec, TestContainer, TestNetwork, APP_PORT};
use crate::support::haproxy::{start_http_backends, HaproxyFixture};
use crate::support::roll::blocking;
use crate::support::wait::wait_for;

/// Loopback listeners shared by the loopback servers (a server's address need not be unique).
pub const LISTENERS: usize = 50;

#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub servers: usize,
    pub backends: usize,
    /// Of the servers, how many are real containers (all in the first backend).
    pub containers: usize,
}

/// The sizes of issue #11.
pub const SIZES: [Size; 3] = [
    Size {
        servers: 50,
        backends: 10,
        containers: 5,
    },
    Size {
        servers: 500,
        backends: 50,
        containers: 5,
    },
    Size {
        servers: 2000,
        backends: 200,
        containers: 5,
    },
];

#[derive(Debug, Clone)]
pub struct SizeResult {
    pub size: Size,
    /// Every periodic reconciliation measured, in order.
    pub passes: Vec<Duration>,
    /// From spawning the daemon to `/readyz` (its first reconciliation applied).
    pub ready_after: Duration,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    /// Over the window of periodic passes (one per second).
    pub cpu_percent: f64,
}

impl SizeResult {
    pub fn median_ms(&self) -> f64 {
        let mut ms: Vec<f64> = self.passes.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        median(&ms)
    }

    pub fn max_ms(&self) -> f64 {
        self.passes
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .fold(0.0, f64::max)
    }
}

/// The `elapsed_us` of every `reconciled` line of a daemon log whose `why` is `periodic`.
pub fn periodic_passes(log: &str) -> Vec<Duration> {
    log.lines()
        .filter(|l| l.contains("reconciled") && l.contains("why=\"periodic\""))
        .filter_map(|l| {
            let rest = &l[l.find("elapsed_us=")? + "elapsed_us=".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok().map(Duration::from_micros)
        })
        .collect()
}

/// Builds one world of `size`, lets haproxy-drain reconcile it `passes` times (once a second)
/// and measures it; everything is removed on return, also on a panic.
pub async fn measure_size(size: Size, passes: usize) -> SizeResult {
    let listeners = start_http_backends(LISTENERS.min(size.servers)).await;
    let prefix = unique_name("sc");
    let first_backend = format!("{prefix}_b0");
    let (network, containers) = blocking({
        let (count, backend) = (size.containers, first_backend.clone());
        move || {
            let network = TestNetwork::create();
            let containers: Vec<TestContainer> = (1..=count)
                .map(|n| {
                    ContainerSpec::new(&format!("sc{n}"))
                        .image(IMAGE_HC)
                        .network(&network)
                        .label("haproxy-drain.backend", &backend)
                        .label("haproxy-drain.server", &format!("c{n}"))
                        .label("haproxy-drain.port", &APP_PORT.to_string())
                        .run()
                })
                .collect();
            for container in &containers {
                container.wait_healthy(Duration::from_secs(30));
            }
            (network, containers)
        }
    })
    .await;
    let per_backend = size.servers / size.backends;
    let mut sections = String::new();
    let mut next_listener = 0;
    for b in 0..size.backends {
        sections.push_str(&format!(
            "backend {prefix}_b{b}\n    balance roundrobin\n    option httpchk GET /health\n\
             \x20   default-server inter 2s fall 2 rise 1 weight 10\n"
        ));
        for s in 0..per_backend {
            match containers.get(s).filter(|_| b == 0) {
                Some(container) => {
                    let ip = container.ip().expect("a running container has an address");
                    sections.push_str(&format!("    server c{} {ip}:{APP_PORT} check\n", s + 1));
                }
                None => {
                    let addr = listeners[next_listener % listeners.len()].addr;
                    next_listener += 1;
                    sections.push_str(&format!("    server s{s} {addr} check\n"));
                }
            }
        }
    }
    let haproxy = HaproxyFixture::start(&sections).await;
    let config = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(config.path(), "reconcile_interval = \"1s\"\n").expect("write config");
    let spawned = Instant::now();
    let daemon = Daemon::start(
        &[haproxy.admin_url().to_string()],
        &[format!("--config={}", config.path().display())],
    )
    .await;
    let ready_after = spawned.elapsed();
    let pid = daemon.pid().expect("daemon runs");
    let cost = CostSampler::start(pid);
    let wanted = passes;
    let passes = wait_for(
        Duration::from_secs(30 + 3 * passes as u64),
        &format!(
            "{wanted} periodic reconciliations of {} servers",
            size.servers
        ),
        || {
            let found = periodic_passes(&daemon.log());
            async move { (found.len() >= wanted).then_some(found) }
        },
    )
    .await;
    let cost = cost.stop().await;
    let (rss_kib, peak_rss_kib) = daemon.rss_kib().unwrap_or_default();
    drop((daemon, haproxy, containers, network, listeners));
    SizeResult {
        size,
        passes,
        ready_after,
        rss_kib,
        peak_rss_kib: peak_rss_kib.max(cost.peak_rss_kib),
        cpu_percent: cost.cpu_percent,
    }
}

/// Least-squares slope and the ratio of the largest size's time per server to the smallest's:
/// close to 1 means linear growth.
pub fn linearity(results: &[SizeResult]) -> Option<f64> {
    let first = results.first()?;
    let last = results.last()?;
    let per_server = |r: &SizeResult| r.median_ms() / r.size.servers as f64;
    Some(per_server(last) / per_server(first))
}
