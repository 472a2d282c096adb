//! `roll --watch` and `--rollback-on-failure`: a container is done only once its server has
//! passed the post-restore watch, and one that fails it can be put back on its previous image.
//!
//! The verdict is the daemon's (`controller::restore_watch`): a server it finds clearly worse
//! than its peers is drained and shown `failed` in `status`. The roll waits the window it was
//! given after each container and stops at a `failed` server, naming it; the containers not
//! reached yet are untouched. With `--rollback-on-failure` the failed container is stopped,
//! recreated from its own configuration on the image ID it ran before the roll, started and
//! handed back with `ready` (which is what clears the failed mark); the roll still fails.

use std::time::Duration;

use tokio::time::Instant;

use super::run::Runner;
use super::{RollSpec, StepKind};
use crate::controller::ServerView;

/// How often the roll looks at the server during its watch.
const WATCH_POLL: Duration = Duration::from_millis(200);
/// Past the window: the daemon's last reading (every 500 ms) and the start of the drain of a
/// bad server (from which `status` says `failed`) take a moment.
const WATCH_GRACE: Duration = Duration::from_secs(1);

impl Runner {
    /// The image ID to put back when this container fails (`--rollback-on-failure`).
    pub(super) async fn previous_image(
        &self,
        name: &str,
        spec: &RollSpec,
    ) -> Result<Option<String>, String> {
        if !spec.rollback_on_failure || spec.image.is_none() {
            return Ok(None);
        }
        self.docker
            .image_id(name)
            .await
            .map_err(|e| format!("{name}: cannot read its image for --rollback-on-failure: {e}"))
    }

    /// Waits out the watch window; fails as soon as the daemon marks the server failed.
    pub(super) async fn watch_step(&self, name: &str, spec: &RollSpec) -> Result<(), String> {
        let Some(window) = spec.watch else {
            return Ok(());
        };
        self.step(Some(name), StepKind::Watch, async {
            let deadline = Instant::now() + window + WATCH_GRACE;
            loop {
                let views = self.controller.status().await.map_err(|e| e.to_string())?;
                let view = views.iter().find(|v| v.container.as_deref() == Some(name));
                if let Some(view) = view.filter(|v| v.phase == "failed") {
                    return Err(failed_message(view));
                }
                if Instant::now() >= deadline {
                    let server = view.map_or(String::from("its server"), server_name);
                    return Ok(format!("{server} passed the post-restore watch"));
                }
                tokio::time::sleep(WATCH_POLL).await;
            }
        })
        .await
    }

    /// Without `--watch` the roll does not wait for verdicts, but it does not go on past a
    /// container the daemon has failed meanwhile either: the message naming it, if one is.
    pub(super) async fn failed_among(
        &self,
        names: impl Iterator<Item = &String>,
    ) -> Option<String> {
        let names: Vec<&String> = names.collect();
        if names.is_empty() {
            return None;
        }
        let views = self.controller.status().await.ok()?;
        views
            .iter()
            .filter(|v| v.phase == "failed")
            .find(|v| {
                names
                    .iter()
                    .any(|n| v.container.as_deref() == Some(n.as_str()))
            })
            .map(|v| {
                let name = v.container.as_deref().unwrap_or("-");
                format!("{name}: {}", failed_message(v))
            })
    }

    /// Puts `image` back on the container after `error`; returns the roll's error, which says
    /// whether the rollback worked.
    pub(super) async fn roll_back(
        &self,
        name: &str,
        image: &str,
        spec: &RollSpec,
        error: String,
    ) -> String {
        let back = RollSpec {
            image: Some(image.to_string()),
            ..spec.clone()
        };
        let short: String = image
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
        let rolled = async {
            self.replace_recorded(name, &back).await?;
            self.step(Some(name), StepKind::Rollback, async {
                let target = crate::controller::Target::Container(name.to_string());
                let report = self
                    .ready_when_known(target, spec.step_timeout)
                    .await
                    .map_err(|e| e.to_string())?;
                if report.in_rotation {
                    Ok(format!("{} back in rotation on {short}", report.server))
                } else {
                    Err(format!("{} is not back in rotation", report.server))
                }
            })
            .await
        };
        match rolled.await {
            Ok(()) => format!("{error}; rolled back: {name} runs its previous image {short} again"),
            Err(rollback) => format!("{error}; the rollback failed too: {rollback}"),
        }
    }
}

fn server_name(view: &ServerView) -> String {
    format!("{}/{}", view.backend, view.server)
}

fn failed_message(view: &ServerView) -> String {
    format!(
        "{} failed the post-restore watch (clearly worse than its peers; the daemon's log says \
         why) and is out of rotation until `haproxy-drain ready`",
        server_name(view)
    )
}
