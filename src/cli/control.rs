//! What every control-socket command shares: the socket flag, the error type, duration output.

use std::path::PathBuf;

use crate::api::client::{ClientError, ControlClient};
use crate::api::listen::DEFAULT_CONTROL_SOCKET;

/// Where `haproxy-drain run` serves its control API.
#[derive(Debug, Clone, clap::Args)]
pub struct ControlArgs {
    /// The control socket of `haproxy-drain run`.
    #[arg(
        long,
        env = "HAPROXY_DRAIN_CONTROL_SOCKET",
        default_value = DEFAULT_CONTROL_SOCKET,
        value_name = "PATH"
    )]
    pub control_socket: PathBuf,
}

impl ControlArgs {
    pub fn client(&self) -> ControlClient {
        ControlClient::unix(&self.control_socket)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Could not ask the daemon, or the daemon refused/failed the request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The operation ran and did not succeed (timeout, roll failure, check failure).
    #[error("{0}")]
    Failed(String),
    /// A bad argument combination that clap cannot express.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            // The daemon answered: the operation was refused or failed.
            CliError::Client(ClientError::Api { .. }) | CliError::Failed(_) => 1,
            CliError::Client(_) | CliError::Usage(_) => 2,
        }
    }
}

/// `1.23s` / `250ms`: short, for progress lines.
pub fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::ErrorBody;

    #[test]
    fn short_durations_and_exit_codes() {
        assert_eq!(seconds(250), "250ms");
        assert_eq!(seconds(1234), "1.23s");
        let refused = CliError::Client(ClientError::Api {
            status: 409,
            body: ErrorBody::message("budget"),
        });
        assert_eq!(refused.exit_code(), 1);
        let absent = CliError::Client(ClientError::NoDaemon {
            socket: "/x".into(),
        });
        assert_eq!(absent.exit_code(), 2);
    }
}
