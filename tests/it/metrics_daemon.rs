//! End to end: `haproxy-drain run` drives a real HAProxy while a real container stops and starts,
//! a real Prometheus scrapes it, and the test reads the drain and restore back through
//! Prometheus' HTTP API.

use std::time::{Duration, Instant};

use crate::metrics_prometheus::PrometheusProcess;
use crate::support::daemon::Daemon;
use crate::support::docker::{ContainerSpec, TestContainer, TestNetwork, APP_PORT, IMAGE_NOHC};
use crate::support::haproxy::HaproxyFixture;
use crate::support::metrics::{http_get, promtool_check_metrics};

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking docker call did not panic")
}

fn app_container(network: &TestNetwork) -> TestContainer {
    ContainerSpec::new("metrics")
        .image(IMAGE_NOHC)
        .network(network)
        .label("haproxy-drain.backend", "be_metrics")
        .label("haproxy-drain.server", "app1")
        .label("haproxy-drain.port", &APP_PORT.to_string())
        .run()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_a_real_drain_and_restore() {
    let network = blocking(TestNetwork::create).await;
    let net_name = network.name.clone();
    let (_network, container) = blocking(move || {
        let container = app_container(&network);
        (network, container)
    })
    .await;
    let ip = container
        .ip()
        .unwrap_or_else(|| panic!("{net_name}: container has no IP"));
    let haproxy = HaproxyFixture::start(&format!(
        "backend be_metrics\n    server app1 {ip}:{APP_PORT} check inter 500ms\n"
    ))
    .await;
    let daemon = Daemon::start(&[haproxy.admin_url().to_string()], &[]).await;
    let prometheus = PrometheusProcess::start(daemon.metrics).await;

    let series = |name: &str, extra: &str| {
        format!(r#"sum({name}{{proxy="be_metrics",server="app1"{extra}}})"#)
    };
    let drained = series(
        "haproxy_drain_drains_finished_total",
        r#",result="drained""#,
    );
    let started = series(
        "haproxy_drain_drains_started_total",
        r#",trigger="docker_event""#,
    );
    let restored = series("haproxy_drain_restores_total", r#",result="restored""#);
    // Baseline: the server is known (its counters exist at 0) before anything happens.
    let mut baseline = Vec::new();
    for query in [&drained, &started, &restored] {
        let value = prometheus
            .wait_for_value(query, Duration::from_secs(20), |_| true)
            .await;
        baseline.push(value);
    }
    let in_rotation = series("haproxy_drain_server_actual_state", r#",state="ready""#);
    prometheus
        .wait_for_value(&in_rotation, Duration::from_secs(20), |v| v == 1.0)
        .await;

    let stopped = Instant::now();
    let container = blocking(move || {
        container.stop(10);
        container
    })
    .await;
    let wait = Duration::from_secs(30);
    let drain_count = prometheus
        .wait_for_value(&drained, wait, |v| v >= baseline[0] + 1.0)
        .await;
    assert_eq!(drain_count, baseline[0] + 1.0, "exactly one drain");
    let started_count = prometheus.value(&started).await;
    assert_eq!(started_count, Some(baseline[1] + 1.0), "one drain started");
    let duration_count = series(
        "haproxy_drain_drain_duration_seconds_count",
        r#",result="drained""#,
    );
    assert_eq!(prometheus.value(&duration_count).await, Some(1.0));
    let drain_seconds = prometheus
        .value(&series("haproxy_drain_drain_duration_seconds_sum", ""))
        .await
        .expect("duration sum");
    assert!(
        drain_seconds < stopped.elapsed().as_secs_f64(),
        "drain took {drain_seconds}s, longer than the test has run since the stop"
    );
    let out_by_us = series(
        "haproxy_drain_servers_out_of_rotation",
        r#",owner="haproxy-drain""#,
    );
    prometheus
        .wait_for_value(&out_by_us, wait, |v| v == 1.0)
        .await;

    let _container = blocking(move || {
        container.start();
        container
    })
    .await;
    prometheus
        .wait_for_value(&restored, wait, |v| v >= baseline[2] + 1.0)
        .await;
    for histogram in [
        "haproxy_drain_restore_start_to_rotation_seconds_count",
        "haproxy_drain_out_of_rotation_duration_seconds_count",
    ] {
        let count = prometheus.value(&series(histogram, "")).await;
        assert_eq!(count, Some(1.0), "{histogram}");
    }
    let reactions = prometheus
        .value(&series("haproxy_drain_reaction_latency_seconds_count", ""))
        .await
        .unwrap_or(0.0);
    assert!(reactions >= 1.0, "no reaction latency observed");
    let stops = prometheus
        .value(r#"sum(haproxy_drain_docker_events_total{action=~"stop|kill|die"})"#)
        .await
        .unwrap_or(0.0);
    assert!(stops >= 1.0, "the stop events were not counted");
    let commands_ok = prometheus
        .value(r#"sum(haproxy_drain_haproxy_commands_total{result="ok"})"#)
        .await
        .unwrap_or(0.0);
    assert!(commands_ok >= 2.0, "HAProxy commands not counted");
    // The daemon's own exposition, with real label values, is valid for promtool too.
    let scrape = http_get(daemon.metrics, "/metrics").await.expect("scrape");
    let (ok, printed) = promtool_check_metrics(&scrape.body);
    assert!(ok && printed.is_empty(), "promtool: {printed}");
    let reaction_p99 = prometheus
        .value(r#"histogram_quantile(0.99, sum by (le) (haproxy_drain_reaction_latency_seconds_bucket))"#)
        .await;
    let reaction_mean = prometheus
        .value(&format!(
            "{} / {}",
            series("haproxy_drain_reaction_latency_seconds_sum", ""),
            series("haproxy_drain_reaction_latency_seconds_count", "")
        ))
        .await;
    eprintln!(
        "measured: drain {drain_seconds:.3}s, reaction mean {reaction_mean:?}s over {reactions} \
         observation(s), p99 estimate {reaction_p99:?}s"
    );
    let still_out = r#"sum(haproxy_drain_servers_out_of_rotation{proxy="be_metrics",server="app1"}) or vector(0)"#;
    prometheus
        .wait_for_value(still_out, wait, |v| v == 0.0)
        .await;
}

/// Every metric name the dashboard and the alert rules query.
fn names_the_assets_query() -> std::collections::BTreeSet<String> {
    use crate::support::metrics::{dashboard, dashboard_queries, metric_names_in, repo_file};
    let mut names = std::collections::BTreeSet::new();
    for query in dashboard_queries(&dashboard()) {
        names.extend(metric_names_in(&query));
    }
    let rules = std::fs::read_to_string(repo_file("prometheus/haproxy-drain-alerts.yml"))
        .expect("alert rules readable");
    // `expr: |` blocks: the indented lines after the key, up to the next key.
    let mut in_expr = false;
    for line in rules.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("expr:") {
            in_expr = rest.trim() == "|";
            names.extend(metric_names_in(rest));
        } else if in_expr && !trimmed.contains(": ") && !trimmed.starts_with('#') {
            names.extend(metric_names_in(trimmed));
        } else {
            in_expr = false;
        }
    }
    names.retain(|n| n.starts_with("haproxy_drain_"));
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_daemon_exports_every_series_the_dashboard_and_alerts_use() {
    // Its own backend: every daemon sees every labelled container on the engine.
    let backend = crate::support::docker::unique_name("be").replace('-', "_");
    let network = blocking(TestNetwork::create).await;
    let labels_backend = backend.clone();
    let (_network, container) = blocking(move || {
        let container = ContainerSpec::new("fresh")
            .image(IMAGE_NOHC)
            .network(&network)
            .label("haproxy-drain.backend", &labels_backend)
            .label("haproxy-drain.server", "app1")
            .label("haproxy-drain.port", &APP_PORT.to_string())
            .run();
        (network, container)
    })
    .await;
    let ip = container.ip().expect("container has an IP");
    let haproxy = HaproxyFixture::start(&format!(
        "backend {backend}\n    server app1 {ip}:{APP_PORT} check inter 500ms\n"
    ))
    .await;
    let daemon = Daemon::start(&[haproxy.admin_url().to_string()], &[]).await;
    let wanted = names_the_assets_query();
    assert!(wanted.len() >= 20, "too few names found: {wanted:?}");
    // A timestamp of 0 would read as "out of rotation since 1970": it exists only while a
    // server is out. Everything else must have a sample before anything happened.
    let only_while_out = "haproxy_drain_out_of_rotation_since_timestamp_seconds";
    let per_server = format!(
        r#"haproxy_drain_drains_finished_total{{trigger="docker_event",result="timed_out",proxy="{backend}",server="app1"}} 0"#
    );
    crate::support::wait::wait_until(Duration::from_secs(15), "the server's series", || async {
        daemon.metrics_text().await.contains(&per_server)
    })
    .await;
    let text = daemon.metrics_text().await;
    let samples = crate::support::metrics::sample_names(&text);
    // The fleet budget's per-backend series exist only with a `[fleet]` table (its backends
    // come from there); `fleet_budget.rs` reads them from daemons that have one.
    let only_with_fleet = |n: &str| {
        n.starts_with("haproxy_drain_fleet_") && n != "haproxy_drain_fleet_etcd_reachable"
    };
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|n| n.as_str() != only_while_out && !only_with_fleet(n) && !samples.contains(*n))
        .collect();
    assert!(missing.is_empty(), "no samples for {missing:?} in:\n{text}");
}
