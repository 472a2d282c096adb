//! `haproxy-drain status --haproxy …` as a user runs it: the built binary against a real HAProxy.

use std::process::Output;

use haproxy_drain::haproxy::{AdminState, ServerId, WeightSpec};

use crate::support::haproxy::{start_http_backends, HaproxyFixture};

async fn run_status(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"));
    command.arg("status").args(args);
    command
        .env_remove("HAPROXY_DRAIN_HAPROXY")
        .env_remove("HAPROXY_DRAIN_JSON");
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().await.expect("run haproxy-drain")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn start_with_two_servers() -> HaproxyFixture {
    let backends = start_http_backends(2).await;
    let sections = format!(
        "backend app\n\
         \x20   server a1 {} weight 20\n\
         \x20   server a2 {} weight 20\n",
        backends[0].addr, backends[1].addr
    );
    // The listeners are only addresses here (no checks), so they may go with this scope.
    HaproxyFixture::start(&sections).await
}

#[tokio::test]
async fn status_prints_an_aligned_table_of_servers() {
    let haproxy = start_with_two_servers().await;
    let client = haproxy.admin_client();
    let a2 = ServerId::new("app", "a2");
    client.set_state(&a2, AdminState::Drain).await.unwrap();
    client
        .set_weight(&a2, WeightSpec::Absolute(5))
        .await
        .unwrap();

    let url = haproxy.admin_url().to_string();
    let output = run_status(&["--haproxy", &url], &[]).await;
    assert!(output.status.success(), "{output:?}");
    let table = stdout(&output);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("BACKEND") && lines[0].contains("WEIGHT"),
        "{table}"
    );
    let state_column = lines[0].find("STATE").unwrap();
    assert!(lines[1][state_column..].starts_with("no check"), "{table}");
    assert!(lines[2][state_column..].starts_with("DRAIN"), "{table}");
    assert!(
        lines[2].contains("5/20") && lines[1].contains("20/20"),
        "{table}"
    );
}

#[tokio::test]
async fn status_json_from_the_environment_variable() {
    let haproxy = start_with_two_servers().await;
    let url = haproxy.admin_url().to_string();
    let output = run_status(&["--json"], &[("HAPROXY_DRAIN_HAPROXY", &url)]).await;
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    let servers = json.as_array().expect("an array");
    assert_eq!(servers.len(), 2);
    let first = &servers[0];
    assert_eq!(first["backend"], "app");
    assert_eq!(first["server"], "a1");
    assert_eq!(first["addr"], "127.0.0.1");
    assert!(first["port"].as_u64().unwrap() > 0);
    assert_eq!(first["state"], "no check");
    assert_eq!(
        (first["weight"].as_u64(), first["initial_weight"].as_u64()),
        (Some(20), Some(20))
    );
    assert_eq!(first["sessions"], 0);
    assert!(first["check"].is_null(), "no health checks configured");
}

#[tokio::test]
async fn status_on_a_missing_socket_names_it_and_the_likely_cause() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("unix://{}/nothing.sock", dir.path().display());
    let output = run_status(&["--haproxy", &url], &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&url), "{stderr}");
    assert!(stderr.contains("is HAProxy running"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let refused = run_status(&["--haproxy", "tcp://127.0.0.1:1"], &[]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("tcp://127.0.0.1:1"));

    let bad_url = run_status(&["--haproxy", "/run/haproxy.sock"], &[]).await;
    assert!(!bad_url.status.success());
    assert!(String::from_utf8_lossy(&bad_url.stderr).contains("unix:///path/to/admin.sock"));
}
