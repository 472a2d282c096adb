//! `haproxy-drain drain` and `haproxy-drain ready`: take a server out of rotation before a deploy
//! tool stops its container, and put it back.

use std::time::Duration;

use super::control::{seconds, CliError, ControlArgs};
use crate::api::client::ClientError;
use crate::api::wire::{DrainBody, ReadyBody};
use crate::controller::handle::ControlError;
use crate::duration::{self, millis};

#[derive(Debug, Clone, clap::Args)]
pub struct DrainArgs {
    /// A container name, or `backend/server`.
    #[arg(value_name = "CONTAINER|BACKEND/SERVER")]
    pub target: String,
    /// Return only once the server's sessions reached 0 (on every HAProxy).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits for sessions to reach 0.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub timeout: Duration,
    /// Drain even if the availability budget forbids it (e.g. the last ready server).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub control: ControlArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReadyArgs {
    /// A container name, or `backend/server`.
    #[arg(value_name = "CONTAINER|BACKEND/SERVER")]
    pub target: String,
    /// Return only once the server is back in rotation (after its health gate).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub timeout: Duration,
    #[command(flatten)]
    pub control: ControlArgs,
}

/// Exits 0 once drained (or once the drain started, without `--wait`); on timeout the error
/// names the sessions still open.
pub async fn drain(args: DrainArgs) -> Result<(), CliError> {
    let body = DrainBody {
        target: args.target.clone(),
        wait: args.wait,
        timeout_ms: Some(millis(args.timeout)),
        force: args.force,
    };
    let report = args
        .control
        .client()
        .drain(&body)
        .await
        .map_err(|e| explain(e, &args.target))?;
    if args.wait {
        println!(
            "{}: drained, 0 sessions ({})",
            report.server,
            seconds(report.elapsed_ms)
        );
    } else {
        // Without --wait the controller answers before it has counted anything.
        println!(
            "{}: taken out of rotation; not waiting for its sessions (use --wait to wait for 0)",
            report.server
        );
    }
    Ok(())
}

pub async fn ready(args: ReadyArgs) -> Result<(), CliError> {
    let body = ReadyBody {
        target: args.target.clone(),
        wait: args.wait,
        timeout_ms: Some(millis(args.timeout)),
    };
    let report = args
        .control
        .client()
        .ready(&body)
        .await
        .map_err(|e| explain(e, &args.target))?;
    if report.in_rotation {
        println!(
            "{}: back in rotation ({})",
            report.server,
            seconds(report.elapsed_ms)
        );
    } else {
        println!(
            "{}: will be back in rotation once healthy (use --wait to wait for it)",
            report.server
        );
    }
    Ok(())
}

/// Rephrases the daemon's typed errors for a terminal; the session count on a drain timeout
/// is the number an operator needs.
fn explain(error: ClientError, target: &str) -> CliError {
    let ClientError::Api { body, .. } = &error else {
        return error.into();
    };
    match &body.detail {
        Some(ControlError::DrainTimeout {
            server,
            sessions_left,
            waited_ms,
        }) => CliError::Failed(format!(
            "{server}: {sessions_left} session(s) still open after {}; it stays out of rotation (run `haproxy-drain ready {target}` to put it back)",
            seconds(*waited_ms)
        )),
        Some(ControlError::ReadyTimeout {
            server,
            waited_ms,
            reason,
        }) => CliError::Failed(format!(
            "{server}: not back in rotation after {} ({reason})",
            seconds(*waited_ms)
        )),
        _ => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::ErrorBody;
    use crate::haproxy::types::ServerId;

    #[test]
    fn a_drain_timeout_names_the_open_sessions() {
        let detail = ControlError::DrainTimeout {
            server: ServerId::new("be", "web1"),
            sessions_left: 3,
            waited_ms: 30_000,
        };
        let error = ClientError::Api {
            status: 504,
            body: ErrorBody {
                error: detail.to_string(),
                detail: Some(detail),
            },
        };
        let explained = explain(error, "web1");
        assert_eq!(explained.exit_code(), 1);
        assert!(explained
            .to_string()
            .starts_with("be/web1: 3 session(s) still open after 30.00s"));
    }
}
