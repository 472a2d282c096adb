//! `GET /containers/{id}/json` and `GET /containers/json` bodies → our ContainerInfo.
#![no_main]
use bollard::models::{ContainerInspectResponse, ContainerSummary};
use haproxy_drain::docker::convert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(inspect) = serde_json::from_slice::<ContainerInspectResponse>(data) {
        let _ = convert::container_from_inspect(&inspect);
    }
    if let Ok(list) = serde_json::from_slice::<Vec<ContainerSummary>>(data) {
        for summary in &list {
            let _ = convert::container_from_summary(summary, haproxy_drain::docker::DEFAULT_STOP_SIGNAL);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = convert::health_from_status_text(text);
        let _ = haproxy_drain::docker::parse_stop_signal(Some(text));
    }
});
