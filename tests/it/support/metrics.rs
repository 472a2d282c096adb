//! Helpers shared by the metrics tests: HTTP GET, exposition parsing, the dashboard's queries.
#![allow(dead_code)] // the tests and the benches use different parts

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use haproxy_drain::metrics::{DrainResult, Metrics, RestoreResult};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

pub fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// One HTTP/1.1 GET over a fresh connection.
pub async fn http_get(addr: SocketAddr, path_and_query: &str) -> Result<HttpReply, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path_and_query)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request {path_and_query}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {path_and_query}: {e}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body of {path_and_query}: {e}"))?
        .to_bytes();
    Ok(HttpReply {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Calls every recording method once, so every family has at least one sample.
pub fn exercise_every_method(metrics: &Metrics) {
    metrics.set_server_state("be_app", "app1", "drain", "ready");
    metrics.drain_started("docker_event", "be_app", "app1");
    metrics.drain_finished(
        "docker_event",
        DrainResult::Drained,
        "be_app",
        "app1",
        Duration::from_millis(350),
        0,
    );
    metrics.restore_finished(
        RestoreResult::Restored,
        "be_app",
        "app1",
        Some(Duration::from_secs(3)),
        Some(Duration::from_secs(11)),
    );
    metrics.reaction_latency("drain", "be_app", "app1", Duration::from_micros(900));
    metrics.set_out_of_rotation("be_app", "app1", Some("haproxy-drain"));
    metrics.docker_event("kill");
    metrics.docker_reconnect();
    metrics.set_docker_connected(true);
    metrics.haproxy_command("set_server_state", "ok", Duration::from_micros(400));
    metrics.set_haproxy_connected("/run/haproxy/admin.sock", true);
    metrics.reload_detected();
    metrics.reconcile_correction("state");
    metrics.config_error("label");
    metrics.roll_step("ok");
    metrics.roll_finished("ok");
    metrics.fleet.declare_backend("be_app");
    metrics.fleet.set_slots_held("be_app", 1);
    metrics.fleet.waited("be_app");
    metrics.fleet.refused("be_app");
    metrics.fleet.fell_back("be_app");
    metrics.fleet.set_etcd_reachable(true);
}

/// Sample names (`foo_total`, `bar_bucket`, …) present in an exposition.
pub fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Family names from `# TYPE` lines.
pub fn family_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// The family a sample name belongs to, given the families that exist.
pub fn family_of(sample: &str, families: &BTreeSet<String>) -> Option<String> {
    if families.contains(sample) {
        return Some(sample.to_string());
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| sample.strip_suffix(suffix))
        .find(|family| families.contains(*family))
        .map(str::to_string)
}

pub fn dashboard() -> serde_json::Value {
    let path = repo_file("grafana/haproxy-drain.json");
    let text = std::fs::read_to_string(&path).expect("dashboard file is readable");
    serde_json::from_str(&text).expect("dashboard is valid JSON")
}

/// Every PromQL expression in the dashboard: panel targets (rows' nested panels too) and
/// query variables.
pub fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut queries = Vec::new();
    let mut stack: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .map(|panels| panels.iter().collect())
        .unwrap_or_default();
    while let Some(panel) = stack.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            stack.extend(nested);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push(expr.to_string());
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or_else(|| variable["query"].as_str())
                .unwrap_or_default();
            queries.push(query.to_string());
        }
    }
    queries
}

/// Identifiers in `query` that PromQL reads as metric names: words followed by `{` or standing
/// alone inside a function call, minus functions, keywords and label names.
pub fn metric_names_in(query: &str) -> BTreeSet<String> {
    #[rustfmt::skip]
    const NOT_METRICS: &[&str] = &[
        // functions and keywords
        "sum", "max", "min", "avg", "count", "abs", "rate", "increase", "histogram_quantile",
        "time", "vector", "label_values", "by", "without", "on", "ignoring", "group_left",
        "group_right", "and", "or", "unless", "offset",
        // label names (inside `by (…)` / `on (…)`)
        "le", "instance", "job", "proxy", "server", "owner", "state", "kind", "action", "result",
        "trigger", "command", "haproxy", "version",
    ];
    // Drop label matchers, ranges and strings first: they may hold any word.
    let mut outside = String::new();
    let mut depth = 0;
    let mut in_string = false;
    for c in query.chars() {
        match c {
            '"' => in_string = !in_string,
            '{' | '[' if !in_string => {
                depth += 1;
                outside.push(' ');
            }
            '}' | ']' if !in_string => depth -= 1,
            _ if depth == 0 && !in_string => outside.push(c),
            _ => {}
        }
    }
    outside
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '$'))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .filter(|word| !NOT_METRICS.contains(word))
        .map(str::to_string)
        .collect()
}

/// Runs `promtool check metrics` on `text`; (success, everything it printed).
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt install prometheus)");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("promtool reads stdin");
    let output = child.wait_with_output().expect("promtool runs");
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}
