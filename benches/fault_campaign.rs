//! The fault campaign (issue 8), full size: `cargo bench --bench fault_campaign` (or `make bench`).
//!
//! 50 rollouts (`haproxy-drain roll` of 3 containers to the other image version) under load
//! through a real HAProxy without `retry-on`; in 25 the daemon is SIGKILLed at a random moment
//! and started again 0–2 s later with the same state file, in 10 HAProxy is reloaded, in 10 the
//! Docker event stream is cut. The logic and the checks after each rollout live in
//! tests/it/support/campaign.rs (the integration test runs a 4-rollout variant of it).
//!
//! `FAULT_ROLLOUTS=N` scales the campaign down (faults in the same proportions);
//! `CAMPAIGN_SEED` replays a run. Exits 1 when a rollout had a problem.

#[path = "../tests/it/support/mod.rs"]
mod support;

use support::campaign::{run, seed_from_env, CampaignOptions};

fn main() {
    let mut options = CampaignOptions::full(seed_from_env());
    if let Some(n) = std::env::var("FAULT_ROLLOUTS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|n| *n > 0 && *n < options.rollouts)
    {
        let scale = |count: usize| (count * n).div_ceil(options.rollouts);
        options = CampaignOptions {
            rollouts: n,
            kills: scale(options.kills),
            reloads: scale(options.reloads),
            cuts: scale(options.cuts),
            seed: options.seed,
        };
    }
    let report = support::block_on(run(options));
    println!("{}", report.summary());
    let problems = report.problems();
    if !problems.is_empty() {
        eprintln!("{}", problems.join("\n\n"));
        std::process::exit(1);
    }
}
