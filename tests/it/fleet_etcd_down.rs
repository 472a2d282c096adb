//! The fleet budget when etcd goes away: `on_unreachable = "local"` (the default) falls back
//! to the local budget and releases what it could not once etcd is back; `"closed"` refuses.

use std::time::Duration;

use crate::fleet_budget::{text, wait_slots};
use crate::support::docker::ensure_test_images;
use crate::support::fleet::{Etcd, FleetHost, FleetSpec};
use crate::support::load::Load;
use crate::support::wait::wait_until;

/// `haproxy-drain check --config <the host's config>`: its output.
async fn check(host: &FleetHost) -> String {
    let config = host.dir().join("haproxy-drain.toml");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
            .arg("check")
            .arg("--config")
            .arg(config)
            .output()
            .expect("check runs")
    })
    .await
    .expect("check task");
    text(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_stopped_mid_rollout_falls_back_to_the_local_budget_and_leaves_nothing_held() {
    ensure_test_images();
    let mut etcd = Etcd::start().await;
    let spec = FleetSpec::new("");
    let (a, b) = tokio::join!(
        FleetHost::start("a", &spec, &etcd, 2),
        FleetHost::start("b", &spec, &etcd, 2),
    );
    let load = Load::start(a.frontend, 4, "/?delay_ms=5");
    let roll = {
        let socket = a.daemon.control_socket();
        let containers = [a.container(1), a.container(2)];
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
                .arg("roll")
                .args(&containers)
                .args(["--timeout", "60s"])
                .env("HAPROXY_DRAIN_CONTROL_SOCKET", socket)
                .output()
                .expect("CLI runs")
        })
    };
    wait_slots(&etcd, &spec, "the roll holds a slot", |k| {
        k.iter().any(|k| k.ends_with("/slots/a/app1"))
    })
    .await;
    etcd.kill();
    let check_down = check(&a).await;
    let output = roll.await.expect("roll");
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        a.metric("haproxy_drain_fleet_fallbacks_total").await >= 1.0,
        "the second drain fell back to the local budget"
    );
    assert_eq!(a.metric("haproxy_drain_fleet_etcd_reachable").await, 0.0);
    a.wait_in_rotation(1).await;
    a.wait_in_rotation(2).await;
    let report = load.stop().await;
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);

    // etcd back: whatever the sidecar could not release meanwhile is released now.
    etcd.start_again().await;
    wait_slots(
        &etcd,
        &spec,
        "every slot released after etcd's return",
        |k| k.is_empty(),
    )
    .await;
    wait_until(Duration::from_secs(15), "etcd reachable again", || async {
        a.metric("haproxy_drain_fleet_etcd_reachable").await == 1.0
    })
    .await;
    // `check` says so too.
    assert!(
        check_down.contains("fleet    FAIL") && check_down.contains("etcd at"),
        "{check_down}"
    );
    let check_up = check(&a).await;
    assert!(
        check_up.contains("fleet    ok") && check_up.contains("budget 1 of 4 server(s)"),
        "{check_up}"
    );
    // And the budget works again.
    let drained = b
        .cli(&["drain", "--wait", "--timeout", "30s", &b.container(1)])
        .await;
    assert!(drained.status.success(), "{}", text(&drained));
    wait_slots(&etcd, &spec, "b/app1 holds the slot", |k| {
        k.len() == 1 && k[0].ends_with("/slots/b/app1")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_mode_refuses_a_drain_while_etcd_is_down_and_never_blocks_a_restore() {
    ensure_test_images();
    let mut etcd = Etcd::start().await;
    let spec = FleetSpec::new("on_unreachable = \"closed\"");
    let a = FleetHost::start("a", &spec, &etcd, 2).await;
    let drained = a.cli(&["drain", &a.container(1)]).await;
    assert!(drained.status.success(), "{}", text(&drained));
    wait_slots(&etcd, &spec, "a/app1 holds the slot", |k| k.len() == 1).await;

    etcd.kill();
    let refused = a.cli(&["drain", &a.container(2)]).await;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("etcd"), "{}", text(&refused));
    let waited = a
        .cli(&["drain", "--wait", "--timeout", "2s", &a.container(2)])
        .await;
    assert!(!waited.status.success(), "{}", text(&waited));
    assert!(a.metric("haproxy_drain_fleet_refusals_total").await >= 2.0);
    assert_eq!(a.metric("haproxy_drain_fleet_fallbacks_total").await, 0.0);
    a.wait_in_rotation(2).await;

    // A restore never waits for etcd.
    let ready = a.cli(&["ready", "--wait", &a.container(1)]).await;
    assert!(ready.status.success(), "{}", text(&ready));
    a.wait_in_rotation(1).await;

    etcd.start_again().await;
    wait_slots(&etcd, &spec, "the slot released once etcd is back", |k| {
        k.is_empty()
    })
    .await;
}
