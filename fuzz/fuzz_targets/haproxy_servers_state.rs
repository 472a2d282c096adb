//! `show servers state` (format version 1, space-separated fields).
#![no_main]
use haproxy_drain::haproxy::{agent_state, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(states) = parse::parse_servers_state(&text) {
        for state in states {
            let _ = state.admin.is_maint();
            let _ = state.admin.is_drain();
            let _ = state.admin.as_admin_state();
        }
    }
    let _ = agent_state::parse_agent_checks(&text);
});
