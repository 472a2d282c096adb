//! `haproxy-drain status [--json]`: asks the daemon on the control socket first (containers
//! joined, with who holds each server out — see [`super::status_daemon`]); when no daemon
//! answers there, reads HAProxy directly (`--haproxy URL`): one line per backend server, from
//! HAProxy's runtime API (`show stat` + `show servers state`, in one round trip).
//!
//! Building lines and rendering them are pure functions, so a status that comes from elsewhere
//! (e.g. the control socket) can print the same table and JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::control::ControlArgs;
use crate::cli::table::align_columns;
use crate::cli::{status_daemon, CliError};
use crate::duration;
use crate::haproxy::{
    Client, Command, HaproxyAddr, HaproxyError, Reply, RowKind, ServerId, ServerState, StatRow,
};

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// HAProxy runtime API to read: unix:///path/admin.sock, tcp://host:port, or a master CLI
    /// socket with ?worker=1.
    #[arg(long, env = "HAPROXY_DRAIN_HAPROXY", value_parser = parse_addr)]
    pub haproxy: Option<HaproxyAddr>,
    /// Print a JSON array instead of a table.
    #[arg(long, env = "HAPROXY_DRAIN_JSON")]
    pub json: bool,
    /// The fleet budget on etcd instead (`[fleet]`): each backend's budget and who holds it.
    #[arg(long)]
    pub fleet: bool,
    /// Give up on HAProxy after this long.
    #[arg(long, env = "HAPROXY_DRAIN_TIMEOUT", default_value = "2s", value_parser = duration::parse)]
    pub timeout: Duration,
    /// Asked first; `--haproxy` is the fallback when no daemon answers there.
    #[command(flatten)]
    pub control: ControlArgs,
}

fn parse_addr(text: &str) -> Result<HaproxyAddr, String> {
    HaproxyAddr::parse(text).map_err(|e| e.to_string())
}

/// One backend server as `status` shows it. The JSON keys are part of the CLI's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusLine {
    pub backend: String,
    pub server: String,
    /// IP address (empty when HAProxy has none, e.g. an unresolved hostname).
    pub addr: String,
    pub port: Option<u16>,
    /// `show stat` status as HAProxy prints it: `UP`, `UP 1/2`, `DRAIN`, `MAINT`, `no check`, …
    pub state: String,
    pub weight: Option<u32>,
    pub initial_weight: Option<u32>,
    pub sessions: u64,
    /// Last health check result (`L7OK`, `L4TOUT`, …); `None` when checks are off.
    pub check: Option<String>,
}

pub async fn status(args: StatusArgs) -> Result<(), CliError> {
    if args.fleet {
        let fleet = args.control.client().fleet().await?;
        match args.json {
            true => println!(
                "{}",
                serde_json::to_string_pretty(&fleet).unwrap_or_default()
            ),
            false => print!("{}", fleet.render()),
        }
        return Ok(());
    }
    match args.control.client().servers().await {
        Ok(views) => {
            let output = match args.json {
                true => status_daemon::render_json(&views),
                false => status_daemon::render_table(&views),
            };
            println!("{output}");
            return Ok(());
        }
        Err(error) if error.is_no_daemon() && args.haproxy.is_some() => {
            eprintln!("{error}; reading HAProxy directly (no container or owner columns)");
        }
        Err(error) if error.is_no_daemon() => {
            return Err(CliError::Usage(format!(
                "{error}; to read HAProxy directly instead, pass --haproxy unix:///path/to/admin.sock (or HAPROXY_DRAIN_HAPROXY)"
            )));
        }
        Err(error) => return Err(error.into()),
    }
    let Some(addr) = args.haproxy else {
        return Err(CliError::Usage(
            "status needs --haproxy unix:///path/to/admin.sock (or HAPROXY_DRAIN_HAPROXY)".into(),
        ));
    };
    let client = Client::new(addr).with_timeout(args.timeout);
    let lines = read_status(&client)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let output = match args.json {
        true => render_json(&lines),
        false => render_table(&lines),
    };
    println!("{output}");
    Ok(())
}

/// Reads `show stat` and `show servers state` in one round trip and joins them.
pub async fn read_status(client: &Client) -> Result<Vec<StatusLine>, HaproxyError> {
    let mut replies = client
        .batch(&[Command::ShowStat, Command::ShowServersState(None)])
        .await?
        .into_iter();
    let (Some(stat), Some(state)) = (replies.next(), replies.next()) else {
        return Err(HaproxyError::Protocol {
            addr: client.addr().to_string(),
            detail: "fewer replies than commands".into(),
        });
    };
    match (stat?, state?) {
        (Reply::Stat(rows), Reply::ServersState(states)) => Ok(status_lines(&rows, &states)),
        _ => Err(HaproxyError::Protocol {
            addr: client.addr().to_string(),
            detail: "replies of the wrong kind".into(),
        }),
    }
}

