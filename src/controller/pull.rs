//! Pull mode in the fleet: the controller's state and weight decisions become agent answers
//! ([`AgentTable`]) instead of runtime API commands, and wait until HAProxy has asked for them
//! (and, with a read-only socket, until `show servers state` shows them): a drain's first
//! session count must come from a HAProxy that already drains. Every other command that would
//! change HAProxy is refused here, before any socket: pull mode never sends one.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::agent::blind::BLIND_INITIAL_WEIGHT;
use crate::agent::{AgentTable, Mode};
use crate::drain::Observed;
use crate::haproxy::{
    AdminState, Command, CommandError, HaproxyError, Reply, ServerId, WeightSpec,
};

/// How long a decision waits for HAProxy to ask the agent: many `agent-inter`s at the
/// recommended 100 ms, two at HAProxy's default of 2 s.
pub const PICKUP_BOUND: Duration = Duration::from_secs(5);
/// Once picked up, how long a state waits to show in `show servers state` (HAProxy applies an
/// answer as it reads it; an operator's MAINT on top can hide a DRAIN for good).
const CONFIRM_BOUND: Duration = Duration::from_secs(1);
const CONFIRM_POLL: Duration = Duration::from_millis(10);

type Results = Vec<(usize, Result<Reply, HaproxyError>)>;

/// What pull mode needs of the fleet: which HAProxies a command would go to, and a fresh read
/// of one server (its initial weight; whether a state shows).
pub trait FleetView: Sync {
    /// Indexes of the HAProxies that are up (all when none is; none without sockets).
    fn targets(&self) -> Vec<usize>;
    fn observe<'a>(&'a self, id: &'a ServerId) -> BoxFuture<'a, Option<Observed>>;
}

/// The agent's table and the mode the fleet runs in.
#[derive(Debug, Clone)]
pub struct AgentLink {
    pub table: Arc<AgentTable>,
    pub mode: Mode,
}

impl AgentLink {
    /// A state or weight decision is recorded in every mode (in push mode the command is still
    /// sent: `None`); in pull mode the command is answered here (`Some`), except reads.
    pub async fn intercept(&self, fleet: &dyn FleetView, command: &Command) -> Option<Results> {
        let sends = self.mode.sends_commands();
        match command {
            Command::SetState(id, admin) => {
                let before = self.table.asked_about(id).and_then(|a| a.admin);
                let generation = self.table.set_admin(id, *admin);
                if sends {
                    return None;
                }
                // A drain out of rotation, not the DRAIN a restore passes through after MAINT.
                let leaving = before != Some(AdminState::Maint);
                if self.mode == Mode::PullBlind && *admin == AdminState::Drain && leaving {
                    tracing::info!(server = %id, "no runtime API socket: no session count; the drain lasts until the container exits or its drain timeout");
                }
                Some(
                    self.wait(fleet, command, id, generation, Some(*admin))
                        .await,
                )
            }
            Command::SetWeight(id, spec) => {
                let initial = match spec {
                    WeightSpec::Percent(_) => BLIND_INITIAL_WEIGHT,
                    WeightSpec::Absolute(_) => fleet
                        .observe(id)
                        .await
                        .map_or(BLIND_INITIAL_WEIGHT, |o| o.initial_weight),
                };
                let generation = self.table.set_weight(id, *spec, initial);
                if sends {
                    return None;
                }
                Some(self.wait(fleet, command, id, generation, None).await)
            }
            _ if sends || is_read(command) => None,
            other => {
                let reason = "pull mode: haproxy-drain has no admin-level socket and never sends a command that changes HAProxy".to_string();
                Some(each_haproxy(fleet, || Err(not_sent(other, &reason))))
            }
        }
    }

    async fn wait(
        &self,
        fleet: &dyn FleetView,
        command: &Command,
        id: &ServerId,
        generation: u64,
        admin: Option<AdminState>,
    ) -> Results {
        if !self.table.picked_up(id, generation, PICKUP_BOUND).await {
            let reason = format!(
                "HAProxy did not ask the agent about {id} within {PICKUP_BOUND:?}; its server line needs `agent-check agent-addr … agent-port … agent-send \"{id}\\n\"` (and HAProxy must run)"
            );
            return each_haproxy(fleet, || Err(not_sent(command, &reason)));
        }
        if let (Some(admin), Mode::PullReadOnly) = (admin, self.mode) {
            confirm(fleet, id, admin).await;
        }
        each_haproxy(fleet, || Ok(Reply::Done))
    }
}

