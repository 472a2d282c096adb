//! Carries out one [`Action`] of a server's machine: HAProxy commands on every HAProxy, polls,
//! probes, the ownership record. It decides nothing; what an action produced comes back as an
//! [`Outcome`] for the server's task to feed to the machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::WeakSender;

use super::clock::clock;
use super::container_ref::ContainerRef;
use super::probe::Gate;
use super::server_msg::ServerMsg;
use super::{restore_watch, Context};
use crate::agent::Mode;
use crate::drain::server_options::{dynamic_server_options, server_address, weight_spec};
use crate::drain::{Action, Input, Observed, Ownership};
use crate::haproxy::{AdminState, Command, HaproxyError, ServerId};
use crate::mapping::Mapping;

/// What the executor needs to know about the server for one action (the task owns it).
pub struct Subject<'a> {
    pub observed: Option<Observed>,
    pub container: Option<&'a ContainerRef>,
    pub mapping: &'a Mapping,
}

/// What an action produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// A poll or probe result to feed back to the machine.
    pub feedback: Option<Input>,
    /// For a weight or state change: whether it took effect (see [`Executor::apply`]).
    pub change_ok: Option<bool>,
    /// The admin state HAProxy now has, after a state change that took effect.
    pub admin_now: Option<AdminState>,
    /// `del server` took effect: HAProxy no longer has the server.
    pub deleted: bool,
}

pub struct Executor {
    id: ServerId,
    ctx: Arc<Context>,
    /// A missing backend is an operator's mistake: said once, not at every reconciliation.
    missing_backend_reported: AtomicBool,
    /// The server's own task, for a post-restore watch that takes the server out again.
    task: WeakSender<ServerMsg>,
}

impl Executor {
    pub fn new(id: ServerId, ctx: Arc<Context>, task: WeakSender<ServerMsg>) -> Self {
        Self {
            id,
            ctx,
            missing_backend_reported: AtomicBool::new(false),
            task,
        }
    }

    pub async fn execute(&self, action: &Action, subject: &Subject<'_>) -> Outcome {
        let id = self.id.clone();
        let mut outcome = Outcome::default();
        match action {
            Action::SetAdmin(state) => {
                let ok = self.apply(Command::SetState(id, *state)).await;
                outcome.change_ok = Some(ok);
                outcome.admin_now = ok.then_some(*state);
            }
            Action::SetWeight(weight) => {
                let initial = subject.observed.map(|o| o.initial_weight);
                let spec = weight_spec(*weight, initial);
                outcome.change_ok = Some(self.apply(Command::SetWeight(id, spec)).await);
            }
            Action::RampStep(weight) => {
                let initial = subject.observed.map(|o| o.initial_weight);
                let spec = weight_spec(*weight, initial);
                let ok = self.apply(Command::SetWeight(id, spec)).await;
                outcome.change_ok = ok.then_some(true);
            }
            Action::SetAddr(ip, port) => {
                self.apply(Command::SetAddr {
                    server: id,
                    ip: *ip,
                    port: *port,
                })
                .await;
            }
            Action::ShutdownSessions => {
                self.apply(Command::ShutdownSessions(id)).await;
            }
            Action::DelServer => {
                outcome.deleted = self.apply(Command::DelServer(id)).await;
                self.record_dynamic(false).await;
            }
            Action::PollSessions => match self.ctx.fleet.sessions(&self.id).await {
                Ok(n) => outcome.feedback = Some(Input::Sessions(n)),
                Err(error) => {
                    tracing::warn!(server = %self.id, %error, "cannot read sessions; retrying")
                }
            },
            Action::PollCheck => match self.ctx.fleet.check_passed(&self.id).await {
                Ok(passed) => outcome.feedback = Some(Input::HaproxyCheck { passed }),
                Err(error) => {
                    tracing::warn!(server = %self.id, %error, "cannot read check state; retrying")
                }
            },
            Action::ReadServer => outcome.feedback = self.observe().await.map(Input::Observe),
            Action::Watch(window) => {
                let (id, ctx) = (self.id.clone(), self.ctx.clone());
                restore_watch::spawn(id, ctx, *window, self.task.clone());
            }
            Action::Probe => {
                let passed = gate(subject).probe(&self.ctx.docker).await;
                outcome.feedback = Some(Input::Gate { passed });
            }
            Action::Own(ownership) => self.save_ownership(ownership.clone()).await,
            Action::Disown => {
                if let Err(error) = self.ctx.store.forget(&self.id).await {
                    tracing::error!(server = %self.id, %error, "cannot update the state file");
                }
            }
            // Reports are the task's: they end waits and are logged with the decision.
            Action::Report(_) => {}
        }
        outcome
    }

