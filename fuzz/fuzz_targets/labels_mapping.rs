//! Container labels → mapping. Line 1 is the container name, every further line `key=value`
//! (a label); resolved with no config and with a config whose rules use both templates.
#![no_main]
use std::collections::HashMap;
use std::sync::OnceLock;

use haproxy_drain::config::{Config, ServerTemplate};
use haproxy_drain::mapping;
use libfuzzer_sys::fuzz_target;

const RULES: &str = r#"
[[rules]]
match = "pxApp_*"
backend = "pxapp_cluster"
server = "app_{number}"
port = 8080
[[rules]]
match = "*web?"
backend = "be"
server = "{name}"
"#;

fn configs() -> &'static [Config; 2] {
    static CONFIGS: OnceLock<[Config; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| [Config::default(), Config::parse(RULES).expect("rules parse")])
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let name = lines.next().unwrap_or_default();
    let labels: HashMap<String, String> = lines
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = mapping::has_our_labels(&labels);
    if let Ok(template) = ServerTemplate::parse(name) {
        let _ = template.render(name);
    }
    let _ = mapping::glob_match(name, name);
    for config in configs() {
        if let Err(error) = mapping::resolve(name, &labels, config) {
            let _ = error.kind();
            let _ = error.to_string();
        }
    }
});
