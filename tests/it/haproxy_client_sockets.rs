//! The runtime API client against a real HAProxy 2.6: permission levels, the TCP socket, the
//! master CLI (worker addressing, reload) and pipelined batches.

use std::time::{Duration, Instant};

use haproxy_drain::haproxy::{
    AdminState, Client, Command, CommandError, HaproxyAddr, Reply, ServerId, Weight, WeightSpec,
    WorkerTarget,
};

use crate::haproxy_client::{command_error, start_standard, web};
use crate::support::haproxy::{HaproxyConfig, HaproxyFixture};

#[tokio::test]
async fn operator_and_user_sockets_refuse_changes_with_an_admin_hint() {
    let (haproxy, _backends) = start_standard().await;
    for url in [haproxy.operator_url(), haproxy.user_url()] {
        let client = Client::new(url.clone());
        assert_eq!(
            client.get_weight(&web(1)).await.unwrap().current,
            100,
            "reads work on {url}"
        );
        let attempts = [
            client.set_weight(&web(1), WeightSpec::Absolute(1)).await,
            client.set_state(&web(1), AdminState::Drain).await,
            client
                .add_server(&ServerId::new("be", "x"), "127.0.0.1:1", &[])
                .await,
        ];
        for attempt in attempts {
            let error = command_error(attempt);
            assert!(
                matches!(error, CommandError::PermissionDenied { .. }),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains("level admin") && message.contains(&url.to_string()),
                "{message}"
            );
        }
    }
    assert_eq!(
        haproxy
            .admin_client()
            .get_weight(&web(1))
            .await
            .unwrap()
            .current,
        100
    );
}

#[tokio::test]
async fn tcp_socket_and_unknown_commands() {
    let (haproxy, _backends) = start_standard().await;
    let tcp = Client::new(haproxy.tcp_url());
    tcp.set_weight(&web(1), WeightSpec::Absolute(7))
        .await
        .unwrap();
    assert_eq!(tcp.get_weight(&web(1)).await.unwrap().current, 7);
    assert!(tcp.show_info().await.unwrap().pid > 0);

    // The master CLI without `?worker=N` does not know worker commands.
    let master = Client::new(haproxy.master_url());
    let unknown = command_error(master.get_weight(&web(1)).await);
    assert!(
        matches!(unknown, CommandError::UnknownCommand { .. }),
        "{unknown:?}"
    );
    let raw = haproxy
        .admin_client()
        .raw("frobnicate the backend")
        .await
        .unwrap();
    assert!(raw.starts_with("Unknown command"), "{raw}");
}

