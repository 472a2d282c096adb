//! Parsers on replies captured from HAProxy 2.6.12, and property tests that no input panics.

use proptest::prelude::*;

use super::*;
use crate::haproxy::types::{AdminState, OpState, RowKind, ServerStatus};

const SHOW_STAT: &str = include_str!("testdata/show_stat.csv");

const SERVERS_STATE: &str = "1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 be 1 web1 172.18.0.2 2 0 100 100 24 15 3 3 6 0 0 0 - 8080 - 0 0 - - 0
4 be 2 web2 172.18.0.3 2 8 100 100 0 15 3 3 6 0 0 0 - 8080 - 0 0 - - 0
4 be 3 web3 172.18.0.4 0 1 100 100 0 15 3 0 14 0 0 0 - 8080 - 0 0 - - 0
4 be 4 dyn7 - 0 1 1 1 0 1 0 0 2 0 0 0 web1.local 0 - 0 0 - - 0

";

#[test]
fn show_stat_capture_parses_every_row_by_header_name() {
    let rows = parse_stat(SHOW_STAT).unwrap();
    let kinds: Vec<_> = rows
        .iter()
        .map(|r| (r.proxy.as_str(), r.name.as_str(), r.kind))
        .collect();
    assert!(kinds.contains(&("be", "web1", RowKind::Server)));
    assert!(kinds.contains(&("be", "BACKEND", RowKind::Backend)));
    assert!(kinds.contains(&("be_static", "s1", RowKind::Server)));
    let web1 = rows.iter().find(|r| r.name == "web1").unwrap();
    assert_eq!(web1.status, ServerStatus::NoCheck);
    assert_eq!(web1.weight, Some(20));
    assert_eq!(web1.user_weight, Some(20));
    assert_eq!(web1.addr, "127.0.0.1:1");
    assert_eq!(web1.check_status, "");
}

#[test]
fn show_stat_columns_are_found_by_name_not_position() {
    let text = "# svname,pxname,type,status,weight,scur,qcur,stot,check_status,addr,\n\
                web1,be,2,UP 1/3,50,7,1,99,* L4TOUT,10.0.0.1:80,\n";
    let rows = parse_stat(text).unwrap();
    assert_eq!(rows[0].proxy, "be");
    assert_eq!(rows[0].sessions, 7);
    assert_eq!(rows[0].check_status, "* L4TOUT");
    assert_eq!(rows[0].user_weight, None, "no uweight column before 2.4");
    assert_eq!(
        rows[0].status,
        ServerStatus::Transition {
            base: Box::new(ServerStatus::Up),
            current: 1,
            needed: 3
        }
    );
}

#[test]
fn show_stat_without_header_or_with_unknown_type_is_an_error() {
    assert!(parse_stat("").is_err());
    assert!(parse_stat("be,web1,0\n").is_err());
    let text = "# pxname,svname,type,status,weight,scur,qcur,stot,check_status,addr\nbe,w,9,UP,1,0,0,0,,\n";
    assert!(parse_stat(text)
        .unwrap_err()
        .to_string()
        .contains("unknown type"));
}

#[test]
fn server_statuses_cover_transitions_and_verbatim_others() {
    let cases = [
        ("UP", ServerStatus::Up),
        ("DOWN", ServerStatus::Down),
        ("MAINT", ServerStatus::Maint),
        ("DRAIN", ServerStatus::Drain),
        ("NOLB", ServerStatus::Nolb),
        ("no check", ServerStatus::NoCheck),
        (
            "DOWN 1/2",
            ServerStatus::Transition {
                base: Box::new(ServerStatus::Down),
                current: 1,
                needed: 2,
            },
        ),
        ("DOWN (agent)", ServerStatus::Other("DOWN (agent)".into())),
        (
            "MAINT (resolution)",
            ServerStatus::Other("MAINT (resolution)".into()),
        ),
        ("UP x/y", ServerStatus::Other("UP x/y".into())),
    ];
    for (text, expected) in cases {
        let parsed = ServerStatus::parse(text);
        assert_eq!(parsed, expected, "{text}");
        assert_eq!(parsed.to_string(), text, "display round-trips");
    }
    assert!(ServerStatus::parse("UP 1/2").is_up());
    assert!(!ServerStatus::parse("DOWN 1/2").is_up());
}

#[test]
fn servers_state_capture_parses_admin_bits_and_missing_addresses() {
    let servers = parse_servers_state(SERVERS_STATE).unwrap();
    assert_eq!(servers.len(), 4);
    assert_eq!(servers[0].id.to_string(), "be/web1");
    assert_eq!((servers[0].backend_id, servers[0].server_id), (4, 1));
    assert_eq!(servers[0].port, Some(8080));
    assert_eq!(servers[1].admin.as_admin_state(), AdminState::Drain);
    assert_eq!(servers[2].admin.as_admin_state(), AdminState::Maint);
    assert_eq!(servers[2].op_state, OpState::Stopped);
    assert_eq!(servers[2].check_state, 14);
    assert_eq!((servers[3].addr.as_str(), servers[3].port), ("", None));
}

#[test]
fn servers_state_rejects_other_formats() {
    assert!(parse_servers_state("").is_err());
    assert!(parse_servers_state("2\n# be_id\n").is_err());
    assert!(parse_servers_state("Can't find backend.\n").is_err());
    let short = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_check_result srv_check_health srv_check_state srv_port\n4 be 1\n";
    assert!(parse_servers_state(short)
        .unwrap_err()
        .to_string()
        .contains("short line"));
}

#[test]
fn weights_and_infos() {
    assert_eq!(
        parse_weight("100 (initial 100)\n\n").unwrap(),
        Weight {
            current: 100,
            initial: 100
        }
    );
    assert_eq!(parse_weight("0 (initial 1)").unwrap().current, 0);
    assert!(parse_weight("No such server.").is_err());
    assert!(parse_weight("x (initial 1)").is_err());

    let info = parse_info("Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 9106\nUptime: 0d 0h06m56s\nUptime_sec: 416\nStopping: 1\n").unwrap();
    assert_eq!(
        info,
        Info {
            pid: 9106,
            uptime_sec: 416,
            version: "2.6.12-1+deb12u4".into(),
            stopping: true
        }
    );
    assert!(parse_info("Name: HAProxy\n")
        .unwrap_err()
        .to_string()
        .contains("Pid"));
    assert!(parse_info("Pid: x\nUptime_sec: 1\nVersion: 2\n").is_err());
}

#[test]
fn backends_skip_the_header() {
    assert_eq!(
        parse_backends("# name\nbe\nbe_static\n\n"),
        vec!["be", "be_static"]
    );
}

proptest! {
    #[test]
    fn parsers_never_panic(text in "\\PC*") {
        let _ = parse_stat(&text);
        let _ = parse_servers_state(&text);
        let _ = parse_info(&text);
        let _ = parse_weight(&text);
        let _ = parse_backends(&text);
        let _ = ServerStatus::parse(&text);
    }

    #[test]
    fn structured_garbage_never_panics(
        cells in prop::collection::vec("[A-Za-z0-9 /:*.-]{0,8}", 0..20),
        rows in 0usize..4,
    ) {
        let line = cells.join(",");
        let stat = format!("# pxname,svname,type,status,weight,scur,qcur,stot,check_status,addr,uweight\n{}", format!("{line}\n").repeat(rows));
        let _ = parse_stat(&stat);
        let state = format!("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_check_result srv_check_health srv_check_state srv_port\n{}", cells.join(" "));
        let _ = parse_servers_state(&state);
    }
}
