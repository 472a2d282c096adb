//! One `/events` JSON line → bollard's EventMessage → our ContainerEvent.
#![no_main]
use bollard::models::EventMessage;
use haproxy_drain::docker::event_convert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = serde_json::from_slice::<EventMessage>(data) else {
        return;
    };
    if let Some(event) = event_convert::container_event(message) {
        let _ = event_convert::since_param(event.time_nano);
        if let Some(signal) = event.attributes.get("signal") {
            let _ = haproxy_drain::docker::parse_signal(signal);
        }
    }
});
