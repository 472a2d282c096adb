//! Pure parsers for runtime API replies other than `show stat` ([`super::stat`]): `show info`,
//! `get weight`, `show backend`, `show servers state`. They never panic: anything unexpected is
//! a [`ParseError`].

use std::collections::HashMap;

use super::error::ParseError;
use super::types::{AdminFlags, Info, OpState, ServerId, ServerState, Weight};

/// `show info`: `Key: value` lines; `Pid`, `Uptime_sec` and `Version` are required.
pub fn parse_info(text: &str) -> Result<Info, ParseError> {
    let fields: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim(), value.trim()))
        .collect();
    let field = |key: &str| {
        fields
            .get(key)
            .copied()
            .ok_or_else(|| ParseError::new("show info", format!("no `{key}` line")))
    };
    let number = |key: &str| -> Result<u64, ParseError> {
        field(key)?
            .parse()
            .map_err(|_| ParseError::new("show info", format!("`{key}` is not a number")))
    };
    let pid = u32::try_from(number("Pid")?)
        .map_err(|_| ParseError::new("show info", "`Pid` out of range"))?;
    Ok(Info {
        pid,
        uptime_sec: number("Uptime_sec")?,
        version: field("Version")?.to_string(),
        stopping: fields.get("Stopping").is_some_and(|v| *v == "1"),
    })
}

/// `get weight`: `100 (initial 100)`.
pub fn parse_weight(text: &str) -> Result<Weight, ParseError> {
    let bad = || {
        ParseError::new(
            "get weight",
            format!("expected `N (initial M)`, got {text:?}"),
        )
    };
    let line = text.trim();
    let (current, rest) = line.split_once(" (initial ").ok_or_else(bad)?;
    let initial = rest.strip_suffix(')').ok_or_else(bad)?;
    Ok(Weight {
        current: current.trim().parse().map_err(|_| bad())?,
        initial: initial.trim().parse().map_err(|_| bad())?,
    })
}

/// `show backend`: `# name` then one backend per line.
pub fn parse_backends(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `show servers state [backend]`: format version `1`, a `# be_id be_name …` header, then one
/// space-separated line per server. Columns are found by header name.
pub fn parse_servers_state(text: &str) -> Result<Vec<ServerState>, ParseError> {
    const WHAT: &str = "show servers state";
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    match lines.next().map(str::trim) {
        Some("1") => {}
        other => {
            return Err(ParseError::new(
                WHAT,
                format!("expected format version 1, got {other:?}"),
            ))
        }
    }
    let header = lines
        .next()
        .and_then(|line| line.strip_prefix("# "))
        .ok_or_else(|| ParseError::new(WHAT, "no `# be_id be_name …` header line"))?;
    let columns: HashMap<&str, usize> = header
        .split_whitespace()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    let column = |name: &'static str| {
        columns
            .get(name)
            .copied()
            .ok_or_else(|| ParseError::new(WHAT, format!("no `{name}` column")))
    };
    let names = [
        "be_id",
        "be_name",
        "srv_id",
        "srv_name",
        "srv_addr",
        "srv_op_state",
        "srv_admin_state",
        "srv_uweight",
        "srv_iweight",
        "srv_check_result",
        "srv_check_health",
        "srv_check_state",
        "srv_port",
    ];
    let mut idx = [0usize; 13];
    for (slot, name) in idx.iter_mut().zip(names) {
        *slot = column(name)?;
    }
    lines
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let cell = |i: usize| -> Result<&str, ParseError> {
                cells
                    .get(idx[i])
                    .copied()
                    .ok_or_else(|| ParseError::new(WHAT, format!("short line {line:?}")))
            };
            let number = |i: usize| -> Result<u32, ParseError> {
                let value = cell(i)?;
                value.parse().map_err(|_| {
                    ParseError::new(WHAT, format!("`{}` is not a number: {value:?}", names[i]))
                })
            };
            let op_state = match number(5)? {
                0 => OpState::Stopped,
                1 => OpState::Starting,
                2 => OpState::Running,
                3 => OpState::Stopping,
                other => {
                    return Err(ParseError::new(
                        WHAT,
                        format!("unknown srv_op_state {other}"),
                    ))
                }
            };
            let addr = match cell(4)? {
                "-" => String::new(),
                addr => addr.to_string(),
            };
            Ok(ServerState {
                backend_id: number(0)?,
                id: ServerId::new(cell(1)?, cell(3)?),
                server_id: number(2)?,
                addr,
                port: cell(12)?.parse().ok().filter(|&p: &u16| p != 0),
                op_state,
                admin: AdminFlags(number(6)?),
                weight: number(7)?,
                initial_weight: number(8)?,
                check_result: number(9)?,
                check_health: number(10)?,
                check_state: number(11)?,
            })
        })
        .collect()
}

/// Parsers on replies captured from HAProxy 2.6.12, and property tests that no input panics.
#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::haproxy::stat::parse_stat;
    use crate::haproxy::types::{AdminState, OpState, ServerStatus};

    const SERVERS_STATE: &str = "1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 be 1 web1 172.18.0.2 2 0 100 100 24 15 3 3 6 0 0 0 - 8080 - 0 0 - - 0
4 be 2 web2 172.18.0.3 2 8 100 100 0 15 3 3 6 0 0 0 - 8080 - 0 0 - - 0
4 be 3 web3 172.18.0.4 0 1 100 100 0 15 3 0 14 0 0 0 - 8080 - 0 0 - - 0
4 be 4 dyn7 - 0 1 1 1 0 1 0 0 2 0 0 0 web1.local 0 - 0 0 - - 0

";

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
}