/// Joins `show stat` server rows with `show servers state` (weights, address and port split).
pub fn status_lines(rows: &[StatRow], states: &[ServerState]) -> Vec<StatusLine> {
    rows.iter()
        .filter(|row| row.kind == RowKind::Server)
        .map(|row| {
            let id = ServerId::new(row.proxy.as_str(), row.name.as_str());
            let state = states.iter().find(|s| s.id == id);
            let (addr, port) = match state {
                Some(s) => (s.addr.clone(), s.port),
                None => split_host_port(&row.addr),
            };
            StatusLine {
                backend: row.proxy.clone(),
                server: row.name.clone(),
                addr,
                port,
                state: row.status_text.clone(),
                weight: state.map(|s| s.weight).or(row.user_weight).or(row.weight),
                initial_weight: state.map(|s| s.initial_weight),
                sessions: row.sessions,
                check: Some(row.check_status.clone()).filter(|c| !c.is_empty()),
            }
        })
        .collect()
}

fn split_host_port(text: &str) -> (String, Option<u16>) {
    match text.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port.parse().ok(),
        ),
        _ => (text.to_string(), None),
    }
}

/// An aligned table with a header line.
pub fn render_table(lines: &[StatusLine]) -> String {
    let header = [
        "BACKEND", "SERVER", "ADDRESS", "STATE", "WEIGHT", "SESSIONS", "CHECK",
    ]
    .map(String::from);
    let mut cells = vec![header.to_vec()];
    for line in lines {
        let addr = match (line.addr.as_str(), line.port) {
            ("", _) => "-".to_string(),
            (ip, Some(port)) if ip.contains(':') => format!("[{ip}]:{port}"),
            (ip, Some(port)) => format!("{ip}:{port}"),
            (ip, None) => ip.to_string(),
        };
        let number = |n: Option<u32>| n.map_or("-".to_string(), |n| n.to_string());
        cells.push(vec![
            line.backend.clone(),
            line.server.clone(),
            addr,
            line.state.clone(),
            format!("{}/{}", number(line.weight), number(line.initial_weight)),
            line.sessions.to_string(),
            line.check.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    align_columns(&cells)
}

/// A JSON array of [`StatusLine`] objects.
pub fn render_json(lines: &[StatusLine]) -> String {
    serde_json::to_string_pretty(lines).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::parse::parse_servers_state;
    use crate::haproxy::stat::parse_stat;

    const STAT: &str =
        "# pxname,svname,qcur,scur,stot,status,weight,type,check_status,addr,uweight,\n\
        fe,FRONTEND,,3,9,OPEN,,0,,,,\n\
        be,web1,0,2,9,UP,100,2,L7OK,172.18.0.2:8080,100,\n\
        be,web2,0,0,9,DRAIN,0,2,L7OK,172.18.0.3:8080,50,\n\
        be,dyn6,0,0,0,no check,1,2,,[::1]:81,1,\n\
        be,BACKEND,0,2,9,UP,100,1,,,,\n";
    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_check_result srv_check_health srv_check_state srv_port\n\
        4 be 1 web1 172.18.0.2 2 0 100 100 3 3 6 8080\n\
        4 be 2 web2 172.18.0.3 2 8 50 100 3 3 6 8080\n";

    fn lines() -> Vec<StatusLine> {
        status_lines(
            &parse_stat(STAT).unwrap(),
            &parse_servers_state(STATE).unwrap(),
        )
    }

    #[test]
    fn lines_join_stat_and_state_for_servers_only() {
        let lines = lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].state, "DRAIN");
        assert_eq!(
            (lines[1].weight, lines[1].initial_weight),
            (Some(50), Some(100))
        );
        assert_eq!(lines[0].sessions, 2);
        assert_eq!(lines[0].check.as_deref(), Some("L7OK"));
        // Not in `show servers state`: fall back to the stat row's address.
        assert_eq!(
            (
                lines[2].addr.as_str(),
                lines[2].port,
                lines[2].check.as_deref()
            ),
            ("::1", Some(81), None)
        );
    }

    #[test]
    fn table_is_aligned_and_json_has_the_documented_keys() {
        let table = render_table(&lines());
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 4);
        let column = rows[0].find("STATE").unwrap();
        assert_eq!(&rows[2][column..column + 5], "DRAIN");
        assert!(
            rows[2].contains("50/100") && rows[3].contains("[::1]:81"),
            "{table}"
        );

        let json: serde_json::Value = serde_json::from_str(&render_json(&lines())).unwrap();
        let keys: Vec<&String> = json[0].as_object().unwrap().keys().collect();
        let mut expected = [
            "backend",
            "server",
            "addr",
            "port",
            "state",
            "weight",
            "initial_weight",
            "sessions",
            "check",
        ];
        expected.sort();
        let mut keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, expected);
    }
}
