//! The fleet budget on a real etcd: simulated hosts on one engine (each its own HAProxy, app
//! containers and sidecar with its own `--filter`), a fleet budget of 1 for their backend.

use std::time::{Duration, Instant};

use crate::support::docker::ensure_test_images;
use crate::support::fleet::{in_rotation, Etcd, FleetHost, FleetSampler, FleetSpec};
use crate::support::load::Load;
use crate::support::wait::wait_until;

pub(crate) fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub(crate) async fn wait_slots(
    etcd: &Etcd,
    spec: &FleetSpec,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) {
    let prefix = spec.slots_prefix();
    wait_until(Duration::from_secs(30), what, || {
        let keys = etcd.keys(&prefix);
        let check = &check;
        async move { keys.await.is_some_and(|k| check(&k)) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_on_two_hosts_wait_for_each_other_and_a_full_budget_refuses_naming_the_holder() {
    ensure_test_images();
    let etcd = Etcd::start().await;
    let spec = FleetSpec::new("");
    let (a, b, c) = tokio::join!(
        FleetHost::start("a", &spec, &etcd, 2),
        FleetHost::start("b", &spec, &etcd, 2),
        FleetHost::start("c", &spec, &etcd, 2),
    );
    // Every host published its server count: 6 servers, 1 out at once.
    wait_until(
        Duration::from_secs(15),
        "status --fleet shows 6 servers",
        || {
            let output = c.cli(&["status", "--fleet"]);
            async move { text(&output.await).contains("budget 1 of 6 server(s) = 1 out at once") }
        },
    )
    .await;
    let loads: Vec<Load> = [&a, &b, &c]
        .iter()
        .map(|h| Load::start(h.frontend, 4, "/?delay_ms=5"))
        .collect();
    let sampler = FleetSampler::start(&[&a, &b, &c], &etcd.url, &spec.slots_prefix());

    // Host a takes its app1 out: the one slot is a's.
    let drained = a.cli(&["drain", &a.container(1)]).await;
    assert!(drained.status.success(), "{}", text(&drained));
    wait_slots(&etcd, &spec, "a/app1 holds the slot", |k| {
        k.len() == 1 && k[0].ends_with("/slots/a/app1")
    })
    .await;

    // Without --wait, b is refused, with the holder named.
    let refused = b.cli(&["drain", &b.container(1)]).await;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("a/app1"), "{}", text(&refused));
    let status = c.cli(&["status", "--fleet"]).await;
    assert!(text(&status).contains("a  app1  api"), "{}", text(&status));
    assert!(in_rotation(&b.wait_in_rotation(1).await));

    // With --wait, b waits until a's server is back.
    let waiting = {
        let socket = b.daemon.control_socket();
        let container = b.container(1);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
                .args(["drain", "--wait", "--timeout", "60s", &container])
                .env("HAPROXY_DRAIN_CONTROL_SOCKET", socket)
                .output()
                .expect("CLI runs");
            (output, started.elapsed())
        })
    };
    wait_until(
        Duration::from_secs(10),
        "b's drain waits for a slot",
        || async { b.metric("haproxy_drain_fleet_waits_total").await >= 1.0 },
    )
    .await;
    assert_eq!(b.out_of_rotation().await, Some(0), "b must not drain yet");
    let ready = a.cli(&["ready", "--wait", &a.container(1)]).await;
    assert!(ready.status.success(), "{}", text(&ready));
    let (output, waited) = waiting.await.expect("waiting drain");
    assert!(output.status.success(), "{}", text(&output));
    wait_slots(&etcd, &spec, "b/app1 holds the slot", |k| {
        k.len() == 1 && k[0].ends_with("/slots/b/app1")
    })
    .await;
    let ready = b.cli(&["ready", "--wait", &b.container(1)]).await;
    assert!(ready.status.success(), "{}", text(&ready));

    // Two rolls at once on two hosts: one waits for the other, both finish.
    let (roll_a, roll_c) = tokio::join!(
        a.cli(&["roll", &a.container(2), "--timeout", "60s"]),
        c.cli(&["roll", &c.container(2), "--timeout", "60s"]),
    );
    assert!(roll_a.status.success(), "{}", text(&roll_a));
    assert!(roll_c.status.success(), "{}", text(&roll_c));
    let roll_waits = a.metric("haproxy_drain_fleet_waits_total").await
        + c.metric("haproxy_drain_fleet_waits_total").await;
    assert!(roll_waits >= 1.0, "one of the rolls must have waited");
    for host in [&a, &b, &c] {
        for i in 1..=2 {
            host.wait_in_rotation(i).await;
        }
    }
    wait_slots(&etcd, &spec, "every slot released", |k| k.is_empty()).await;

    let (max_out, max_slots, samples) = sampler.finish().await;
    let mut failed = 0;
    let mut ok = 0;
    for load in loads {
        let report = load.stop().await;
        failed += report.failed;
        ok += report.ok;
        assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
    }
    eprintln!(
        "fleet budget: b waited {waited:?} for a's slot; {samples} samples, at most {max_out} server(s) out and {max_slots} slot(s) held; {ok} requests, {failed} failed"
    );
    assert!(samples > 50, "the sampler ran");
    assert_eq!(
        max_out, 1,
        "never more than the budget out across the fleet"
    );
    assert_eq!(max_slots, 1, "never more than one slot held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sidecar_releases_its_slot_after_the_lease_ttl_and_handles_its_server_on_restart()
{
    ensure_test_images();
    let etcd = Etcd::start().await;
    let spec = FleetSpec::new("lease_ttl = \"3s\"");
    let (mut a, b) = tokio::join!(
        FleetHost::start("a", &spec, &etcd, 2),
        FleetHost::start("b", &spec, &etcd, 2),
    );
    let drained = a.cli(&["drain", &a.container(1)]).await;
    assert!(drained.status.success(), "{}", text(&drained));
    wait_slots(&etcd, &spec, "a/app1 holds the slot", |k| {
        k.iter().any(|k| k.ends_with("/slots/a/app1"))
    })
    .await;

    a.daemon.kill_hard();
    let killed_at = Instant::now();
    let waited = b
        .cli(&["drain", "--wait", "--timeout", "30s", &b.container(1)])
        .await;
    let after_kill = killed_at.elapsed();
    assert!(waited.status.success(), "{}", text(&waited));
    eprintln!("b got the slot {after_kill:?} after a's sidecar was killed (lease TTL 3 s)");
    assert!(
        after_kill < Duration::from_secs(12),
        "the slot must go with the lease: {after_kill:?}"
    );
    wait_slots(&etcd, &spec, "only b/app1 holds a slot", |k| {
        k.len() == 1 && k[0].ends_with("/slots/b/app1")
    })
    .await;

    // a's sidecar comes back: its server is still out, so it counts again (unconditionally).
    a.daemon.restart().await;
    wait_slots(
        &etcd,
        &spec,
        "a/app1 counted again after the restart",
        |k| k.iter().any(|k| k.ends_with("/slots/a/app1")),
    )
    .await;
    let ready = a.cli(&["ready", "--wait", &a.container(1)]).await;
    assert!(ready.status.success(), "{}", text(&ready));
    let ready = b.cli(&["ready", "--wait", &b.container(1)]).await;
    assert!(ready.status.success(), "{}", text(&ready));
    a.wait_in_rotation(1).await;
    b.wait_in_rotation(1).await;
    wait_slots(&etcd, &spec, "every slot released", |k| k.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_through_the_docker_gate_waits_for_a_fleet_slot() {
    ensure_test_images();
    let etcd = Etcd::start().await;
    let spec = FleetSpec::new("");
    let (a, b) = tokio::join!(
        FleetHost::start("a", &spec, &etcd, 2),
        FleetHost::start_with("b", &spec, &etcd, 2, |dir| {
            vec![format!("--docker-gate={}", dir.join("gate.sock").display())]
        }),
    );
    let drained = a.cli(&["drain", &a.container(1)]).await;
    assert!(drained.status.success(), "{}", text(&drained));
    wait_slots(&etcd, &spec, "a/app1 holds the slot", |k| {
        k.len() == 1 && k[0].ends_with("/slots/a/app1")
    })
    .await;

    // `docker stop` through b's gate: the gate drains first, and the drain waits for a slot.
    let gate = format!("unix://{}", b.dir().join("gate.sock").display());
    let container = b.container(1);
    let stop = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let output = std::process::Command::new("docker")
            .args(["stop", "-t", "5", &container])
            .env("DOCKER_HOST", gate)
            .output()
            .expect("docker runs");
        (output, started.elapsed())
    });
    wait_until(
        Duration::from_secs(10),
        "the gate's drain waits for a slot",
        || async { b.metric("haproxy_drain_fleet_waits_total").await >= 1.0 },
    )
    .await;
    let running = crate::support::docker::docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Running}}",
        &b.container(1),
    ]);
    assert_eq!(running.trim(), "true", "the stop must wait for the slot");
    assert_eq!(b.out_of_rotation().await, Some(0));

    let ready = a.cli(&["ready", "--wait", &a.container(1)]).await;
    assert!(ready.status.success(), "{}", text(&ready));
    let (output, waited) = stop.await.expect("docker stop");
    assert!(output.status.success(), "{}", text(&output));
    eprintln!("docker stop through the gate waited {waited:?} for the fleet slot");
    assert!(
        b.metric("haproxy_drain_gate_requests_total{kind=\"stop\",result=\"drained\"}")
            .await
            >= 1.0,
        "the gate drained before it forwarded the stop"
    );
    // b's server is out (its container stopped): b holds the slot until it is back.
    wait_slots(&etcd, &spec, "b/app1 holds the slot", |k| {
        k.len() == 1 && k[0].ends_with("/slots/b/app1")
    })
    .await;
    crate::support::docker::docker_ok(&["start", &b.container(1)]);
    b.wait_in_rotation(1).await;
    wait_slots(&etcd, &spec, "every slot released", |k| k.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percentage_budget_counts_the_servers_of_every_live_host() {
    ensure_test_images();
    let etcd = Etcd::start().await;
    let mut spec = FleetSpec::new("");
    spec.budget = "50%".to_string();
    let (a, b) = tokio::join!(
        FleetHost::start("a", &spec, &etcd, 2),
        FleetHost::start("b", &spec, &etcd, 2),
    );
    // 50% of 4 servers: two may be out, one per host here (each host's local budget is 1).
    wait_until(
        Duration::from_secs(15),
        "status --fleet shows 4 servers",
        || {
            let output = a.cli(&["status", "--fleet"]);
            async move { text(&output.await).contains("budget 50% of 4 server(s) = 2 out at once") }
        },
    )
    .await;
    let first = a.cli(&["drain", &a.container(1)]).await;
    assert!(first.status.success(), "{}", text(&first));
    let second = b.cli(&["drain", &b.container(1)]).await;
    assert!(second.status.success(), "{}", text(&second));
    wait_slots(&etcd, &spec, "two slots held", |k| k.len() == 2).await;
    // A third is over the fleet budget: its wait for a slot times out (the fleet is asked
    // before the local budget, which would refuse it too).
    let third = a
        .cli(&["drain", "--wait", "--timeout", "1s", &a.container(2)])
        .await;
    assert!(!third.status.success(), "{}", text(&third));
    assert!(
        text(&third).contains("fleet budget slot"),
        "{}",
        text(&third)
    );
    assert!(a.metric("haproxy_drain_fleet_refusals_total").await >= 1.0);
    a.wait_in_rotation(2).await;
    for (host, i) in [(&a, 1), (&b, 1)] {
        let ready = host.cli(&["ready", "--wait", &host.container(i)]).await;
        assert!(ready.status.success(), "{}", text(&ready));
    }
    wait_slots(&etcd, &spec, "every slot released", |k| k.is_empty()).await;
}
