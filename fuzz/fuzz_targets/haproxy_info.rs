//! `show info` (`Key: value` lines), `get weight`, `show backend` and the `show stat` status column.
#![no_main]
use haproxy_drain::haproxy::parse;
use haproxy_drain::haproxy::types::ServerStatus;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse::parse_info(&text);
    let _ = parse::parse_weight(&text);
    let _ = parse::parse_backends(&text);
    let _ = ServerStatus::parse(&text).is_up();
});
