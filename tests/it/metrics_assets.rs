//! The metrics endpoint over real HTTP, and the assets built on it: the Grafana dashboard only
//! queries metrics a real scrape contains, and the alert rules pass `promtool`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use haproxy_drain::metrics::{Metrics, MetricsServer};
use haproxy_drain::shutdown;

use crate::support::metrics::*;

/// A metrics server on 127.0.0.1:0 in this process; stops when dropped.
struct RunningEndpoint {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    _trigger: shutdown::ShutdownTrigger,
}

async fn start_endpoint() -> RunningEndpoint {
    let metrics = Arc::new(Metrics::new());
    let server = MetricsServer::bind("127.0.0.1:0".parse().expect("literal address"))
        .await
        .expect("port 0 binds");
    let addr = server.local_addr();
    let (trigger, listener) = shutdown::channel();
    tokio::spawn(server.run(metrics.clone(), listener));
    RunningEndpoint {
        addr,
        metrics,
        _trigger: trigger,
    }
}

async fn scrape(addr: SocketAddr) -> HttpReply {
    let reply = http_get(addr, "/metrics").await.expect("scrape works");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
}

#[tokio::test]
async fn scrape_is_classic_text_format_that_promtool_accepts() {
    let endpoint = start_endpoint().await;
    exercise_every_method(&endpoint.metrics);
    let reply = scrape(endpoint.addr).await;
    assert!(
        reply.content_type.starts_with("text/plain; version=0.0.4"),
        "content type {}",
        reply.content_type
    );
    assert!(
        !reply.body.contains("# EOF"),
        "OpenMetrics, not classic text"
    );
    let (ok, printed) = promtool_check_metrics(&reply.body);
    assert!(ok, "promtool failed: {printed}");
    assert_eq!(
        printed, "",
        "promtool must print nothing for:\n{}",
        reply.body
    );
    for family in family_names(&reply.body) {
        assert!(
            family.starts_with("haproxy_drain_"),
            "{family} lacks the prefix"
        );
        let help = format!("# HELP {family} ");
        assert!(reply.body.contains(&help), "{family} has no HELP text");
    }
    let series_lines = reply.body.lines().filter(|line| !line.starts_with('#'));
    for line in series_lines {
        for unbounded in ["container=", "container_id=", "id=", "name="] {
            assert!(
                !line.contains(unbounded),
                "unbounded label {unbounded} in {line}"
            );
        }
    }
}

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_connectivity() {
    let endpoint = start_endpoint().await;
    let health = http_get(endpoint.addr, "/healthz").await.expect("healthz");
    assert_eq!((health.status, health.body.trim()), (200, "ok"));

    let not_ready = http_get(endpoint.addr, "/readyz").await.expect("readyz");
    assert_eq!(not_ready.status, 503);
    assert!(not_ready.body.contains("docker"), "{}", not_ready.body);

    endpoint.metrics.set_docker_connected(true);
    endpoint
        .metrics
        .set_haproxy_connected("/run/haproxy/a.sock", false);
    let waiting = http_get(endpoint.addr, "/readyz").await.expect("readyz");
    assert_eq!(waiting.status, 503);
    assert!(
        waiting.body.contains("/run/haproxy/a.sock"),
        "{}",
        waiting.body
    );
    assert!(!waiting.body.contains("docker"), "{}", waiting.body);

    endpoint
        .metrics
        .set_haproxy_connected("/run/haproxy/a.sock", true);
    let unreconciled = http_get(endpoint.addr, "/readyz").await.expect("readyz");
    assert_eq!(unreconciled.status, 503);
    assert!(
        unreconciled.body.contains("reconciliation"),
        "{}",
        unreconciled.body
    );
    endpoint.metrics.reconciled();
    let ready = http_get(endpoint.addr, "/readyz").await.expect("readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
}

#[tokio::test]
async fn server_stops_on_shutdown() {
    let metrics = Arc::new(Metrics::new());
    let server = MetricsServer::bind("127.0.0.1:0".parse().expect("literal address"))
        .await
        .expect("port 0 binds");
    let addr = server.local_addr();
    let (trigger, listener) = shutdown::channel();
    let running = tokio::spawn(server.run(metrics, listener));
    assert_eq!(http_get(addr, "/healthz").await.expect("up").status, 200);
    trigger.fire();
    let finished = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("server stops within 5 s of shutdown")
        .expect("server task did not panic");
    assert!(finished.is_ok(), "{finished:?}");
    assert!(http_get(addr, "/healthz").await.is_err(), "still answering");
}

#[tokio::test]
async fn busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let error = MetricsServer::bind(addr).await.expect_err("port is taken");
    let message = error.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("--metrics-listen"), "{message}");
}

