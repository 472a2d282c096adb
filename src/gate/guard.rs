//! What happens before a gated request is forwarded: find the container (one inspect through
//! `src/docker`), decide whether it is ours, check that HAProxy answers, drain its server through
//! the controller, and say whether to forward or refuse.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::classify::Gated;
use crate::controller::handle::{ControlError, DrainRequest, ReadyRequest};
use crate::controller::{Context, ControllerHandle, Target, Trigger};

/// How long HAProxy may take to answer `show info` before the gate calls it unreachable.
pub const REACH_BOUND: Duration = Duration::from_secs(1);
/// When some HAProxies answer and some do not, sessions cannot be summed: the drain reaches the
/// ones that answer, and the request waits this long for their in-flight requests, not longer.
pub const PARTIAL_WAIT: Duration = Duration::from_secs(2);

/// What the gate does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it. `drained`: the container whose server the gate took out, so that a stop the
    /// engine then refuses can give the server back.
    Forward {
        result: &'static str,
        drained: Option<String>,
    },
    /// Answer 503 with this message (fail-closed, HAProxy unreachable).
    Refuse { message: String },
}

impl Verdict {
    fn pass(result: &'static str) -> Self {
        Verdict::Forward {
            result,
            drained: None,
        }
    }

    pub fn result(&self) -> &'static str {
        match self {
            Verdict::Forward { result, .. } => result,
            Verdict::Refuse { .. } => "refused",
        }
    }
}

/// How many HAProxies answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    All,
    Some,
    None,
}

impl Reach {
    pub fn of(answered: usize, total: usize) -> Self {
        match answered {
            0 => Reach::None,
            n if n >= total => Reach::All,
            _ => Reach::Some,
        }
    }
}

/// The drain's outcome as a result label; every outcome forwards (the container is going away
/// whatever we do; the drain only makes it lose nothing).
pub fn drain_result(outcome: &Result<bool, ControlError>) -> &'static str {
    match outcome {
        Ok(true) => "drained",
        Ok(false) | Err(ControlError::DrainTimeout { .. }) => "timed_out",
        Err(ControlError::Conflict(_)) => "operator",
        Err(ControlError::NotFound(_)) => "unmapped",
        Err(_) => "control_error",
    }
}

pub struct Guard {
    pub ctx: Arc<Context>,
    pub controller: ControllerHandle,
    pub fail_closed: bool,
}

impl Guard {
    pub async fn before(&self, gated: &Gated) -> Verdict {
        let started = Instant::now();
        let kind = gated.kind.as_str();
        let reference = gated.container.as_str();
        let info = match self.ctx.docker.inspect(reference).await {
            Ok(Some(info)) => info,
            // The engine will say "No such container" itself.
            Ok(None) => return Verdict::pass("unknown_container"),
            Err(error) => {
                tracing::warn!(container = reference, kind, %error, "docker gate: cannot inspect the container; forwarding without a drain");
                return Verdict::pass("docker_error");
            }
        };
        if !gated.kind.terminates(info.stop_signal) {
            return Verdict::pass("not_terminating");
        }
        let mapping = match crate::mapping::resolve(&info.name, &info.labels, &self.ctx.config) {
            Ok(Some(mapping)) => mapping,
            Ok(None) | Err(_) => return Verdict::pass("unmapped"),
        };
        if !info.running {
            return Verdict::pass("not_running");
        }
        let server = mapping.server.to_string();
        let reach = self.reach().await;
        let wait = match reach {
            Reach::All => mapping.settings.drain_timeout,
            _ if self.fail_closed => {
                return Verdict::Refuse {
                    message: format!(
                        "haproxy-drain docker gate: HAProxy cannot be reached, so {server} (container {}) cannot be drained first; refusing to {kind} it (--docker-gate-fail-closed). Fix HAProxy's runtime API, or stop the container through the engine's own socket",
                        info.name
                    ),
                };
            }
            Reach::None => {
                tracing::warn!(container = %info.name, server, kind, "docker gate: no HAProxy answers; forwarding without a drain (fail-open)");
                return Verdict::pass("haproxy_unreachable");
            }
            Reach::Some => PARTIAL_WAIT,
        };
        let request = DrainRequest {
            target: Target::Container(info.name.clone()),
            wait: true,
            timeout: mapping.settings.drain_timeout,
            // The container goes away whatever we answer: the budget can only make it lose
            // requests, not keep it.
            force: true,
            trigger: Trigger::Gate,
            // Back by itself once started and healthy again (a restart, compose's new container).
            sticky: false,
        };
        let drained = tokio::time::timeout(
            wait + Duration::from_secs(3),
            self.controller.drain(request),
        )
        .await
        .map(|outcome| outcome.map(|report| report.drained))
        .unwrap_or(Ok(false));
        let mut result = drain_result(&drained);
        if reach == Reach::Some {
            result = "haproxy_partial";
        }
        tracing::info!(container = %info.name, server, kind, result, elapsed_ms = started.elapsed().as_millis() as u64, "docker gate: drained before forwarding");
        Verdict::Forward {
            result,
            drained: (result != "unmapped").then(|| info.name.clone()),
        }
    }

    /// The engine refused the stop (the container keeps running): give the server back through
    /// the same health-gated path as `ready`.
    pub async fn give_back(&self, container: &str, status: u16) {
        tracing::warn!(container, status, "docker gate: the engine refused the request after the drain; asking for the server back");
        let request = ReadyRequest {
            target: Target::Container(container.to_string()),
            wait: false,
            timeout: Duration::from_secs(0),
        };
        if let Err(error) = self.controller.ready(request).await {
            tracing::warn!(container, %error, "docker gate: ready after a refused stop failed; reconciliation corrects it");
        }
    }

    async fn reach(&self) -> Reach {
        let clients = self.ctx.fleet.clients();
        let answers = join_all(clients.iter().map(|client| async move {
            match tokio::time::timeout(REACH_BOUND, client.show_info()).await {
                Ok(Ok(_)) => true,
                Ok(Err(error)) => {
                    tracing::warn!(haproxy = %client.addr(), %error, "docker gate: HAProxy does not answer");
                    false
                }
                Err(_) => {
                    tracing::warn!(haproxy = %client.addr(), bound_ms = REACH_BOUND.as_millis() as u64, "docker gate: HAProxy did not answer in time");
                    false
                }
            }
        }))
        .await;
        Reach::of(answers.iter().filter(|ok| **ok).count(), clients.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::ServerId;

    #[test]
    fn reach() {
        assert_eq!(Reach::of(0, 0), Reach::None);
        assert_eq!(Reach::of(0, 2), Reach::None);
        assert_eq!(Reach::of(1, 2), Reach::Some);
        assert_eq!(Reach::of(2, 2), Reach::All);
        assert_eq!(Reach::of(1, 1), Reach::All);
    }

    #[test]
    fn drain_results() {
        let server = ServerId::new("be".to_string(), "s".to_string());
        let cases: [(Result<bool, ControlError>, &str); 7] = [
            (Ok(true), "drained"),
            (Ok(false), "timed_out"),
            (
                Err(ControlError::DrainTimeout {
                    server,
                    sessions_left: 2,
                    waited_ms: 30_000,
                }),
                "timed_out",
            ),
            (Err(ControlError::Conflict("operator".into())), "operator"),
            (Err(ControlError::NotFound("x".into())), "unmapped"),
            (Err(ControlError::Unavailable), "control_error"),
            (Err(ControlError::Haproxy("down".into())), "control_error"),
        ];
        for (outcome, expected) in cases {
            assert_eq!(drain_result(&outcome), expected, "{outcome:?}");
        }
    }
}
