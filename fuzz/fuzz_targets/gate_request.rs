//! The Docker API gate's request classification (`gate::classify`): line 1 is
//! `METHOD PATH[?QUERY]`, the parts hyper hands the gate for every request a client sends to its
//! socket. It must never panic, and a gated request must name a container.
#![no_main]
use haproxy_drain::gate::classify::{classify, Class};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let line = text.lines().next().unwrap_or_default();
    let (method, target) = line.split_once(' ').unwrap_or(("POST", line));
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if let Class::Gated(gated) = classify(method, path, query) {
        assert!(
            !gated.container.trim_start_matches('/').is_empty(),
            "gated without a container: {line:?}"
        );
        let _ = gated.kind.terminates(15);
        let _ = gated.kind.as_str();
    }
});
