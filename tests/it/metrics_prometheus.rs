//! A real Prometheus (the Debian package) scrapes haproxy-drain's metrics endpoint; the test reads
//! values back through Prometheus' HTTP API, evaluates every dashboard query and loads the alert
//! rules.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use haproxy_drain::metrics::{DrainResult, Metrics, MetricsServer};
use haproxy_drain::shutdown;
use serde_json::Value;

use crate::support::metrics::*;

/// A Prometheus process with its own config and TSDB in a temp dir; killed on drop.
pub struct PrometheusProcess {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_local_port() -> u16 {
    // Prometheus takes a port number, not a socket, so this races with other binders; a clash
    // shows as Prometheus exiting, which `start` reports.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

impl PrometheusProcess {
    /// Starts Prometheus scraping `target` every second (job `haproxy-drain`) with the alert rules
    /// loaded, and waits until it is ready.
    pub async fn start(target: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = repo_file("prometheus/haproxy-drain-alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: haproxy-drain\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("config written");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_local_port())
            .parse()
            .expect("address");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (apt install prometheus)");
        let mut process = Self { child, addr, dir };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(reply) = http_get(self.addr, "/-/ready").await {
                if reply.status == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 30 s: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        let path = self.dir.path().join("prometheus.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// `/api/v1/query` at the current time; the `data.result` array. Panics on a PromQL error.
    pub async fn query(&self, expr: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let reply = http_get(self.addr, &path)
            .await
            .expect("query reaches prometheus");
        let body: Value = serde_json::from_str(&reply.body).expect("prometheus answers JSON");
        assert_eq!(
            body["status"], "success",
            "query {expr} failed: {}",
            reply.body
        );
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The single value of an instant-vector query, if it returned exactly one series.
    pub async fn value(&self, expr: &str) -> Option<f64> {
        match self.query(expr).await.as_slice() {
            [series] => series["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Polls `expr` until `accept` holds for its single value; panics after `timeout`.
    pub async fn wait_for_value(
        &self,
        expr: &str,
        timeout: Duration,
        accept: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.value(expr).await;
            if let Some(value) = value.filter(|v| accept(*v)) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{expr} = {value:?} after {timeout:?}; prometheus log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until Prometheus has scraped `target` at least once more from now on.
    pub async fn wait_for_next_scrape(&self) {
        let before = self
            .value(r#"sum(count_over_time(up{job="haproxy-drain"}[10m]))"#)
            .await
            .unwrap_or(0.0);
        self.wait_for_value(
            r#"sum(count_over_time(up{job="haproxy-drain"}[10m]))"#,
            Duration::from_secs(15),
            |count| count > before,
        )
        .await;
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A dashboard query as Grafana would send it with every variable at "All".
fn as_grafana_sends_it(query: &str) -> String {
    let query = query
        .replace("$__rate_interval", "1m")
        .replace("$instance", ".*")
        .replace("$proxy", ".*")
        .replace("$server", ".*");
    // `label_values(selector, label)` is Grafana's, not PromQL: evaluate the selector.
    match query
        .strip_prefix("label_values(")
        .and_then(|rest| rest.rsplit_once(','))
    {
        Some((selector, _label)) => selector.to_string(),
        None => query,
    }
}

async fn start_endpoint(metrics: Arc<Metrics>) -> (SocketAddr, shutdown::ShutdownTrigger) {
    let server = MetricsServer::bind("127.0.0.1:0".parse().expect("literal address"))
        .await
        .expect("port 0 binds");
    let addr = server.local_addr();
    let (trigger, listener) = shutdown::channel();
    tokio::spawn(server.run(metrics, listener));
    (addr, trigger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_and_every_dashboard_query_returns_data() {
    let metrics = Arc::new(Metrics::new());
    exercise_every_method(&metrics);
    let (addr, _stop) = start_endpoint(metrics.clone()).await;
    let prometheus = PrometheusProcess::start(addr).await;
    prometheus
        .wait_for_value(
            r#"up{job="haproxy-drain"}"#,
            Duration::from_secs(20),
            |up| up == 1.0,
        )
        .await;

    // Rates need two samples that differ: record everything again after the first scrape.
    prometheus.wait_for_next_scrape().await;
    exercise_every_method(&metrics);
    prometheus
        .wait_for_value(
            "sum(haproxy_drain_drain_duration_seconds_count)",
            Duration::from_secs(15),
            |count| count >= 2.0,
        )
        .await;

    for query in dashboard_queries(&dashboard()) {
        let sent = as_grafana_sends_it(&query);
        let result = prometheus.query(&sent).await;
        assert!(
            !result.is_empty(),
            "dashboard query returned no data: {sent}"
        );
    }

    // The alert rules load and evaluate without errors against real data.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = http_get(prometheus.addr, "/api/v1/rules")
            .await
            .expect("rules API");
        let body: Value = serde_json::from_str(&reply.body).expect("JSON");
        let rules: Vec<&Value> = body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().into_iter().flatten())
            .collect();
        assert!(rules.len() >= 4, "rules not loaded: {}", reply.body);
        if rules.iter().all(|rule| rule["health"] == "ok") {
            break;
        }
        let errors: Vec<_> = rules.iter().filter(|r| r["health"] == "err").collect();
        assert!(errors.is_empty(), "rules failed to evaluate: {errors:?}");
        assert!(
            Instant::now() < deadline,
            "rules never evaluated: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_histograms_read_back_through_prometheus() {
    let metrics = Arc::new(Metrics::new());
    metrics.set_server_state("be_pq", "s1", "ready", "ready");
    let (addr, _stop) = start_endpoint(metrics.clone()).await;
    let prometheus = PrometheusProcess::start(addr).await;
    let timed_out = r#"haproxy_drain_drains_finished_total{proxy="be_pq",server="s1",trigger="api",result="timed_out"}"#;
    prometheus
        .wait_for_value(timed_out, Duration::from_secs(20), |v| v == 0.0)
        .await;

    for _ in 0..3 {
        metrics.drain_started("api", "be_pq", "s1");
        let took = Duration::from_millis(1200);
        metrics.drain_finished("api", DrainResult::TimedOut, "be_pq", "s1", took, 2);
    }
    let started = r#"haproxy_drain_drains_started_total{proxy="be_pq",server="s1",trigger="api"}"#;
    prometheus
        .wait_for_value(started, Duration::from_secs(15), |v| v == 3.0)
        .await;
    assert_eq!(prometheus.value(timed_out).await, Some(3.0));
    let le = |bound: &str| {
        format!(
            r#"haproxy_drain_drain_duration_seconds_bucket{{proxy="be_pq",server="s1",result="timed_out",le="{bound}"}}"#
        )
    };
    assert_eq!(prometheus.value(&le("1")).await, Some(0.0));
    assert_eq!(prometheus.value(&le("2.5")).await, Some(3.0));
    let sum =
        r#"haproxy_drain_drain_duration_seconds_sum{proxy="be_pq",server="s1",result="timed_out"}"#;
    let observed = prometheus.value(sum).await.expect("sum series");
    assert!((observed - 3.6).abs() < 1e-9, "sum {observed}");
    // The first timeout counts for increase(): the series existed at 0 before it.
    let increase = format!("increase({timed_out}[1m])");
    let increased = prometheus.value(&increase).await.expect("increase");
    assert!(increased >= 3.0, "increase {increased}");
}
