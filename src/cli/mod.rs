//! The command-line side: each subcommand's arguments (clap) and what it does.
//!
//! Every command returns `Result<(), CliError>`; `main` prints the error and exits with
//! [`CliError::exit_code`]: 0 success, 1 the operation failed or was refused (drain timeout,
//! budget, unknown target, roll failed, check found a problem), 2 haproxy-drain could not be
//! asked at all (no daemon, permission denied, bad answer).

pub mod check;
mod check_mode;
pub mod control;
pub mod drain;
pub mod healthcheck;
pub mod roll;
pub mod status;
pub mod status_daemon;
pub mod table;

pub use control::{CliError, ControlArgs};
