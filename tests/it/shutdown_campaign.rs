//! The fault campaign's short variant (the full one is `cargo bench --bench fault_campaign`):
//! four rollouts of 3 containers under load — one without a fault, then one daemon SIGKILL, one
//! HAProxy reload and one Docker stream cut, in random order at random moments
//! (tests/it/support/campaign.rs; `CAMPAIGN_SEED` replays a run).

use crate::support::campaign::{run, seed_from_env, CampaignOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_campaign_short() {
    let report = run(CampaignOptions::short(seed_from_env())).await;
    let summary = report.summary();
    eprintln!("{summary}");
    let problems = report.problems();
    assert!(
        problems.is_empty(),
        "fault campaign:\n{}\n\n{summary}",
        problems.join("\n\n")
    );
    assert_eq!(report.rollouts.len(), 4);
}
