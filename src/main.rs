//! The `haproxy-drain` binary: parse arguments, run one subcommand. All logic lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use haproxy_drain::cli;
use haproxy_drain::daemon::{self, RunArgs};
use haproxy_drain::shutdown;

#[derive(Debug, Parser)]
#[command(
    name = "haproxy-drain",
    version,
    about = "Drains and restores HAProxy servers as their Docker containers stop and start"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sidecar: watch Docker, drain/restore servers, serve the control API and metrics.
    Run(RunArgs),
    /// Take a server out of rotation (optionally wait until its sessions reach 0).
    Drain(cli::drain::DrainArgs),
    /// Put a server back into rotation (health-gated).
    Ready(cli::drain::ReadyArgs),
    /// Replace containers one after another with no request lost.
    Roll(cli::roll::RollArgs),
    /// Validate the config and check Docker, HAProxy (admin level) and every mapped container.
    Check(cli::check::CheckArgs),
    /// Show every backend server as HAProxy sees it, read straight from its runtime API.
    Status(cli::status::StatusArgs),
    /// Exit 0 when the daemon's /healthz answers 200 (the container image's HEALTHCHECK).
    Healthcheck(cli::healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("haproxy-drain: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    let result = match command {
        Command::Run(args) => return run_daemon(args).await,
        Command::Drain(args) => cli::drain::drain(args).await,
        Command::Ready(args) => cli::drain::ready(args).await,
        Command::Roll(args) => cli::roll::roll(args).await,
        Command::Check(args) => cli::check::check(args).await,
        Command::Status(args) => cli::status::status(args).await,
        Command::Healthcheck(args) => cli::healthcheck::healthcheck(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("haproxy-drain: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run_daemon(args: RunArgs) -> ExitCode {
    daemon::init_logging(args.log_format);
    let (trigger, stop) = shutdown::channel();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        trigger.fire();
    });
    // Our error messages already carry their cause: print them once, without the source chain.
    match daemon::run(args, stop).await.map_err(anyhow::Error::from) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("haproxy-drain: {error}");
            ExitCode::from(1)
        }
    }
}
