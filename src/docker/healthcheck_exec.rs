//! The container's own `HEALTHCHECK` command, run by haproxy-drain through `docker exec` at a
//! moment of its choosing: the very test Docker runs, without waiting for Docker's interval
//! (often 5–30 s before the first result). `roll --surge` gates its copy with it.

use std::time::Duration;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ExecConfig, HealthConfig};
use tokio::time::Instant;

use super::client::DockerClient;
use super::error::DockerError;

/// Docker's own default when the image sets no `--timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running exec is looked at.
const EXEC_POLL: Duration = Duration::from_millis(20);

/// The command line a health config runs, as `docker exec` wants it; `None` when there is no
/// test to run (`NONE`, empty, or inherited).
pub fn healthcheck_command(config: &HealthConfig) -> Option<Vec<String>> {
    let test = config.test.as_ref()?;
    let (kind, rest) = test.split_first()?;
    match kind.as_str() {
        "CMD" if !rest.is_empty() => Some(rest.to_vec()),
        "CMD-SHELL" if !rest.is_empty() => Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            rest.join(" "),
        ]),
        _ => None,
    }
}

impl DockerClient {
    /// Runs the container's health check once: `Some(passed)`, or `None` when it has none.
    /// A check that outlives the health config's timeout counts as failed.
    pub async fn run_healthcheck(&self, id: &str) -> Result<Option<bool>, DockerError> {
        let container = self.inspect_full(id).await?;
        let Some(health) = container.config.and_then(|c| c.healthcheck) else {
            return Ok(None);
        };
        let Some(cmd) = healthcheck_command(&health) else {
            return Ok(None);
        };
        let timeout = health
            .timeout
            .filter(|ns| *ns > 0)
            .map_or(DEFAULT_TIMEOUT, |ns| Duration::from_nanos(ns as u64));
        let config = ExecConfig {
            cmd: Some(cmd),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(id, config)
            .await
            .map_err(|e| self.container_error("exec the health check in", id, e))?;
        let options = StartExecOptions {
            detach: true,
            ..Default::default()
        };
        match self.docker.start_exec(&exec.id, Some(options)).await {
            Ok(StartExecResults::Detached) | Ok(StartExecResults::Attached { .. }) => {}
            Err(e) => return Err(self.container_error("start the health check in", id, e)),
        }
        let deadline = Instant::now() + timeout;
        loop {
            let state =
                self.docker.inspect_exec(&exec.id).await.map_err(|e| {
                    self.error(format!("inspect the health check exec of {id:?}"), e)
                })?;
            if state.running != Some(true) {
                return Ok(Some(state.exit_code == Some(0)));
            }
            if Instant::now() >= deadline {
                return Ok(Some(false));
            }
            tokio::time::sleep(EXEC_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn the_command_docker_would_run() {
        let cmd = healthcheck_command(&config(&["CMD", "/testapp", "--healthcheck"]));
        assert_eq!(cmd, Some(vec!["/testapp".into(), "--healthcheck".into()]));
        let shell = healthcheck_command(&config(&["CMD-SHELL", "curl -f localhost || exit 1"]));
        assert_eq!(
            shell,
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "curl -f localhost || exit 1".into()
            ])
        );
        assert_eq!(healthcheck_command(&config(&["NONE"])), None);
        assert_eq!(healthcheck_command(&config(&["CMD"])), None);
        assert_eq!(healthcheck_command(&config(&[])), None);
        assert_eq!(healthcheck_command(&HealthConfig::default()), None);
    }
}
