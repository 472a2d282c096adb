//! Control API request bodies (what `serde_json::from_slice` sees behind the axum `Json`
//! extractor) and the `target` strings and path segments they carry.
#![no_main]
use haproxy_drain::api::wire::{DrainBody, ReadyBody, RollBody};
use haproxy_drain::controller::Target;
use haproxy_drain::haproxy::types::ServerId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<DrainBody>(data) {
        let _ = Target::parse(body.target.trim()).to_string();
        let _ = serde_json::to_vec(&body);
    }
    if let Ok(body) = serde_json::from_slice::<ReadyBody>(data) {
        let _ = Target::parse(body.target.trim()).to_string();
    }
    if let Ok(body) = serde_json::from_slice::<RollBody>(data) {
        let _ = serde_json::to_vec(&body);
    }
    // `/v1/rolls/{id}` and the target string themselves.
    let text = String::from_utf8_lossy(data);
    let _ = Target::parse(&text).to_string();
    if let Some(id) = ServerId::parse(&text) {
        let _ = id.to_string();
    }
});