async fn confirm(fleet: &dyn FleetView, id: &ServerId, admin: AdminState) {
    let deadline = tokio::time::Instant::now() + CONFIRM_BOUND;
    while tokio::time::Instant::now() < deadline {
        if fleet.observe(id).await.is_some_and(|o| o.admin == admin) {
            return;
        }
        tokio::time::sleep(CONFIRM_POLL).await;
    }
    tracing::warn!(server = %id, state = admin.as_str(), "HAProxy picked up the agent's answer but does not show it (an operator's MAINT on top?); going on");
}

/// One result per HAProxy that is up (all when none is); one for the agent itself when there
/// is no socket, so that a refusal is never mistaken for "no HAProxy has this server".
fn each_haproxy(
    fleet: &dyn FleetView,
    result: impl Fn() -> Result<Reply, HaproxyError>,
) -> Results {
    let mut targets = fleet.targets();
    if targets.is_empty() {
        targets.push(0);
    }
    targets.into_iter().map(|i| (i, result())).collect()
}

fn not_sent(command: &Command, reason: &str) -> HaproxyError {
    HaproxyError::Command(CommandError::NotSent {
        command: command.to_string(),
        reason: reason.to_string(),
    })
}

fn is_read(command: &Command) -> bool {
    matches!(
        command,
        Command::ShowInfo
            | Command::ShowStat
            | Command::ShowStatServers(_)
            | Command::ShowServersState(_)
            | Command::ShowBackends
            | Command::GetWeight(_)
    )
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::haproxy::HaproxyError::Command as Refused;

    /// One HAProxy that is up; reads of the server show `admin`.
    struct OneHaproxy(AdminState);

    impl FleetView for OneHaproxy {
        fn targets(&self) -> Vec<usize> {
            vec![0]
        }

        fn observe<'a>(&'a self, _: &'a ServerId) -> BoxFuture<'a, Option<Observed>> {
            let observed = Observed {
                admin: self.0,
                weight: 10,
                initial_weight: 10,
                addr: None,
                port: None,
                checks_enabled: true,
            };
            Box::pin(async move { Some(observed) })
        }
    }

    fn link(mode: Mode) -> AgentLink {
        AgentLink {
            table: Arc::new(AgentTable::default()),
            mode,
        }
    }

    fn changes(id: &ServerId) -> Vec<Command> {
        vec![
            Command::SetAddr {
                server: id.clone(),
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: Some(8080),
            },
            Command::ShutdownSessions(id.clone()),
            Command::AddServer {
                server: id.clone(),
                addr: "127.0.0.1:8080".into(),
                options: vec![],
            },
            Command::DelServer(id.clone()),
            Command::EnableHealth(id.clone()),
            Command::DisableHealth(id.clone()),
            Command::Reload,
            Command::Raw("set weight be/web1 0".into()),
        ]
    }

    #[tokio::test]
    async fn pull_mode_refuses_every_change_before_a_socket_and_lets_reads_through() {
        let id = ServerId::new("be", "web1");
        let fleet = OneHaproxy(AdminState::Ready);
        for mode in [Mode::PullReadOnly, Mode::PullBlind] {
            let agent = link(mode);
            for command in changes(&id) {
                let results = agent.intercept(&fleet, &command).await;
                let refused = results.is_some_and(|r| {
                    r.iter()
                        .all(|(_, res)| matches!(res, Err(Refused(CommandError::NotSent { .. }))))
                });
                assert!(refused, "{mode:?}: {command} must not be sent");
            }
            for read in [Command::ShowStat, Command::ShowServersState(None)] {
                assert!(agent.intercept(&fleet, &read).await.is_none(), "{read}");
            }
        }
        let push = link(Mode::Push);
        for command in changes(&id) {
            assert!(
                push.intercept(&fleet, &command).await.is_none(),
                "{command}"
            );
        }
    }

    #[tokio::test]
    async fn a_decision_is_answered_and_done_once_haproxy_asked_for_it() {
        let id = ServerId::new("be", "web1");
        let agent = link(Mode::PullReadOnly);
        let fleet = OneHaproxy(AdminState::Drain);
        let table = agent.table.clone();
        let haproxy = tokio::spawn(async move {
            loop {
                let (_, line) = table.answer("be/web1\n");
                if line == "drain\n" {
                    return line;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let command = Command::SetState(id.clone(), AdminState::Drain);
        let results = agent.intercept(&fleet, &command).await.expect("handled");
        assert!(
            matches!(results.as_slice(), [(0, Ok(Reply::Done))]),
            "{results:?}"
        );
        assert_eq!(haproxy.await.unwrap(), "drain\n");

        // Push mode records too (the agent never contradicts the commands) and sends.
        let push = link(Mode::Push);
        let command = Command::SetWeight(id.clone(), WeightSpec::Absolute(5));
        assert!(push.intercept(&fleet, &command).await.is_none());
        assert_eq!(push.table.answer("be/web1").1, "up 50%\n");
    }
}