#[tokio::test]
async fn a_pipelined_batch_of_600_commands_gets_600_ordered_results() {
    let (haproxy, _backends) = start_standard().await;
    let client = haproxy.admin_client();
    let mut commands = Vec::new();
    for i in 0..200u32 {
        let id = web(i % 3 + 1);
        commands.push(Command::SetWeight(
            id.clone(),
            WeightSpec::Absolute(i % 256),
        ));
        commands.push(Command::GetWeight(id));
        commands.push(match i % 50 {
            0 => Command::GetWeight(ServerId::new("be", "nosrv")),
            1 => Command::SetWeight(web(1), WeightSpec::Absolute(999)),
            2 => Command::ShowStat,
            _ => Command::GetWeight(web(3)),
        });
    }
    let started = Instant::now();
    let results = client.batch(&commands).await.expect("batch");
    assert_eq!(results.len(), 600);
    for (i, chunk) in results.chunks(3).enumerate() {
        let i = i as u32;
        assert_eq!(chunk[0], Ok(Reply::Done), "set #{i}");
        match &chunk[1] {
            Ok(Reply::Weight(w)) => assert_eq!(w.current, i % 256, "get after set #{i}"),
            other => panic!("get #{i}: {other:?}"),
        }
        match (i % 50, &chunk[2]) {
            (0, Err(CommandError::NoSuchServer { .. })) => {}
            (1, Err(CommandError::InvalidArgument { .. })) => {}
            (2, Ok(Reply::Stat(rows))) => assert!(rows.len() > 5),
            (_, Ok(Reply::Weight(_))) if i % 50 > 2 => {}
            (_, other) => panic!("third command of #{i}: {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn master_cli_addresses_workers_and_reload_resets_runtime_state() {
    let (mut haproxy, _backends) = start_standard().await;
    let via_master = Client::new(haproxy.master_worker_url());
    let before = via_master.show_info().await.unwrap();
    assert_eq!(
        before.pid,
        haproxy.admin_client().show_info().await.unwrap().pid
    );
    via_master
        .set_weight(&web(1), WeightSpec::Absolute(30))
        .await
        .unwrap();
    assert_eq!(
        haproxy
            .admin_client()
            .get_weight(&web(1))
            .await
            .unwrap()
            .current,
        30
    );

    // Pipelining works through the master too: every line carries its own `@1 ` prefix.
    let reads: Vec<Command> = (0..100)
        .map(|i| Command::GetWeight(web(i % 3 + 1)))
        .collect();
    let results = via_master.batch(&reads).await.unwrap();
    assert_eq!(results.len(), 100);
    assert!(
        results.iter().all(|r| matches!(r, Ok(Reply::Weight(_)))),
        "{results:?}"
    );

    let by_pid = Client::new(
        haproxy
            .master_url()
            .with_worker(WorkerTarget::Pid(before.pid)),
    );
    assert_eq!(by_pid.get_weight(&web(1)).await.unwrap().current, 30);
    let nobody = Client::new(
        haproxy
            .master_url()
            .with_worker(WorkerTarget::Pid(u32::MAX / 2)),
    );
    let missing = command_error(nobody.show_info().await);
    assert!(
        matches!(missing, CommandError::NoSuchWorker { .. }),
        "{missing:?}"
    );

    let after = haproxy.reload().await;
    assert_ne!(after.pid, before.pid, "a reload starts a new worker");
    assert!(after.uptime_sec <= before.uptime_sec + 1);
    assert_eq!(
        via_master.show_info().await.unwrap().pid,
        after.pid,
        "@1 follows the new worker"
    );
    assert_eq!(
        haproxy.admin_client().get_weight(&web(1)).await.unwrap(),
        Weight {
            current: 100,
            initial: 100
        },
        "runtime weights do not survive a reload"
    );
}

#[tokio::test]
async fn names_that_would_inject_commands_are_not_sent() {
    let (haproxy, _backends) = start_standard().await;
    let client = haproxy.admin_client();
    let sneaky = ServerId::new("be", "web1; set weight be/web2 0");
    let error = command_error(client.set_weight(&sneaky, WeightSpec::Absolute(1)).await);
    assert!(matches!(error, CommandError::NotSent { .. }), "{error:?}");
    assert_eq!(client.get_weight(&web(2)).await.unwrap().current, 100);
    let addr: HaproxyAddr = haproxy.admin_url().to_string().parse().unwrap();
    assert_eq!(addr, haproxy.admin_url());
}

#[tokio::test]
async fn a_state_file_dumped_before_reload_restores_weight_and_drain() {
    let config = HaproxyConfig::new(
        "backend be\n    server web1 127.0.0.1:9 weight 100\n    server web2 127.0.0.1:9 weight 100\n",
    )
    .global("server-state-file {dir}/server-state")
    .defaults("load-server-state-from-file global");
    let mut haproxy = HaproxyFixture::start_with(config).await;
    let client = haproxy.admin_client();
    client
        .set_weight(&web(1), WeightSpec::Absolute(30))
        .await
        .unwrap();
    client.set_state(&web(2), AdminState::Drain).await.unwrap();

    // HAProxy never writes the file itself: dump `show servers state` right before reloading.
    let dump = client.raw("show servers state").await.unwrap();
    std::fs::write(haproxy.dir().join("server-state"), dump).unwrap();
    haproxy.reload().await;

    let servers = client.show_servers_state(Some("be")).await.unwrap();
    assert_eq!((servers[0].weight, servers[0].initial_weight), (30, 100));
    assert!(servers[1].admin.is_drain(), "{:?}", servers[1]);
}
