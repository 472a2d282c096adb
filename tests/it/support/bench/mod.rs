//! The rollout benchmark (issue #11), shared by `benches/rollout.rs` and the short variant in
//! `tests/it/bench_rollout_short.rs`: a load that records every request's latency, a sampler of
//! HAProxy's rotation, the daemon's CPU and memory, the scenarios, the report and its plot; and
//! the scale bench's parts (`benches/scale.rs`): sizes, the restart storm, the session poll.
#![allow(dead_code)] // the bench and the short test use different parts

pub mod cost;
pub mod exposition;
pub mod load;
pub mod plot;
pub mod report;
pub mod rotation;
pub mod scale;
pub mod scenarios;
pub mod session_poll;
pub mod storm;

/// A positive number from the environment, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The first line a shell command prints (machine facts for the reports), empty on failure.
pub fn shell(command: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}
