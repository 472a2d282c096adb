//! Why haproxy-drain ramps weights itself (`drain::ramp`) instead of relying on HAProxy's
//! `slowstart`, as HAProxy 2.6 really behaves: `slowstart` applies when a server leaves MAINT,
//! not when it goes from DRAIN to READY — the last move of every restore in a backend with
//! checks — and a `set weight` during it sets the user weight that the ramp scales, not the
//! weight HAProxy reports. Also how a static algorithm answers an intermediate weight.

use haproxy_drain::haproxy::{AdminState, Client, ServerId, WeightSpec};

use crate::support::haproxy::{start_http_backends, HaproxyFixture};

fn server(name: &str) -> ServerId {
    ServerId::new("be", name)
}

/// (effective weight, user weight) of `be/<name>` from `show stat`.
async fn weights(client: &Client, name: &str) -> (u32, u32) {
    let rows = client.show_stat().await.expect("show stat");
    let row = rows
        .iter()
        .find(|r| r.proxy == "be" && r.name == name)
        .expect("row");
    (row.weight.unwrap_or(0), row.user_weight.unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowstart_applies_when_leaving_maint_but_not_when_leaving_drain() {
    let backends = start_http_backends(1).await;
    let addr = backends[0].addr;
    let sections = format!(
        "backend be\n\
         \x20   balance roundrobin\n\
         \x20   server s1 {addr} weight 100 slowstart 20s\n\
         backend be_static\n\
         \x20   balance static-rr\n\
         \x20   server s1 {addr} weight 10\n"
    );
    let haproxy = HaproxyFixture::start(&sections).await;
    let client = haproxy.admin_client();
    let s1 = server("s1");

    client
        .set_state(&s1, AdminState::Drain)
        .await
        .expect("drain");
    client
        .set_state(&s1, AdminState::Ready)
        .await
        .expect("ready");
    assert_eq!(
        weights(&client, "s1").await,
        (100, 100),
        "DRAIN → READY: full weight at once, slowstart or not"
    );

    client
        .set_state(&s1, AdminState::Maint)
        .await
        .expect("maint");
    client
        .set_state(&s1, AdminState::Ready)
        .await
        .expect("ready");
    let (effective, user) = weights(&client, "s1").await;
    assert_eq!(user, 100);
    assert!(
        effective < 50,
        "MAINT → READY: slowstart ramps (20 s), yet the weight is already {effective}"
    );
    // A `set weight` during slowstart sets the user weight; the effective one keeps ramping.
    client
        .set_weight(&s1, WeightSpec::Absolute(40))
        .await
        .expect("set weight");
    let (effective, user) = weights(&client, "s1").await;
    assert_eq!(user, 40);
    assert!(effective < 40, "still ramping under slowstart: {effective}");

    // A static algorithm refuses what a ramp's step would be.
    let static_s1 = ServerId::new("be_static", "s1");
    let refused = client.set_weight(&static_s1, WeightSpec::Absolute(3)).await;
    assert!(refused.is_err(), "static-rr took an absolute weight");
}
