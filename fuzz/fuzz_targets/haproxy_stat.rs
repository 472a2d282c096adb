//! `show stat` CSV as HAProxy (or whatever answers on its socket) prints it.
#![no_main]
use haproxy_drain::haproxy::stat as parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(rows) = parse::parse_stat(&text) {
        for row in rows {
            // Derived views must not panic on whatever the columns held.
            let _ = row.status.is_up();
        }
    }
});