    /// Adds the server to every HAProxy (`add server`, in MAINT, checks enabled when the
    /// backend uses them) and records it as haproxy-drain's; it then goes through the same gate
    /// as any other. Returns the record and what HAProxy now reports; `None` when there is
    /// nothing to add yet (no address or port) or HAProxy refused (retried by reconciliation).
    pub async fn add_server(&self, subject: &Subject<'_>) -> Option<(Ownership, Option<Observed>)> {
        match self.ctx.fleet.mode() {
            Mode::Push => {}
            // Known only once HAProxy asks the agent about it (every agent-inter).
            Mode::PullBlind => return None,
            Mode::PullReadOnly => {
                if !self.missing_backend_reported.swap(true, Ordering::Relaxed) {
                    tracing::error!(server = %self.id, "server not in HAProxy, and pull mode cannot `add server`: add it to haproxy.cfg with an agent check");
                }
                return None;
            }
        }
        let ip = subject.container.and_then(|c| c.ip)?;
        let port = subject.mapping.port?;
        let stats = self.ctx.fleet.backend_stats(&self.id.backend).await.ok();
        let checks = stats.iter().flatten().any(|r| !r.check_status.is_empty());
        let weight = subject.mapping.settings.dynamic_weight;
        let command = Command::AddServer {
            server: self.id.clone(),
            addr: server_address(ip, port),
            options: dynamic_server_options(weight, checks),
        };
        for (_, result) in self.ctx.fleet.apply(&command).await {
            match result {
                Ok(_) => {}
                Err(HaproxyError::Command(error)) if error.is_not_found() => {
                    if !self.missing_backend_reported.swap(true, Ordering::Relaxed) {
                        self.ctx.metrics.config_error("missing_backend");
                        tracing::error!(server = %self.id, %error, "backend does not exist in HAProxy; the container is skipped until it does");
                    }
                    return None;
                }
                Err(error) => {
                    tracing::warn!(server = %self.id, %error, "add server failed");
                    return None;
                }
            }
        }
        if checks {
            self.apply(Command::EnableHealth(self.id.clone())).await;
        }
        let ownership = Ownership::dynamic_server(weight, clock().unix_ms);
        self.save_ownership(ownership.clone()).await;
        self.record_dynamic(true).await;
        tracing::info!(server = %self.id, weight, checks, "added server dynamically");
        Some((ownership, self.observe().await))
    }

    /// A fresh read of the server on every HAProxy (merged); `None` when none has it or none
    /// answered.
    pub async fn observe(&self) -> Option<Observed> {
        self.ctx.fleet.observe(&self.id).await
    }

    async fn save_ownership(&self, ownership: Ownership) {
        if let Err(error) = self.ctx.store.save(&self.id, ownership).await {
            tracing::error!(server = %self.id, %error, "cannot write the state file; continuing, but a crash now would lose track of this server");
        }
    }

    async fn record_dynamic(&self, dynamic: bool) {
        if let Err(error) = self.ctx.store.set_dynamic(&self.id, dynamic).await {
            tracing::error!(server = %self.id, %error, "cannot update the state file");
        }
    }

    /// Sends one command to every HAProxy that is up. True when it took effect somewhere and no
    /// HAProxy that has the server failed entirely: a HAProxy without this backend/server does not
    /// route to it, and one that is down is corrected by the reconciliation that follows its
    /// return.
    async fn apply(&self, command: Command) -> bool {
        let (mut accepted, mut failed) = (0, 0);
        for (i, result) in self.ctx.fleet.apply(&command).await {
            let error = match result {
                Ok(_) => {
                    accepted += 1;
                    continue;
                }
                Err(error) => error,
            };
            if !matches!(&error, HaproxyError::Command(e) if e.is_not_found()) {
                failed += 1;
            }
            let haproxy = self.ctx.fleet.addr(i);
            tracing::error!(server = %self.id, %haproxy, %command, %error, "HAProxy command failed; reconciliation will retry");
        }
        accepted > 0 || failed == 0
    }
}

/// What the gate probes: through a published port (HAProxy points at this host) exactly what
/// HAProxy will use, else the container's own address.
fn gate(subject: &Subject<'_>) -> Gate {
    let observed = subject.observed;
    let (ip, port) = match observed.and_then(|o| o.addr) {
        // A loopback address without a port (pull mode without a socket: unseen) says nothing
        // about where to probe; the container itself does.
        Some(addr) if addr.is_loopback() && observed.and_then(|o| o.port).is_some() => {
            (Some(addr), observed.and_then(|o| o.port))
        }
        _ => (
            subject.container.and_then(|c| c.ip),
            subject.mapping.port.or(observed.and_then(|o| o.port)),
        ),
    };
    match subject.container {
        Some(c) => Gate::for_container(
            &c.id,
            c.has_healthcheck,
            ip,
            port,
            subject.mapping.settings.health_path.as_deref(),
        ),
        None => Gate::None,
    }
}

/// The last action of a restore: it must not happen when a change before it failed.
pub fn ends_restore(action: &Action) -> bool {
    matches!(
        action,
        Action::Disown | Action::Own(Ownership { ramping: true, .. })
    )
}

/// A weight or state change: what must reach HAProxy before a restore may forget its record.
pub fn changes_haproxy(action: &Action) -> bool {
    matches!(
        action,
        Action::SetAdmin(_) | Action::SetWeight(_) | Action::RampStep(_)
    )
}
