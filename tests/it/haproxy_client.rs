//! The runtime API client against a real HAProxy 2.6: every typed command and its error classes.
//! Sockets, permission levels, batches and the master CLI are in `haproxy_client_sockets`.

use std::net::IpAddr;
use std::time::Duration;

use haproxy_drain::haproxy::{
    AdminState, AgentState, Client, CommandError, HaproxyError, Health, OpState, RowKind, ServerId,
    ServerStatus, StatRow, Weight, WeightSpec,
};

use crate::support::haproxy::{start_http_backends, HaproxyFixture, HttpBackend};
use crate::support::wait::wait_for;

/// Three checked servers on live HTTP listeners, a static-rr backend and an agent-checked one.
pub(crate) async fn start_standard() -> (HaproxyFixture, Vec<HttpBackend>) {
    let backends = start_http_backends(3).await;
    let [a, b, c] = [backends[0].addr, backends[1].addr, backends[2].addr];
    let sections = format!(
        "backend be\n\
         \x20   balance roundrobin\n\
         \x20   option httpchk GET /\n\
         \x20   default-server inter 1s fall 2 rise 2\n\
         \x20   server web1 {a} check weight 100\n\
         \x20   server web2 {b} check weight 100\n\
         \x20   server web3 {c} check weight 100\n\
         backend be_static\n\
         \x20   balance static-rr\n\
         \x20   server s1 {a} weight 10\n\
         backend be_agent\n\
         \x20   server a1 {a} agent-check agent-port {} agent-inter 1h\n",
        c.port()
    );
    (HaproxyFixture::start(&sections).await, backends)
}

pub(crate) fn web(n: u32) -> ServerId {
    ServerId::new("be", format!("web{n}"))
}

async fn stat_row(client: &Client, id: &ServerId) -> StatRow {
    let rows = client.show_stat().await.expect("show stat");
    rows.into_iter()
        .find(|r| r.kind == RowKind::Server && r.proxy == id.backend && r.name == id.server)
        .unwrap_or_else(|| panic!("no show stat row for {id}"))
}

/// Polls `show stat` until the server's status satisfies `want` (health checks take a second).
async fn wait_status(
    client: &Client,
    id: &ServerId,
    want: impl Fn(&ServerStatus) -> bool,
) -> StatRow {
    let what = format!("the status of {id}");
    wait_for(Duration::from_secs(10), &what, || async {
        let row = stat_row(client, id).await;
        want(&row.status).then_some(row)
    })
    .await
}

pub(crate) fn command_error(result: Result<impl std::fmt::Debug, HaproxyError>) -> CommandError {
    match result {
        Err(HaproxyError::Command(error)) => error,
        other => panic!("expected a command error, got {other:?}"),
    }
}

#[tokio::test]
async fn show_commands_parse_real_replies() {
    let (haproxy, _backends) = start_standard().await;
    let client = haproxy.admin_client();

    let info = client.show_info().await.unwrap();
    assert!(info.version.starts_with("2."), "{info:?}");
    assert!(!info.stopping);
    assert_ne!(
        info.pid,
        haproxy.master_pid(),
        "show info on a worker socket names the worker"
    );

    let row = wait_status(&client, &web(1), |s| *s == ServerStatus::Up).await;
    assert_eq!((row.weight, row.user_weight), (Some(100), Some(100)));
    assert_eq!(row.check_status, "L7OK");
    let rows = client.show_stat().await.unwrap();
    assert!(rows
        .iter()
        .any(|r| r.kind == RowKind::Backend && r.proxy == "be_static"));

    let servers = client.show_servers_state(Some("be")).await.unwrap();
    assert_eq!(servers.len(), 3);
    assert_eq!(servers[0].id, web(1));
    assert_eq!((servers[0].weight, servers[0].initial_weight), (100, 100));
    assert_eq!(servers[0].addr, "127.0.0.1");
    assert!(servers[0].port.is_some());
    assert_eq!(client.show_servers_state(None).await.unwrap().len(), 5);
    let missing = client.show_servers_state(Some("nobe")).await;
    assert!(matches!(
        command_error(missing),
        CommandError::NoSuchBackend { .. }
    ));

    let backends = client.show_backends().await.unwrap();
    for name in ["be", "be_static", "be_agent"] {
        assert!(backends.iter().any(|b| b == name), "{backends:?}");
    }
}

