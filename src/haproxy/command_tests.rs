//! Rendering and reply classification of typed commands, on the exact texts of HAProxy 2.6.

use std::net::IpAddr;

use super::*;
use crate::haproxy::types::{AdminState, Health, ServerId, WeightSpec};

fn web1() -> ServerId {
    ServerId::new("be", "web1")
}

fn reply(text: &str) -> RawReply {
    RawReply {
        text: text.to_string(),
        terminated: true,
    }
}

fn classify(command: Command, text: &str) -> Result<Reply, CommandError> {
    command.classify(&reply(text), "unix:///run/admin.sock")
}

#[test]
fn commands_render_as_haproxy_expects() {
    let v6: IpAddr = "::1".parse().unwrap();
    let cases = [
        (
            Command::SetWeight(web1(), WeightSpec::Percent(50)),
            "set weight be/web1 50%",
        ),
        (
            Command::SetState(web1(), AdminState::Drain),
            "set server be/web1 state drain",
        ),
        (
            Command::SetAddr {
                server: web1(),
                ip: v6,
                port: Some(8080),
            },
            "set server be/web1 addr ::1 port 8080",
        ),
        (
            Command::SetAddr {
                server: web1(),
                ip: "10.0.0.1".parse().unwrap(),
                port: None,
            },
            "set server be/web1 addr 10.0.0.1",
        ),
        (
            Command::SetHealth(web1(), Health::Stopping),
            "set server be/web1 health stopping",
        ),
        (
            Command::ShutdownSessions(web1()),
            "shutdown sessions server be/web1",
        ),
        (
            Command::AddServer {
                server: web1(),
                addr: "10.0.0.1:80".into(),
                options: vec!["weight".into(), "5".into()],
            },
            "add server be/web1 10.0.0.1:80 weight 5",
        ),
        (
            Command::ShowServersState(Some("be".into())),
            "show servers state be",
        ),
        (Command::DisableHealth(web1()), "disable health be/web1"),
    ];
    for (command, line) in cases {
        assert_eq!(command.render().unwrap(), line);
    }
}

#[test]
fn unsafe_arguments_are_never_sent() {
    let bad = [
        Command::GetWeight(ServerId::new("be", "a;b")),
        Command::GetWeight(ServerId::new("be x", "a")),
        Command::GetWeight(ServerId::new("", "a")),
        Command::DelServer(ServerId::new("be", "a\nshow info")),
        Command::AddServer {
            server: web1(),
            addr: "1.2.3.4:80".into(),
            options: vec!["check;".into()],
        },
        Command::Raw("show info\nshow stat".into()),
        Command::Raw("x".repeat(MAX_LINE_BYTES)),
    ];
    for command in bad {
        assert!(
            matches!(command.render(), Err(CommandError::NotSent { .. })),
            "{command:?}"
        );
    }
}

#[test]
fn empty_replies_mean_success_for_set_commands() {
    assert_eq!(
        classify(Command::SetWeight(web1(), WeightSpec::Absolute(0)), "\n"),
        Ok(Reply::Done)
    );
    assert_eq!(classify(Command::EnableHealth(web1()), ""), Ok(Reply::Done));
    let odd = classify(
        Command::SetAgent(web1(), crate::haproxy::AgentState::Down),
        "agent checks are not enabled on this server.\n",
    );
    assert!(matches!(odd, Err(CommandError::Rejected { .. })));
}

/// Checks that a classified error is of the expected variant.
type IsExpected = fn(&CommandError) -> bool;

#[test]
fn known_errors_are_typed_whatever_the_framing() {
    let set = || Command::SetWeight(web1(), WeightSpec::Absolute(1));
    let cases: [(&str, IsExpected); 10] = [
        ("Permission denied\n\n", |e| {
            matches!(e, CommandError::PermissionDenied { .. })
        }),
        ("No such backend.\n\n", |e| {
            matches!(e, CommandError::NoSuchBackend { .. })
        }),
        ("Can't find backend.\n", |e| {
            matches!(e, CommandError::NoSuchBackend { .. })
        }),
        ("No such server.\n", |e| {
            matches!(e, CommandError::NoSuchServer { .. })
        }),
        (
            "Unknown command, but maybe one of the following ones is a better match:\n  help\n",
            |e| matches!(e, CommandError::UnknownCommand { .. }),
        ),
        (
            "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n",
            |e| matches!(e, CommandError::StaticAlgorithm { .. }),
        ),
        ("Empty weight string empty or preceded by garbage\n", |e| {
            matches!(e, CommandError::InvalidArgument { .. })
        }),
        ("Trailing garbage in weight string\n", |e| {
            matches!(e, CommandError::InvalidArgument { .. })
        }),
        ("Require 'backend/server'.\n\n", |e| {
            matches!(e, CommandError::InvalidArgument { .. })
        }),
        (
            "Can't find the target PID matching the prefix '@!12345'\n",
            |e| matches!(e, CommandError::NoSuchWorker { .. }),
        ),
    ];
    for (text, is_expected) in cases {
        let error = classify(set(), text).unwrap_err();
        assert!(is_expected(&error), "{text:?} -> {error:?}");
        assert_eq!(error.command(), "set weight be/web1 1");
    }
    let denied = classify(set(), "Permission denied\n\n")
        .unwrap_err()
        .to_string();
    assert!(
        denied.contains("level admin") && denied.contains("unix:///run/admin.sock"),
        "{denied}"
    );
}

