//! What HAProxy's agent check sends the responder (`agent-send`, normally `backend/server\n`):
//! any bytes get exactly one line of the agent protocol's words back, and never a panic.
#![no_main]
use haproxy_drain::agent::AgentTable;
use haproxy_drain::haproxy::{AdminState, ServerId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let table = AgentTable::default();
    table.set_admin(&ServerId::new("be", "web1"), AdminState::Drain);
    let (_, line) = table.answer(&String::from_utf8_lossy(data));
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line:?}");
    for word in line.trim_end().split(' ') {
        let known = ["up", "ready", "drain", "maint"].contains(&word)
            || word.strip_suffix('%').is_some_and(|n| n.parse::<u32>().is_ok());
        assert!(known, "{line:?}");
    }
});