#[tokio::test]
async fn weights_absolute_percent_and_their_errors() {
    let (haproxy, _backends) = start_standard().await;
    let client = haproxy.admin_client();

    client
        .set_weight(&web(1), WeightSpec::Absolute(0))
        .await
        .unwrap();
    assert_eq!(
        client.get_weight(&web(1)).await.unwrap(),
        Weight {
            current: 0,
            initial: 100
        }
    );
    client
        .set_weight(&web(1), WeightSpec::Percent(50))
        .await
        .unwrap();
    assert_eq!(
        client.get_weight(&web(1)).await.unwrap().current,
        50,
        "% of the initial weight"
    );

    let too_big = client.set_weight(&web(1), WeightSpec::Absolute(257)).await;
    assert!(matches!(
        command_error(too_big),
        CommandError::InvalidArgument { .. }
    ));
    let no_backend = client.get_weight(&ServerId::new("nobe", "web1")).await;
    assert!(matches!(
        command_error(no_backend),
        CommandError::NoSuchBackend { .. }
    ));
    let no_server = client
        .set_weight(&ServerId::new("be", "nosrv"), WeightSpec::Absolute(1))
        .await;
    assert!(matches!(
        command_error(no_server),
        CommandError::NoSuchServer { .. }
    ));

    let static_id = ServerId::new("be_static", "s1");
    let refused = command_error(client.set_weight(&static_id, WeightSpec::Absolute(5)).await);
    assert!(
        matches!(refused, CommandError::StaticAlgorithm { .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("static"), "{refused}");
    client
        .set_weight(&static_id, WeightSpec::Percent(0))
        .await
        .unwrap();
    assert_eq!(client.get_weight(&static_id).await.unwrap().current, 0);
}

#[tokio::test]
async fn admin_states_health_and_agent() {
    let (haproxy, _backends) = start_standard().await;
    let client = haproxy.admin_client();
    wait_status(&client, &web(2), |s| *s == ServerStatus::Up).await;

    client.set_state(&web(2), AdminState::Drain).await.unwrap();
    assert_eq!(stat_row(&client, &web(2)).await.status, ServerStatus::Drain);
    let state = &client.show_servers_state(Some("be")).await.unwrap()[1];
    assert!(state.admin.is_drain() && state.op_state == OpState::Running);
    client.set_state(&web(2), AdminState::Maint).await.unwrap();
    assert_eq!(stat_row(&client, &web(2)).await.status, ServerStatus::Maint);
    assert_eq!(
        client.show_servers_state(Some("be")).await.unwrap()[1]
            .admin
            .as_admin_state(),
        AdminState::Maint
    );
    client.set_state(&web(2), AdminState::Ready).await.unwrap();
    assert!(stat_row(&client, &web(2)).await.status.is_up());

    // With checks off, health overrides stick.
    client.disable_health(&web(3)).await.unwrap();
    client.set_health(&web(3), Health::Down).await.unwrap();
    assert_eq!(stat_row(&client, &web(3)).await.status, ServerStatus::Down);
    client.set_health(&web(3), Health::Stopping).await.unwrap();
    assert_eq!(stat_row(&client, &web(3)).await.status, ServerStatus::Nolb);
    client.set_health(&web(3), Health::Up).await.unwrap();
    assert_eq!(
        stat_row(&client, &web(3)).await.status,
        ServerStatus::NoCheck
    );
    client.enable_health(&web(3)).await.unwrap();
    wait_status(&client, &web(3), |s| *s == ServerStatus::Up).await;

    let no_agent = command_error(client.set_agent(&web(1), AgentState::Down).await);
    assert!(
        matches!(no_agent, CommandError::Rejected { ref message, .. } if message.contains("agent checks are not enabled")),
        "{no_agent:?}"
    );
    let agent_id = ServerId::new("be_agent", "a1");
    client.set_agent(&agent_id, AgentState::Down).await.unwrap();
    let row = stat_row(&client, &agent_id).await;
    assert_eq!(row.status, ServerStatus::Other("DOWN (agent)".into()));
    client.set_agent(&agent_id, AgentState::Up).await.unwrap();
    assert_ne!(
        stat_row(&client, &agent_id).await.status_text,
        "DOWN (agent)"
    );

    client.shutdown_sessions(&web(1)).await.unwrap();
    let gone = client
        .shutdown_sessions(&ServerId::new("be", "nosrv"))
        .await;
    assert!(matches!(
        command_error(gone),
        CommandError::NoSuchServer { .. }
    ));
}

#[tokio::test]
async fn set_addr_changes_are_visible_in_servers_state() {
    let (haproxy, backends) = start_standard().await;
    let client = haproxy.admin_client();
    let port = backends[1].addr.port();
    let ip: IpAddr = "127.0.0.2".parse().unwrap();

    let changed = client.set_addr(&web(3), ip, Some(port)).await.unwrap();
    assert!(changed.starts_with("IP changed from"), "{changed}");
    let state = &client.show_servers_state(Some("be")).await.unwrap()[2];
    assert_eq!((state.addr.as_str(), state.port), ("127.0.0.2", Some(port)));

    let same = client.set_addr(&web(3), ip, Some(port)).await.unwrap();
    assert!(same.starts_with("no need to change the addr"), "{same}");

    let v6: IpAddr = "::1".parse().unwrap();
    client.set_addr(&web(3), v6, Some(port + 1)).await.unwrap();
    let state = &client.show_servers_state(Some("be")).await.unwrap()[2];
    assert_eq!((state.addr.as_str(), state.port), ("::1", Some(port + 1)));

    let missing = client
        .set_addr(&ServerId::new("be", "nosrv"), ip, None)
        .await;
    assert!(matches!(
        command_error(missing),
        CommandError::NoSuchServer { .. }
    ));
}

#[tokio::test]
async fn dynamic_servers_are_added_and_deleted() {
    let (haproxy, backends) = start_standard().await;
    let client = haproxy.admin_client();
    let dyn1 = ServerId::new("be", "dyn1");
    let addr = backends[0].addr.to_string();
    let options: Vec<String> = ["weight", "50", "check", "inter", "1s"]
        .map(String::from)
        .to_vec();

    client.add_server(&dyn1, &addr, &options).await.unwrap();
    let state = client.show_servers_state(Some("be")).await.unwrap();
    let added = state.iter().find(|s| s.id == dyn1).expect("dyn1 listed");
    assert_eq!(added.weight, 50);
    assert!(added.admin.is_maint(), "dynamic servers start in maint");

    let again = client.add_server(&dyn1, &addr, &[]).await;
    assert!(matches!(
        command_error(again),
        CommandError::AlreadyExists { .. }
    ));
    let bad_keyword = client
        .add_server(
            &ServerId::new("be", "dyn2"),
            &addr,
            &["cookie".into(), "x".into()],
        )
        .await;
    assert!(matches!(
        command_error(bad_keyword),
        CommandError::InvalidArgument { .. }
    ));
    let static_backend = client
        .add_server(&ServerId::new("be_static", "d"), &addr, &[])
        .await;
    assert!(matches!(
        command_error(static_backend),
        CommandError::StaticAlgorithm { .. }
    ));
    let no_backend = client
        .add_server(&ServerId::new("nobe", "d"), &addr, &[])
        .await;
    assert!(matches!(
        command_error(no_backend),
        CommandError::NoSuchBackend { .. }
    ));

    client.enable_health(&dyn1).await.unwrap();
    client.set_state(&dyn1, AdminState::Ready).await.unwrap();
    let busy = client.del_server(&dyn1).await;
    assert!(matches!(
        command_error(busy),
        CommandError::NotInMaintenance { .. }
    ));
    client.set_state(&dyn1, AdminState::Maint).await.unwrap();
    client.del_server(&dyn1).await.unwrap();
    let state = client.show_servers_state(Some("be")).await.unwrap();
    assert!(state.iter().all(|s| s.id != dyn1));
    let gone = client.del_server(&dyn1).await;
    assert!(matches!(
        command_error(gone),
        CommandError::NoSuchServer { .. }
    ));
}
