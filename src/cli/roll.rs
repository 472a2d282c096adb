//! `haproxy-drain roll`: start a roll on the daemon and follow it, one line per step.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::control::{seconds, CliError, ControlArgs};
use crate::api::wire::RollBody;
use crate::duration::{self, millis};
use crate::roll::{RollProgress, RollState, RollStep, StepState};

/// How often the progress is polled.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, clap::Args)]
pub struct RollArgs {
    /// The containers to replace, in this order.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Recreate each container from its own configuration with this image (default: restart).
    #[arg(long)]
    pub image: Option<String>,
    /// Pull the image first.
    #[arg(long, requires = "image")]
    pub pull: bool,
    /// How many containers may be out of rotation at once.
    #[arg(long, default_value_t = 1)]
    pub max_unavailable: usize,
    /// Start each new container beside the old one and put it in rotation before the old one is
    /// drained: the backend never has fewer servers in rotation. Refuses containers that cannot
    /// run twice at once (host networking, a fixed host port or IP, a read-write named volume).
    #[arg(long)]
    pub surge: bool,
    /// With --surge: how many containers are replaced at once (implies --surge).
    #[arg(long, value_name = "N")]
    pub max_surge: Option<usize>,
    /// Per container: how long to wait for the drain, and for it to be healthy again.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub timeout: Duration,
    /// After each container, wait this long (the daemon's `watch` window) for the post-restore
    /// watch before the next one; a server it fails stops the roll.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, conflicts_with = "surge")]
    pub watch: Option<Duration>,
    /// With --image and --watch: a container that fails its watch or does not come back is
    /// recreated on the image it ran before and put back in rotation (the roll still fails).
    #[arg(long, requires_all = ["image", "watch"])]
    pub rollback_on_failure: bool,
    #[command(flatten)]
    pub control: ControlArgs,
}

pub async fn roll(args: RollArgs) -> Result<(), CliError> {
    if args.max_unavailable == 0 {
        return Err(CliError::Usage(
            "--max-unavailable must be at least 1".into(),
        ));
    }
    if args.max_surge == Some(0) {
        return Err(CliError::Usage("--max-surge must be at least 1".into()));
    }
    let surge = args.surge || args.max_surge.is_some();
    let client = args.control.client();
    let body = RollBody {
        surge,
        max_surge: args.max_surge,
        containers: args.containers.clone(),
        image: args.image.clone(),
        pull: args.pull,
        max_unavailable: Some(args.max_unavailable),
        timeout_ms: Some(millis(args.timeout)),
        watch_ms: args.watch.map(millis),
        rollback_on_failure: args.rollback_on_failure,
    };
    let created = client.start_roll(&body).await?;
    let what = match (&args.image, surge) {
        (Some(image), true) => format!("surge to {image}"),
        (None, true) => "surge".to_string(),
        (Some(image), false) => format!("recreate with {image}"),
        (None, false) => "restart".to_string(),
    };
    let at_once = if surge {
        args.max_surge.unwrap_or(1)
    } else {
        args.max_unavailable
    };
    println!(
        "{}: {what} {} ({at_once} at a time)",
        created.id,
        args.containers.join(", "),
    );
    let tty = std::io::stdout().is_terminal();
    let width = args.containers.iter().map(String::len).max().unwrap_or(0);
    let mut printed = HashSet::new();
    loop {
        let progress = client.roll(&created.id).await?;
        show(&progress, &mut printed, width, tty);
        match progress.state {
            RollState::Running => tokio::time::sleep(POLL).await,
            RollState::Succeeded => {
                println!(
                    "{} succeeded: {} container(s) in {}",
                    progress.id,
                    progress.containers.len(),
                    seconds(progress.elapsed_ms)
                );
                return Ok(());
            }
            RollState::Failed => {
                return Err(CliError::Failed(format!(
                    "{} failed after {}: {}",
                    progress.id,
                    seconds(progress.elapsed_ms),
                    progress.error.as_deref().unwrap_or("no reason given")
                )));
            }
        }
    }
}

/// Prints every step that finished since the last poll; on a terminal, also the running one
/// on a line that the next poll overwrites.
fn show(progress: &RollProgress, printed: &mut HashSet<usize>, width: usize, tty: bool) {
    let mut out = std::io::stdout().lock();
    if tty {
        let _ = write!(out, "\r\x1b[K");
    }
    for (index, step) in progress.steps.iter().enumerate() {
        if step.state != StepState::Running && printed.insert(index) {
            let _ = writeln!(out, "{}", step_line(step, width));
        }
    }
    if tty {
        if let Some(running) = progress
            .steps
            .iter()
            .rev()
            .find(|s| s.state == StepState::Running)
        {
            let _ = write!(out, "{}", step_line(running, width));
        }
    }
    let _ = out.flush();
}

/// `   +1.20s  web1  drain      ok      0.41s  be/web1 drained`
pub fn step_line(step: &RollStep, width: usize) -> String {
    let state = match step.state {
        StepState::Running => "…",
        StepState::Done => "ok",
        StepState::Failed => "FAILED",
    };
    format!(
        "{:>9}  {:<width$}  {:<9}  {:<6}  {:>7}  {}",
        format!("+{}", seconds(step.started_ms)),
        step.container.as_deref().unwrap_or("-"),
        step.kind.as_str(),
        state,
        seconds(step.elapsed_ms),
        step.detail.as_deref().unwrap_or(""),
    )
    .trim_end()
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::StepKind;

    #[test]
    fn step_lines_are_aligned_and_name_the_outcome() {
        let step = RollStep {
            container: Some("web1".into()),
            kind: StepKind::Drain,
            state: StepState::Done,
            started_ms: 1200,
            elapsed_ms: 410,
            detail: Some("be/web1 drained".into()),
        };
        assert_eq!(
            step_line(&step, 6),
            "   +1.20s  web1    drain      ok        410ms  be/web1 drained"
        );
        let failed = RollStep {
            container: None,
            kind: StepKind::Preflight,
            state: StepState::Failed,
            started_ms: 0,
            elapsed_ms: 3,
            detail: None,
        };
        assert_eq!(
            step_line(&failed, 4),
            "     +0ms  -     preflight  FAILED      3ms"
        );
    }
}
