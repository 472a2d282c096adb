//! `haproxy-drain check` against a real HAProxy (admin and operator sockets) and real Docker.

use std::process::Output;

use crate::support::docker::{unique_name, ContainerSpec, TestNetwork, APP_PORT, IMAGE_NOHC};
use crate::support::haproxy::HaproxyFixture;
use crate::support::roll::blocking;

/// `haproxy-drain check ARGS…`, blind to the settings this machine's environment may carry.
pub(crate) async fn check(args: &[String]) -> Output {
    let args = args.to_vec();
    blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
            .arg("check")
            .args(&args)
            .env_remove("HAPROXY_DRAIN_CONFIG")
            .env_remove("HAPROXY_DRAIN_HAPROXY")
            .env_remove("HAPROXY_DRAIN_AGENT_LISTEN")
            .output()
            .expect("CLI runs")
    })
    .await
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_privilege_mapping_and_config_problems_in_its_exit_code() {
    let backend = unique_name("be");
    let label_backend = backend.clone();
    let (network, mapped, orphan) = blocking(move || {
        let network = TestNetwork::create();
        let mapped = ContainerSpec::new("checked")
            .image(IMAGE_NOHC)
            .network(&network)
            .label("haproxy-drain.backend", &label_backend)
            .label("haproxy-drain.server", "app1")
            .run();
        let orphan = ContainerSpec::new("orphan")
            .image(IMAGE_NOHC)
            .network(&network)
            .label("haproxy-drain.backend", &format!("{label_backend}-missing"))
            .run();
        (network, mapped, orphan)
    })
    .await;
    let ip = mapped.ip().expect("running container has an address");
    let haproxy = HaproxyFixture::start(&format!(
        "backend {backend}\n    server app1 {ip}:{APP_PORT} weight 10\n"
    ))
    .await;
    let admin = haproxy.admin_url().to_string();
    let operator = haproxy.operator_url().to_string();
    let text = |output: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };

    // All good: admin socket, mapped container whose server exists.
    let output = check(&args(&["--haproxy", &admin, "--container", mapped.name()])).await;
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("level admin"), "{all}");
    assert!(
        all.contains(&format!("{} → {backend}/app1: present on", mapped.name())),
        "{all}"
    );

    // An operator-level socket cannot change anything: refused, with the fix named.
    let output = check(&args(&[
        "--haproxy",
        &operator,
        "--container",
        mapped.name(),
    ]))
    .await;
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("not `level admin`"), "{all}");

    // A container whose backend HAProxy does not have.
    let output = check(&args(&["--haproxy", &admin, "--container", orphan.name()])).await;
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("NO SUCH BACKEND"), "{all}");

    // A broken config file, and a container that does not exist.
    let bad_config = haproxy.dir().join("bad.toml");
    std::fs::write(&bad_config, "[defaults]\ndrain_timeout = \"soon\"\n").expect("write config");
    let missing = unique_name("missing");
    let output = check(&args(&[
        "--config",
        bad_config.to_str().expect("utf-8 path"),
        "--haproxy",
        &admin,
        "--container",
        &missing,
    ]))
    .await;
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("config   FAIL"), "{all}");
    assert!(
        all.contains(&format!("container {missing} does not exist")),
        "{all}"
    );
    assert!(all.contains("check found 2 problem(s)"), "{all}");
    drop((mapped, orphan, network));
}