#[test]
fn set_addr_success_texts_are_not_errors() {
    let cmd = || Command::SetAddr {
        server: web1(),
        ip: "172.18.0.2".parse().unwrap(),
        port: Some(8080),
    };
    for ok in [
        "IP changed from '172.18.0.4' to '172.18.0.2', no need to change the port by 'stats socket command'\n\n",
        "IP changed from '172.18.0.2' to '172.18.0.4' by 'stats socket command'\n\n",
        "no need to change the addr, no need to change the port by 'stats socket command'\n\n",
    ] {
        assert!(matches!(classify(cmd(), ok), Ok(Reply::Message(_))), "{ok}");
    }
    let invalid = classify(cmd(), "Invalid addr 'foo' by 'stats socket command'\n\n");
    assert!(matches!(invalid, Err(CommandError::InvalidArgument { .. })));
    let port = classify(cmd(), "no need to change the addr, problem converting port 'abc' to an int by 'stats socket command'\n\n");
    assert!(matches!(port, Err(CommandError::Rejected { .. })));
}

#[test]
fn add_and_del_server_texts() {
    let add = || Command::AddServer {
        server: web1(),
        addr: "1.2.3.4:80".into(),
        options: vec![],
    };
    assert!(matches!(
        classify(add(), "New server registered.\n\n"),
        Ok(Reply::Message(_))
    ));
    assert!(matches!(
        classify(
            add(),
            "Already exists a server with the same name in backend.\n\n"
        ),
        Err(CommandError::AlreadyExists { .. })
    ));
    assert!(matches!(
        classify(
            add(),
            "Backend must use a dynamic load balancing to support dynamic servers.\n"
        ),
        Err(CommandError::StaticAlgorithm { .. })
    ));
    assert!(matches!(
        classify(
            add(),
            "unknown keyword 'foo'; did you mean 'tfo' maybe ?\n\n"
        ),
        Err(CommandError::InvalidArgument { .. })
    ));
    let del = || Command::DelServer(web1());
    assert!(matches!(
        classify(del(), "Server deleted.\n"),
        Ok(Reply::Message(_))
    ));
    assert!(matches!(
        classify(del(), "Only servers in maintenance mode can be deleted.\n"),
        Err(CommandError::NotInMaintenance { .. })
    ));
    assert!(matches!(
        classify(
            del(),
            "Server still has connections attached to it, cannot remove it.\n"
        ),
        Err(CommandError::StillHasConnections { .. })
    ));
    assert!(matches!(classify(del(), "This server cannot be removed at runtime due to other configuration elements pointing to it.\n"), Err(CommandError::Rejected { .. })));
}

#[test]
fn a_closed_connection_is_no_reply_except_for_reload() {
    let closed = RawReply {
        text: String::new(),
        terminated: false,
    };
    let get = Command::GetWeight(web1()).classify(&closed, "a");
    assert!(matches!(get, Err(CommandError::NoReply { .. })));
    assert_eq!(Command::Reload.classify(&closed, "a"), Ok(Reply::Done));
}

#[test]
fn garbage_replies_to_typed_reads_are_unexpected_not_panics() {
    let error = classify(Command::ShowInfo, "hello\n").unwrap_err();
    assert!(
        matches!(error, CommandError::UnexpectedReply { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("show info"), "{error}");
}

#[test]
fn every_verb_is_listed_for_the_metrics() {
    use crate::haproxy::types::AgentState;
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let commands = [
        Command::ShowInfo,
        Command::ShowStat,
        Command::ShowServersState(None),
        Command::ShowBackends,
        Command::GetWeight(web1()),
        Command::SetWeight(web1(), WeightSpec::Absolute(1)),
        Command::SetState(web1(), AdminState::Ready),
        Command::SetAddr {
            server: web1(),
            ip,
            port: None,
        },
        Command::SetHealth(web1(), Health::Up),
        Command::SetAgent(web1(), AgentState::Up),
        Command::ShutdownSessions(web1()),
        Command::AddServer {
            server: web1(),
            addr: "10.0.0.1:80".into(),
            options: vec![],
        },
        Command::DelServer(web1()),
        Command::EnableHealth(web1()),
        Command::DisableHealth(web1()),
        Command::Reload,
    ];
    let verbs: Vec<&str> = commands.iter().map(Command::verb).collect();
    assert_eq!(verbs, Command::VERBS);
    // One backend's rows are still `show stat` for the metrics.
    assert_eq!(Command::ShowStatServers("web".into()).verb(), "show_stat");
}

#[test]
fn one_backends_server_rows_render_and_parse_as_show_stat() {
    let command = Command::ShowStatServers("web".into());
    assert_eq!(command.render().unwrap(), "show stat web 4 -1");
    assert!(Command::ShowStatServers("web 1".into()).render().is_err());
    let text = "# pxname,svname,qcur,scur,stot,status,weight,type,check_status,addr\n\
                web,web1,0,3,10,UP,1,2,L7OK,10.0.0.1:80\n";
    match command.classify(&reply(text), "test") {
        Ok(Reply::Stat(rows)) => assert_eq!(rows[0].sessions, 3),
        other => panic!("expected stat rows, got {other:?}"),
    }
    assert!(matches!(
        command.classify(&reply("No such backend.\n"), "test"),
        Err(CommandError::NoSuchBackend { .. })
    ));
}