#[tokio::test]
async fn dashboard_queries_only_metrics_a_real_scrape_exports() {
    let endpoint = start_endpoint().await;
    exercise_every_method(&endpoint.metrics);
    let exposition = scrape(endpoint.addr).await.body;
    let samples = sample_names(&exposition);
    let families = family_names(&exposition);

    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= 20, "only {} queries found", queries.len());
    let mut used_families = BTreeSet::new();
    for query in &queries {
        let names = metric_names_in(query);
        assert!(!names.is_empty(), "no metric found in {query}");
        for name in names {
            assert!(
                samples.contains(&name),
                "dashboard query uses {name}, which the scrape does not contain: {query}"
            );
            used_families.extend(family_of(&name, &families));
        }
    }
    let unused: Vec<_> = families.difference(&used_families).collect();
    assert!(
        unused.is_empty(),
        "exported but never shown on the dashboard: {unused:?}"
    );
}

#[test]
fn dashboard_provisions_from_a_file() {
    let dashboard = dashboard();
    let text = dashboard.to_string();
    assert!(dashboard.get("__inputs").is_none(), "import-only __inputs");
    assert!(!text.contains("${DS_"), "import-only ${{DS_…}} reference");

    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("variable {name} missing"))
    };
    let datasource = variable("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    for name in ["instance", "proxy", "server"] {
        let query = variable(name)["query"]["query"]
            .as_str()
            .unwrap_or_default();
        assert!(query.starts_with("label_values("), "{name}: {query}");
        assert!(query.ends_with(&format!(", {name})")), "{name}: {query}");
    }

    let mut ids = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("numeric id")),
            "duplicate id"
        );
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap_or_default();
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {title}");
        assert_eq!(panel["datasource"]["type"], "prometheus", "panel {title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        for target in targets {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "panel {title}"
            );
        }
    }
    let titles: Vec<_> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "out of rotation",
        "Drains finished",
        "Drain duration",
        "Reaction latency",
        "Rolling",
        "Reconcile",
        "Connected",
        "mismatch",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel about {wanted}: {titles:?}"
        );
    }
}

fn promtool_in_prometheus_dir(args: &[&str]) -> (bool, String) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(repo_file("prometheus"))
        .output()
        .expect("promtool is installed (apt install prometheus)");
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

/// (alert names defined in the rules, alert name → (has a firing case, has a silent case)).
fn alert_coverage() -> (Vec<String>, Vec<(String, bool, bool)>) {
    let rules = std::fs::read_to_string(repo_file("prometheus/haproxy-drain-alerts.yml"))
        .expect("rules readable");
    let tests = std::fs::read_to_string(repo_file("prometheus/haproxy-drain-alerts.test.yml"))
        .expect("rule tests readable");
    let alerts: Vec<String> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_string())
        .collect();
    // In the tests, each `alertname:` line is followed by `exp_alerts: []` (silent) or
    // `exp_alerts:` with a list (firing).
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let coverage = alerts
        .iter()
        .map(|alert| {
            let header = format!("alertname: {alert}");
            let cases = lines
                .windows(2)
                .filter(|pair| pair[0] == header)
                .map(|pair| pair[1]);
            let (mut firing, mut silent) = (false, false);
            for case in cases {
                match case {
                    "exp_alerts: []" => silent = true,
                    "exp_alerts:" => firing = true,
                    other => panic!("unexpected line after {header}: {other}"),
                }
            }
            (alert.clone(), firing, silent)
        })
        .collect();
    (alerts, coverage)
}

#[test]
fn alert_rules_pass_promtool_check() {
    let (ok, printed) = promtool_in_prometheus_dir(&["check", "rules", "haproxy-drain-alerts.yml"]);
    assert!(ok, "{printed}");
    let (alerts, _) = alert_coverage();
    assert!(alerts.len() >= 4, "{alerts:?}");
    let expected = format!("SUCCESS: {} rules found", alerts.len());
    assert!(printed.contains(&expected), "{printed}");
}

#[test]
fn alert_rule_unit_tests_pass_and_cover_every_alert() {
    let (ok, printed) =
        promtool_in_prometheus_dir(&["test", "rules", "haproxy-drain-alerts.test.yml"]);
    assert!(ok, "{printed}");
    assert!(printed.contains("SUCCESS"), "{printed}");
    let (_, coverage) = alert_coverage();
    for (alert, firing, silent) in coverage {
        assert!(firing, "{alert} has no unit test where it fires");
        assert!(silent, "{alert} has no unit test where it stays silent");
    }
}
