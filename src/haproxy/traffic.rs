//! A server's request and error counters from `show stat`, for the post-restore watch. Pure.
//!
//! The counters are cumulative (since HAProxy started, or since `clear counters`): the watch
//! compares two readings. `rtime` is not a counter but HAProxy's average response time over the
//! server's last 1024 requests, taken as it is.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What a server has answered so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// HTTP requests (`req_tot`), or sessions (`stot`) for a TCP backend.
    pub requests: u64,
    /// 5xx responses, connection errors and response errors (`hrsp_5xx + econ + eresp`).
    pub errors: u64,
    /// Average response time in ms over the last 1024 requests (`rtime`), when reported.
    pub rtime_ms: Option<u64>,
}

/// Where the traffic columns are in one `show stat` reply (found by header name).
#[derive(Debug, Clone, Copy)]
pub(super) struct TrafficColumns {
    req_tot: Option<usize>,
    stot: Option<usize>,
    hrsp_5xx: Option<usize>,
    econ: Option<usize>,
    eresp: Option<usize>,
    rtime: Option<usize>,
}

impl TrafficColumns {
    pub(super) fn find(columns: &HashMap<&str, usize>) -> Self {
        let at = |name: &str| columns.get(name).copied();
        Self {
            req_tot: at("req_tot"),
            stot: at("stot"),
            hrsp_5xx: at("hrsp_5xx"),
            econ: at("econ"),
            eresp: at("eresp"),
            rtime: at("rtime"),
        }
    }

    /// Empty cells (a TCP backend has no `req_tot`, a server no `hrsp_5xx`) count as absent.
    pub(super) fn read(&self, cells: &[&str]) -> Traffic {
        let number = |i: Option<usize>| {
            i.and_then(|i| cells.get(i))
                .and_then(|cell| cell.trim().parse::<u64>().ok())
        };
        let errors = [self.hrsp_5xx, self.econ, self.eresp]
            .into_iter()
            .filter_map(number)
            .sum();
        Traffic {
            requests: number(self.req_tot).or(number(self.stot)).unwrap_or(0),
            errors,
            rtime_ms: number(self.rtime),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(header: &str, line: &str) -> Traffic {
        let columns: HashMap<&str, usize> = header
            .split(',')
            .enumerate()
            .map(|(i, name)| (name, i))
            .collect();
        let cells: Vec<&str> = line.split(',').collect();
        TrafficColumns::find(&columns).read(&cells)
    }

    #[test]
    fn counters_by_header_name_with_tcp_and_missing_cells() {
        #[rustfmt::skip]
        let table = [
            ("stot,req_tot,hrsp_5xx,econ,eresp,rtime", "9,7,2,1,1,12",
             Traffic { requests: 7, errors: 4, rtime_ms: Some(12) }),
            // A TCP backend: no req_tot, no hrsp_5xx; sessions count as requests.
            ("stot,req_tot,hrsp_5xx,econ,eresp,rtime", "9,,,1,,3",
             Traffic { requests: 9, errors: 1, rtime_ms: Some(3) }),
            ("rtime,eresp,econ,hrsp_5xx,req_tot", ",0,0,5,50",
             Traffic { requests: 50, errors: 5, rtime_ms: None }),
            ("pxname,svname", "be,web1", Traffic::default()),
            ("req_tot,hrsp_5xx", "x,-1", Traffic::default()),
        ];
        for (header, line, expected) in table {
            assert_eq!(read(header, line), expected, "{header} / {line}");
        }
    }
}
