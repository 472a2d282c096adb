//! The short variant of the scale bench (`benches/scale.rs`), so the harness cannot rot: one
//! HAProxy with 50 servers in 10 backends reconciled, then 10 containers of one backend: all
//! drained at once with a session each (the session poll), then all restarted at once. Asserts
//! correctness — every one drained and restored, no event lost, no request lost — not timing.

use std::time::{Duration, Instant};

use crate::support::bench::exposition::{per_server, sum};
use crate::support::bench::scale::{measure_size, periodic_passes, Size};
use crate::support::bench::session_poll::drain_all_with_sessions;
use crate::support::bench::storm::restart_all;
use crate::support::docker::IMAGE_NOHC;
use crate::support::roll::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_servers_reconcile_and_ten_containers_restarted_at_once_all_come_back() {
    let began = Instant::now();
    let size = Size {
        servers: 50,
        backends: 10,
        containers: 2,
    };
    let scale = measure_size(size, 2).await;
    assert!(scale.passes.len() >= 2, "{scale:?}");
    assert!(scale.rss_kib > 0, "{scale:?}");
    eprintln!("[{:?}] reconciled: {scale:?}", began.elapsed());

    let world = World::start_with(
        10,
        IMAGE_NOHC,
        &[("ON_SIGTERM", "graceful")],
        &[("haproxy-drain.health-path", "/health")],
        &[],
    )
    .await;
    let poll = drain_all_with_sessions(&world, Duration::from_millis(1500)).await;
    assert!(poll.drains_failed.is_empty(), "{poll:?}");
    assert!(
        poll.requests_failed.is_empty(),
        "a drain lost a request: {poll:?}"
    );
    assert!(poll.show_stat > 0.0, "the drains polled sessions: {poll:?}");
    eprintln!("[{:?}] session poll: {poll:?}", began.elapsed());

    let storm = restart_all(&world).await;
    assert!(storm.refused.is_empty(), "{storm:?}");
    assert_eq!(storm.drained, 10, "every one drained: {storm:?}");
    assert_eq!(storm.restored, 10, "every one restored: {storm:?}");
    assert_eq!(storm.seen_out, 10, "HAProxy saw every one out: {storm:?}");
    for action in ["kill", "die", "start"] {
        assert_eq!(
            storm.docker_events.get(action),
            Some(&10),
            "{action}: {storm:?}"
        );
    }
    eprintln!(
        "{scale:?}\n{poll:?}\n{storm:?}\nshort scale bench took {:?}",
        began.elapsed()
    );
}

#[test]
fn the_bench_reads_metric_samples_and_reconciliation_log_lines() {
    let text = "# HELP x\nhd_total{command=\"show_stat\",result=\"ok\"} 12\n\
                hd_total{command=\"set_state\",result=\"ok\"} 3\nhd_total_other 9\n\
                r_total{result=\"ok\",proxy=\"be\",server=\"app1\"} 1\n\
                r_total{result=\"ok\",proxy=\"be2\",server=\"app1\"} 5\n";
    assert_eq!(sum(text, "hd_total", &[("command", "show_stat")]), 12.0);
    assert_eq!(sum(text, "hd_total", &[]), 15.0);
    let servers = per_server(text, "r_total", "be", &[("result", "ok")]);
    assert_eq!(servers.get("app1"), Some(&1.0));
    let log = "2026-12-03T06:50:00Z DEBUG haproxy_drain::controller::reconcile: reconciled \
               why=\"periodic\" servers=5 elapsed_us=1234\n\
               2026-12-03T06:50:00Z DEBUG x: reconciled why=\"startup\" servers=5 elapsed_us=9";
    assert_eq!(periodic_passes(log), vec![Duration::from_micros(1234)]);
}
