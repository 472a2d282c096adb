//! Pure parsers for runtime API replies. They never panic: anything unexpected is a
//! [`ParseError`] or, for free-form fields, kept verbatim.

use std::collections::HashMap;

use super::error::ParseError;
use super::types::{
    AdminFlags, Info, OpState, RowKind, ServerId, ServerState, ServerStatus, StatRow, Weight,
};

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

impl ServerStatus {
    /// The `status` column of `show stat`; unknown texts are kept as [`ServerStatus::Other`].
    pub fn parse(text: &str) -> ServerStatus {
        let text = text.trim();
        if let Some(base) = simple_status(text) {
            return base;
        }
        // `UP 1/3`, `DOWN 1/2`, `NOLB 1/2`: a base state with a health counter in transition.
        if let Some((base, counter)) = text.split_once(' ') {
            if let (Some(base), Some((current, needed))) =
                (simple_status(base), counter.split_once('/'))
            {
                if let (Ok(current), Ok(needed)) = (current.parse(), needed.parse()) {
                    return ServerStatus::Transition {
                        base: Box::new(base),
                        current,
                        needed,
                    };
                }
            }
        }
        ServerStatus::Other(text.to_string())
    }

    /// True for the states in which HAProxy may send new traffic to the server.
    pub fn is_up(&self) -> bool {
        match self {
            ServerStatus::Up | ServerStatus::NoCheck => true,
            ServerStatus::Transition { base, .. } => **base == ServerStatus::Up,
            _ => false,
        }
    }
}

fn simple_status(text: &str) -> Option<ServerStatus> {
    Some(match text {
        "UP" => ServerStatus::Up,
        "DOWN" => ServerStatus::Down,
        "MAINT" => ServerStatus::Maint,
        "DRAIN" => ServerStatus::Drain,
        "NOLB" => ServerStatus::Nolb,
        "no check" => ServerStatus::NoCheck,
        _ => return None,
    })
}

/// `show stat` CSV: every row (frontends, backends, servers, listeners), columns found by header
/// name so that HAProxy versions with more or fewer columns parse the same.
pub fn parse_stat(text: &str) -> Result<Vec<StatRow>, ParseError> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header = lines
        .next()
        .and_then(|line| line.strip_prefix("# "))
        .ok_or_else(|| ParseError::new("show stat", "no `# pxname,svname,…` header line"))?;
    let columns: HashMap<&str, usize> = header
        .split(',')
        .enumerate()
        .map(|(i, name)| (name, i))
        .collect();
    let column = |name: &'static str| {
        columns
            .get(name)
            .copied()
            .ok_or_else(|| ParseError::new("show stat", format!("no `{name}` column")))
    };
    let idx = StatColumns {
        pxname: column("pxname")?,
        svname: column("svname")?,
        kind: column("type")?,
        status: column("status")?,
        weight: column("weight")?,
        scur: column("scur")?,
        qcur: column("qcur")?,
        stot: column("stot")?,
        check_status: column("check_status")?,
        addr: column("addr")?,
        uweight: columns.get("uweight").copied(),
        check_health: columns.get("check_health").copied(),
        check_rise: columns.get("check_rise").copied(),
        check_fall: columns.get("check_fall").copied(),
        lastchg: columns.get("lastchg").copied(),
    };
    lines
        .enumerate()
        .map(|(number, line)| stat_row(&idx, line, number + 2))
        .collect()
}

struct StatColumns {
    pxname: usize,
    svname: usize,
    kind: usize,
    status: usize,
    weight: usize,
    scur: usize,
    qcur: usize,
    stot: usize,
    check_status: usize,
    addr: usize,
    uweight: Option<usize>,
    check_health: Option<usize>,
    check_rise: Option<usize>,
    check_fall: Option<usize>,
    lastchg: Option<usize>,
}

fn stat_row(idx: &StatColumns, line: &str, line_number: usize) -> Result<StatRow, ParseError> {
    let cells: Vec<&str> = line.split(',').collect();
    let cell = |i: usize| cells.get(i).copied().unwrap_or("");
    let optional = |i: Option<usize>| i.map(cell).and_then(|v| v.parse::<u32>().ok());
    let kind = match cell(idx.kind) {
        "0" => RowKind::Frontend,
        "1" => RowKind::Backend,
        "2" => RowKind::Server,
        "3" => RowKind::Listener,
        other => {
            return Err(ParseError::new(
                "show stat",
                format!("line {line_number}: unknown type {other:?}"),
            ))
        }
    };
    let status_text = cell(idx.status).to_string();
    Ok(StatRow {
        proxy: cell(idx.pxname).to_string(),
        name: cell(idx.svname).to_string(),
        kind,
        status: ServerStatus::parse(&status_text),
        status_text,
        weight: cell(idx.weight).parse().ok(),
        user_weight: optional(idx.uweight),
        sessions: cell(idx.scur).parse().unwrap_or(0),
        queued: cell(idx.qcur).parse().unwrap_or(0),
        total_sessions: cell(idx.stot).parse().unwrap_or(0),
        check_status: cell(idx.check_status).to_string(),
        check_health: optional(idx.check_health),
        check_rise: optional(idx.check_rise),
        check_fall: optional(idx.check_fall),
        last_change: idx.lastchg.map(cell).and_then(|v| v.parse().ok()),
        addr: cell(idx.addr).to_string(),
    })
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

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
