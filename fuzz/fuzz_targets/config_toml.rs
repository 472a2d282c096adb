//! The TOML configuration file: parse and validate, then use what validation let through.
#![no_main]
use haproxy_drain::config::{Budget, Config, DrainMode};
use haproxy_drain::duration::parse as parse_duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_duration(text);
    let _ = DrainMode::parse(text);
    if let Some(budget) = Budget::parse(text) {
        for total in [0, 1, 2, 7, usize::MAX] {
            let _ = budget.max_out(total);
        }
    }
    match Config::parse(text) {
        Ok(config) => {
            for rule in &config.rules {
                let _ = config.budget_for(&rule.backend).max_out(3);
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
