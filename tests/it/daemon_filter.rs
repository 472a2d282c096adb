//! `run --filter label=KEY=VALUE`: a sidecar handles only its own containers on a shared
//! engine, and leaves the servers of the others alone (events, reconciliation, control).

use std::time::Duration;

use haproxy_drain::haproxy::{AdminState, ServerId};

use crate::support::daemon::Daemon;
use crate::support::docker::{
    ensure_test_images, unique_name, ContainerSpec, TestNetwork, APP_PORT, IMAGE_NOHC,
};
use crate::support::haproxy::{free_loopback_port, HaproxyConfig, HaproxyFixture};
use crate::support::wait::{server_state, wait_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_sidecar_leaves_the_other_sidecars_containers_alone() {
    ensure_test_images();
    let network = TestNetwork::create();
    let backend = unique_name("be").replace('-', "_");
    let (ours, theirs) = (unique_name("ours"), unique_name("theirs"));
    let app = |i: usize, tag: &str| {
        ContainerSpec::new(&format!("filter-app{i}"))
            .image(IMAGE_NOHC)
            .network(&network)
            .env("ON_SIGTERM", "graceful")
            .label("hdt.filter", tag)
            .label("haproxy-drain.backend", &backend)
            .label("haproxy-drain.server", &format!("app{i}"))
            .label("haproxy-drain.port", &APP_PORT.to_string())
            .run()
    };
    let apps = [app(1, &ours), app(2, &theirs), app(3, &ours)];
    let mut sections =
        format!("backend {backend}\n    balance roundrobin\n    default-server inter 300ms\n");
    for (i, container) in apps.iter().enumerate() {
        let ip = container.ip().expect("address");
        sections.push_str(&format!(
            "    server app{} {ip}:{APP_PORT} check weight 17\n",
            i + 1
        ));
    }
    sections.push_str(&format!(
        "frontend fe_{backend}\n    bind 127.0.0.1:{}\n    default_backend {backend}\n",
        free_loopback_port()
    ));
    let haproxy = HaproxyFixture::start_with(HaproxyConfig::new(sections)).await;
    let daemon = Daemon::start(
        &[haproxy.admin_url().to_string()],
        &[format!("--filter=label=hdt.filter={ours}")],
    )
    .await;
    let client = haproxy.admin_client();
    let server = |i: usize| ServerId::new(backend.clone(), format!("app{i}"));

    // Their container stops first, ours after: once ours is handled, theirs was not.
    apps[1].stop(5);
    apps[0].stop(5);
    wait_server(
        &client,
        &server(1),
        Duration::from_secs(20),
        "our stopped container's server in MAINT",
        |s| s.admin.as_admin_state() == AdminState::Maint,
    )
    .await;
    let theirs_state = server_state(&client, &server(2)).await.expect("app2 row");
    assert_eq!(
        theirs_state.admin.as_admin_state(),
        AdminState::Ready,
        "the other sidecar's server is not ours to drain"
    );

    // The control API does not know their container either.
    let container = apps[1].name().to_string();
    let refused = tokio::task::spawn_blocking({
        let socket = daemon.control_socket();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
                .args(["drain", &container])
                .env("HAPROXY_DRAIN_CONTROL_SOCKET", socket)
                .output()
                .expect("CLI runs")
        }
    })
    .await
    .expect("CLI task");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not mapped"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A reconciliation pass (after a restart of the daemon) still leaves their server alone,
    // and our running app3 stays in rotation.
    let mut daemon = daemon;
    daemon.restart().await;
    let theirs_state = server_state(&client, &server(2)).await.expect("app2 row");
    assert_eq!(theirs_state.admin.as_admin_state(), AdminState::Ready);
    let ours_state = server_state(&client, &server(3)).await.expect("app3 row");
    assert_eq!(ours_state.admin.as_admin_state(), AdminState::Ready);
    let held = server_state(&client, &server(1)).await.expect("app1 row");
    assert_eq!(held.admin.as_admin_state(), AdminState::Maint);
}
