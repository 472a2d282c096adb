//! A command's reply classified: the first byte picks the command, the second whether HAProxy
//! printed the next prompt, the rest is the reply text.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use haproxy_drain::haproxy::types::{AdminState, Health, ServerId, WeightSpec};
use haproxy_drain::haproxy::{Command, RawReply};
use libfuzzer_sys::fuzz_target;

fn command(pick: u8) -> Command {
    let id = ServerId::new("be", "web1");
    match pick % 14 {
        0 => Command::ShowInfo,
        1 => Command::ShowStat,
        2 => Command::ShowServersState(Some("be".into())),
        3 => Command::ShowBackends,
        4 => Command::GetWeight(id),
        5 => Command::SetWeight(id, WeightSpec::Absolute(0)),
        6 => Command::SetState(id, AdminState::Drain),
        7 => Command::SetAddr {
            server: id,
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: Some(8080),
        },
        8 => Command::SetHealth(id, Health::Down),
        9 => Command::ShutdownSessions(id),
        10 => Command::AddServer {
            server: id,
            addr: "10.0.0.1:8080".into(),
            options: vec!["check".into()],
        },
        11 => Command::DelServer(id),
        12 => Command::Reload,
        _ => Command::Raw("show version".into()),
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, terminated, rest @ ..] = data else {
        return;
    };
    let command = command(*pick);
    let _ = command.render();
    let reply = RawReply {
        text: String::from_utf8_lossy(rest).into_owned(),
        terminated: terminated & 1 == 1,
    };
    let _ = command.classify(&reply, "unix:///fuzz.sock");
});
