//! What a server task does with the machine's actions: HAProxy commands on every HAProxy, polls,
//! probes, the ownership record, and the log line + metric for each report.

use std::net::IpAddr;

use super::handle::{Owner, Trigger};
use super::probe::Gate;
use super::server_task::{clock, DrainOutcome, ServerSnapshot, ServerTask};
use crate::drain::{Action, Input, Machine, Observed, Ownership, Report};
use crate::haproxy::{AdminState, Command, HaproxyError, WeightSpec};

impl ServerTask {
    pub(super) async fn add_dynamic(&mut self, running: bool) -> Option<Observed> {
        let ip = self
            .container
            .as_ref()
            .and_then(|c| c.ip)
            .filter(|_| running)?;
        let port = self.mapping.port?;
        let stats = self.ctx.fleet.backend_stats(&self.id.backend).await.ok();
        let checks = stats.iter().flatten().any(|r| !r.check_status.is_empty());
        let weight = self.mapping.settings.dynamic_weight;
        let mut options = vec!["weight".to_string(), weight.to_string()];
        if checks {
            options.extend(["check", "inter", "1s", "rise", "2", "fall", "2"].map(String::from));
        }
        let addr = match ip {
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            IpAddr::V4(v4) => format!("{v4}:{port}"),
        };
        let command = Command::AddServer {
            server: self.id.clone(),
            addr,
            options,
        };
        for result in self.ctx.fleet.apply(&command).await {
            match result {
                Ok(_) => {}
                Err(HaproxyError::Command(e)) if e.is_not_found() => {
                    if !self.missing_backend_reported {
                        self.missing_backend_reported = true;
                        self.ctx.metrics.config_error("missing_backend");
                        tracing::error!(server = %self.id, error = %e, "backend does not exist in HAProxy; the container is skipped until it does");
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
        let ownership = Ownership {
            prior_admin: AdminState::Ready,
            prior_weight: Some(weight),
            sticky: false,
            dynamic: true,
            trigger: Trigger::Reconcile,
            since_unix_ms: clock().unix_ms,
            stop: None,
        };
        self.save_ownership(ownership.clone()).await;
        if let Err(error) = self.ctx.store.set_dynamic(&self.id, true).await {
            tracing::error!(server = %self.id, %error, "cannot record the dynamic server");
        }
        self.machine = Machine::new(self.ctx.machine_settings(&self.mapping), Some(ownership));
        self.machine.set_dynamic(true);
        tracing::info!(server = %self.id, weight, checks, "added server dynamically");
        self.ctx.fleet.observe(&self.id).await.ok().flatten()
    }

    pub(super) async fn execute(&mut self, action: Action) -> Option<Input> {
        let id = self.id.clone();
        match action {
            Action::SetAdmin(state) => {
                self.last_change_ok = self.apply(Command::SetState(id, state)).await;
                if self.last_change_ok {
                    self.actual_admin = Some(state);
                }
            }
            Action::SetWeight(w) => {
                // Static algorithms (static-rr, source) accept only 0% and 100%: say it that way.
                let spec = match self.observed {
                    Some(o) if w == o.initial_weight => WeightSpec::Percent(100),
                    _ if w == 0 => WeightSpec::Percent(0),
                    _ => WeightSpec::Absolute(w),
                };
                self.last_change_ok = self.apply(Command::SetWeight(id, spec)).await;
            }
            Action::SetAddr(ip, port) => {
                self.apply(Command::SetAddr {
                    server: id,
                    ip,
                    port,
                })
                .await;
            }
            Action::ShutdownSessions => {
                self.apply(Command::ShutdownSessions(id)).await;
            }
            Action::DelServer => {
                if self.apply(Command::DelServer(id)).await {
                    self.observed = None;
                }
                if let Err(error) = self.ctx.store.set_dynamic(&self.id, false).await {
                    tracing::error!(server = %self.id, %error, "cannot update the state file");
                }
            }
            Action::PollSessions => match self.ctx.fleet.sessions(&self.id).await {
                Ok(n) => return Some(Input::Sessions(n)),
                Err(error) => {
                    tracing::warn!(server = %self.id, %error, "cannot read sessions; retrying")
                }
            },
            Action::PollCheck => match self.ctx.fleet.check_passed(&self.id).await {
                Ok(passed) => return Some(Input::HaproxyCheck { passed }),
                Err(error) => {
                    tracing::warn!(server = %self.id, %error, "cannot read check state; retrying")
                }
            },
            Action::Probe => {
                let gate = self.gate();
                return Some(Input::Gate {
                    passed: gate.probe(&self.ctx.docker).await,
                });
            }
            Action::Own(ownership) => self.save_ownership(ownership).await,
            Action::Disown => {
                if let Err(error) = self.ctx.store.forget(&self.id).await {
                    tracing::error!(server = %self.id, %error, "cannot update the state file");
                }
            }
            Action::Report(report) => self.report(report),
        }
        None
    }

    pub(super) fn gate(&self) -> Gate {
        let haproxy_addr = self.observed.and_then(|o| o.addr);
        // Through a published port (HAProxy points at this host): probe what HAProxy will use.
        let (ip, port) = match haproxy_addr {
            Some(addr) if addr.is_loopback() => (Some(addr), self.observed.and_then(|o| o.port)),
            _ => (
                self.container.as_ref().and_then(|c| c.ip),
                self.mapping.port.or(self.observed.and_then(|o| o.port)),
            ),
        };
        match &self.container {
            Some(c) => Gate::for_container(
                &c.id,
                c.has_healthcheck,
                ip,
                port,
                self.mapping.settings.health_path.as_deref(),
            ),
            None => Gate::None,
        }
    }

    pub(super) async fn save_ownership(&self, ownership: Ownership) {
        if let Err(error) = self.ctx.store.save(&self.id, ownership).await {
            tracing::error!(server = %self.id, %error, "cannot write the state file; continuing, but a crash now would lose track of this server");
        }
    }

    /// Sends one command to every HAProxy; true when all accepted it.
    /// Sends one command to every HAProxy. True when it took effect somewhere and no HAProxy that
    /// has the server failed entirely: a HAProxy without this backend/server does not route to
    /// it, and one that is unreachable is corrected by the reconciliation that follows its return.
    pub(super) async fn apply(&self, command: Command) -> bool {
        let (mut accepted, mut failed) = (0, 0);
        for (i, result) in self.ctx.fleet.apply(&command).await.into_iter().enumerate() {
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
            let haproxy = self
                .ctx
                .fleet
                .clients()
                .get(i)
                .map(|c| c.addr().to_string())
                .unwrap_or_default();
            tracing::error!(server = %self.id, %haproxy, %command, %error, "HAProxy command failed; reconciliation will retry");
        }
        accepted > 0 || failed == 0
    }

    pub(super) fn report(&mut self, report: Report) {
        let (proxy, server) = (self.id.backend.as_str(), self.id.server.as_str());
        let metrics = &self.ctx.metrics;
        match report {
            Report::DrainStarted { trigger } => {
                metrics.drain_started(trigger.as_str(), proxy, server)
            }
            Report::DrainFinished {
                trigger,
                result,
                elapsed,
                sessions_left,
            } => {
                metrics.drain_finished(
                    trigger.as_str(),
                    result,
                    proxy,
                    server,
                    elapsed,
                    sessions_left,
                );
                tracing::info!(server = %self.id, trigger = trigger.as_str(), result = result.as_str(), elapsed_ms = elapsed.as_millis() as u64, sessions_left, "drain finished");
                for waiter in self.drain_waiters.drain(..) {
                    let _ = waiter.send(DrainOutcome::Finished {
                        result,
                        sessions_left,
                    });
                }
            }
            Report::Restored {
                start_to_rotation,
                out_of_rotation,
            } => {
                metrics.restore_finished(
                    crate::metrics::RestoreResult::Restored,
                    proxy,
                    server,
                    start_to_rotation,
                    Some(out_of_rotation),
                );
                tracing::info!(server = %self.id, start_to_rotation_ms = start_to_rotation.map(|d| d.as_millis() as u64), out_of_rotation_ms = out_of_rotation.as_millis() as u64, "back in rotation");
            }
            Report::GateTimedOut { waited } => {
                metrics.restore_finished(
                    crate::metrics::RestoreResult::HealthTimeout,
                    proxy,
                    server,
                    None,
                    None,
                );
                tracing::warn!(server = %self.id, waited_ms = waited.as_millis() as u64, "container not healthy before the health timeout; keeping the server out of rotation and still probing");
            }
            Report::StopIgnored { held } => {
                metrics.stop_ignored(proxy, server);
                tracing::warn!(server = %self.id, held_ms = held.as_millis() as u64, "the container was asked to stop but still runs the same run after its stop timeout plus the drain timeout (the app ignored the signal?); putting the server back through the health gate");
            }
            Report::Correction(kind) => {
                metrics.reconcile_correction(kind);
                tracing::info!(server = %self.id, kind, "reconciliation corrected HAProxy");
            }
        }
    }

    pub(super) fn publish(&mut self) {
        let owner = self.machine.owner();
        let snapshot = ServerSnapshot {
            phase: self.machine.phase_name(),
            owner,
            in_rotation: self.machine.in_rotation(),
            container: self.container.as_ref().map(|c| c.name.clone()),
        };
        if let Ok(mut shared) = self.shared.lock() {
            *shared = snapshot;
        }
        if self.machine.is_serving() {
            for waiter in self.ready_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
        let (proxy, server) = (self.id.backend.as_str(), self.id.server.as_str());
        let owner_label = match owner {
            Owner::None => None,
            other => Some(other.as_str()),
        };
        self.ctx
            .metrics
            .set_out_of_rotation(proxy, server, owner_label);
        let desired = self
            .machine
            .desired_admin()
            .map_or("unknown", |a| a.as_str());
        let actual = self.actual_admin.map_or("unknown", |a| a.as_str());
        self.ctx
            .metrics
            .set_server_state(proxy, server, desired, actual);
    }
}

pub(super) fn changes_haproxy(action: &Action) -> bool {
    matches!(action, Action::SetAdmin(_) | Action::SetWeight(_))
}
