//! One task per HAProxy server: owns its drain machine, the queue of inputs, the waiters of
//! `drain --wait`/`ready --wait` and the snapshot others read; an [`Executor`] performs the
//! machine's actions.
//!
//! Messages for one server are handled in order; servers never wait for each other. Polls and
//! probes run inline here, so a slow probe delays only this server.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::clock::{clock, since_unix_nanos, sleep_until, unix_nanos_now};
use super::container_ref::{event_facts, ContainerRef};
use super::executor::{changes_haproxy, ends_restore, Executor, Subject};
use super::report;
use super::server_msg::{DrainOutcome, ServerMsg};
use super::snapshot::{export_gauges, ServerSnapshot};
use super::Context;
use crate::docker::{ContainerEvent, EventAction};
use crate::drain::{docker_input, Action, ContainerState, Input, Machine, Observed};
use crate::drain::{Owner, Ownership, PhaseName, Report};
use crate::haproxy::{AdminState, ServerId};
use crate::mapping::Mapping;
use crate::shutdown::Shutdown;

pub struct ServerTask {
    id: ServerId,
    ctx: Arc<Context>,
    executor: Executor,
    machine: Machine,
    mapping: Mapping,
    container: Option<ContainerRef>,
    observed: Option<Observed>,
    /// What HAProxy reports (or was last told with success), for the desired-vs-actual metric.
    actual_admin: Option<AdminState>,
    snapshot: Arc<Mutex<ServerSnapshot>>,
    drain_waiters: Vec<oneshot::Sender<DrainOutcome>>,
    ready_waiters: Vec<oneshot::Sender<()>>,
    /// When the last event or request was applied, or the last change made to HAProxy (see
    /// `ServerMsg::Sync::read_at`).
    last_event_at: Option<Instant>,
}

impl ServerTask {
    pub fn spawn(
        id: ServerId,
        ctx: Arc<Context>,
        mapping: Mapping,
        owned: Option<Ownership>,
        dynamic: bool,
        snapshot: Arc<Mutex<ServerSnapshot>>,
        shutdown: Shutdown,
    ) -> mpsc::Sender<ServerMsg> {
        let (tx, rx) = mpsc::channel(64);
        let mut machine = Machine::new(ctx.machine_settings(&mapping), owned);
        machine.set_dynamic(dynamic);
        let task = ServerTask {
            executor: Executor::new(id.clone(), ctx.clone(), tx.downgrade()),
            id,
            machine,
            ctx,
            mapping,
            container: None,
            observed: None,
            actual_admin: None,
            snapshot,
            drain_waiters: Vec::new(),
            ready_waiters: Vec::new(),
            last_event_at: None,
        };
        tokio::spawn(task.run(rx, shutdown));
        tx
    }

    async fn run(mut self, mut rx: mpsc::Receiver<ServerMsg>, mut shutdown: Shutdown) {
        loop {
            let wake = self.machine.next_wakeup();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.on_message(msg).await,
                    None => break,
                },
                _ = sleep_until(wake) => self.feed(Input::Tick, None).await,
                _ = shutdown.recv() => break,
            }
        }
        tracing::debug!(server = %self.id, phase = %self.machine.phase_name(), "server task stopped");
    }

    async fn on_message(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Event(event) => {
                self.last_event_at = Some(Instant::now());
                self.on_event(event).await
            }
            ServerMsg::Discovered { container_id } => self.on_discovered(&container_id).await,
            ServerMsg::Checked => self.feed(Input::HaproxyCheck { passed: true }, None).await,
            ServerMsg::Sync { read_at, .. }
                if self.last_event_at.is_some_and(|event| event > read_at) =>
            {
                // Read before an event this task has applied since: the next pass is fresher.
                tracing::debug!(server = %self.id, "stale reconciliation snapshot skipped");
            }
            ServerMsg::Sync {
                mapping,
                container,
                running,
                observed,
                ..
            } => self.on_sync(*mapping, container, running, observed).await,
            ServerMsg::Drain { input, waiter } => {
                self.last_event_at = Some(Instant::now());
                self.refresh_before_acting().await;
                self.drain_waiters.extend(waiter);
                let input = docker_input::with_roll_stop(
                    input,
                    unix_nanos_now(),
                    self.container.as_ref().and_then(|c| c.stop_timeout),
                    self.mapping.settings.drain_timeout,
                );
                self.feed(input, None).await;
                if !self.machine.is_draining() {
                    let outcome = if self.machine.owner() == Owner::Operator {
                        DrainOutcome::HeldByOperator
                    } else {
                        DrainOutcome::AlreadyOut
                    };
                    for waiter in self.drain_waiters.drain(..) {
                        let _ = waiter.send(outcome.clone());
                    }
                }
            }
            ServerMsg::Ready {
                waiter,
                withdraw_stop,
            } => {
                self.last_event_at = Some(Instant::now());
                self.ready_waiters.extend(waiter);
                if withdraw_stop {
                    self.feed(Input::StopWithdrawn, None).await;
                }
                self.feed(Input::ReadyRequested, None).await;
            }
        }
    }

    async fn on_event(&mut self, event: ContainerEvent) {
        if event.action == EventAction::Start {
            return self.on_started(&event.id).await;
        }
        if matches!(event.action, EventAction::Kill { .. })
            && self.container.as_ref().is_none_or(|c| c.id != event.id)
        {
            // Whether this signal ends the container depends on its own stop signal.
            self.read_container(&event.id).await;
        }
        let facts = event_facts(self.container.as_ref(), &self.mapping, event.time_nano);
        if let Some(input) = docker_input::input_for(&event.action, &facts) {
            self.refresh_before_acting().await;
            self.feed(input, Some(event.time_nano)).await;
        }
    }

    /// Re-reads HAProxy when haproxy-drain does not hold the server: the state it would record as
    /// "prior" must be the current one, not the one from the last reconciliation.
    async fn refresh_before_acting(&mut self) {
        if self.observed.is_none() || self.machine.ownership().is_some() {
            return;
        }
        if let Some(observed) = self.executor.observe().await {
            self.observed = Some(observed);
            self.feed(Input::Observe(observed), None).await;
        }
    }

    /// Inspects the container; `Some(running)` when it exists.
    async fn read_container(&mut self, container_id: &str) -> Option<bool> {
        match ContainerRef::inspect(&self.ctx.docker, container_id, &self.mapping).await {
            Ok(Some((container, running))) => {
                self.container = Some(container);
                Some(running)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(server = %self.id, container_id, %error, "cannot inspect the container; reconciliation will retry");
                None
            }
        }
    }

    async fn on_discovered(&mut self, container_id: &str) {
        let read_at = Instant::now();
        let Some(running) = self.read_container(container_id).await else {
            return;
        };
        let observed = self.executor.observe().await;
        if self.last_event_at.is_some_and(|event| event > read_at) {
            return;
        }
        let (mapping, container) = (self.mapping.clone(), self.container.clone());
        self.on_sync(mapping, container, running, observed).await;
    }

    async fn on_started(&mut self, container_id: &str) {
        self.refresh_before_acting().await;
        match self.read_container(container_id).await {
            Some(true) if self.observed.is_none() => {
                // A server HAProxy does not have yet: the Sync path adds it and gates it.
                let observed = self.executor.observe().await;
                let (mapping, container) = (self.mapping.clone(), self.container.clone());
                self.on_sync(mapping, container, true, observed).await;
            }
            Some(true) => {
                let addr = self
                    .container
                    .as_ref()
                    .and_then(|c| c.ip)
                    .map(|ip| (ip, self.mapping.port));
                self.feed(Input::Started { addr }, None).await;
            }
            _ => {
                tracing::debug!(server = %self.id, container_id, "started container is gone again")
            }
        }
    }

    async fn on_sync(
        &mut self,
        mapping: Mapping,
        container: Option<ContainerRef>,
        running: bool,
        observed: Option<Observed>,
    ) {
        if mapping != self.mapping {
            self.machine
                .set_settings(self.ctx.machine_settings(&mapping));
            self.mapping = mapping;
        }
        if container.is_some() {
            self.container = container;
        }
        let observed = match observed {
            Some(o) => o,
            None => match self.add_server(running).await {
                Some(o) => o,
                None => {
                    self.observed = None;
                    return;
                }
            },
        };
        self.observed = Some(observed);
        self.actual_admin = Some(observed.admin);
        if running && self.machine.awaits_new_run() {
            if let Some(container) = self.container.as_mut() {
                container.read_started_at(&self.ctx.docker, &self.id).await;
            }
        }
        let state = match (&self.container, running) {
            (Some(c), true) => ContainerState::Running {
                addr: c.ip.map(|ip| (ip, self.mapping.port)),
                started_at_unix_nanos: c.started_at_unix_nanos,
            },
            (Some(_), false) => ContainerState::Stopped,
            (None, _) => ContainerState::Absent,
        };
        let input = Input::Sync {
            container: state,
            haproxy: observed,
        };
        self.feed(input, None).await;
    }

    /// The server is missing from HAProxy: add it when its backend exists and the container
    /// runs; a fresh machine then holds it until the gate passes.
    async fn add_server(&mut self, running: bool) -> Option<Observed> {
        if !running {
            return None;
        }
        let subject = Subject {
            observed: None,
            container: self.container.as_ref(),
            mapping: &self.mapping,
        };
        let (ownership, observed) = self.executor.add_server(&subject).await?;
        self.machine = Machine::new(self.ctx.machine_settings(&self.mapping), Some(ownership));
        self.machine.set_dynamic(true);
        observed
    }

    /// Feeds one input and every input its actions produce (poll results, probes), executing the
    /// actions in order; logs one line per decision and publishes the new snapshot.
    async fn feed(&mut self, first: Input, mut event_nanos: Option<i64>) {
        if self.observed.is_none() && !matches!(first, Input::Sync { .. }) {
            // Not (yet) a server HAProxy knows: acting would only produce errors.
            tracing::debug!(server = %self.id, input = ?first, "ignored: server not known to HAProxy");
            return;
        }
        let mut queue = VecDeque::from([first]);
        let started = Instant::now();
        while let Some(input) = queue.pop_front() {
            let from = self.machine.phase_name();
            let actions = self.machine.handle(input.clone(), clock());
            let to = self.machine.phase_name();
            if from != to || actions.iter().any(changes_haproxy) {
                tracing::info!(
                    container = self.container.as_ref().map(|c| c.name.as_str()).unwrap_or("-"),
                    server = %self.id,
                    from = from.as_str(), to = to.as_str(),
                    why = ?input,
                    actions = ?actions,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "decision"
                );
            }
            let mut change_failed = false;
            for action in actions {
                if change_failed && ends_restore(&action) {
                    // A restore that did not reach HAProxy must not drop the ownership record:
                    // go back to the record and let reconciliation restore it again.
                    self.restore_failed().await;
                    queue.clear();
                    break;
                }
                if let Action::Report(report) = &action {
                    self.on_report(report);
                    continue;
                }
                let subject = Subject {
                    observed: self.observed,
                    container: self.container.as_ref(),
                    mapping: &self.mapping,
                };
                let outcome = self.executor.execute(&action, &subject).await;
                queue.extend(outcome.feedback);
                if let Some(admin) = outcome.admin_now {
                    self.actual_admin = Some(admin);
                }
                if outcome.deleted {
                    self.observed = None;
                }
                change_failed |= outcome.change_ok == Some(false);
                if outcome.change_ok.is_some() {
                    // A reconciliation read before this change must not undo it (it would see
                    // our own DRAIN of a warm-up as the operator's, for one).
                    self.last_event_at = Some(Instant::now());
                }
                if let Some(nanos) = event_nanos.filter(|_| outcome.change_ok.is_some()) {
                    event_nanos = None;
                    self.ctx.metrics.reaction_latency(
                        "take_out",
                        &self.id.backend,
                        &self.id.server,
                        since_unix_nanos(nanos),
                    );
                }
            }
        }
        self.publish();
    }

    fn on_report(&mut self, report: &Report) {
        report::emit(&self.id, report, &self.ctx.metrics);
        if let Report::DrainFinished {
            result,
            sessions_left,
            ..
        } = *report
        {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(DrainOutcome::Finished {
                    result,
                    sessions_left,
                });
            }
        }
    }

    async fn restore_failed(&mut self) {
        let owned = self.ctx.store.get(&self.id).await;
        let dynamic = self.ctx.store.is_dynamic(&self.id).await;
        self.machine = Machine::new(self.ctx.machine_settings(&self.mapping), owned);
        self.machine.set_dynamic(dynamic);
        report::restore_failed(&self.id, &self.ctx.metrics);
    }

    /// The snapshot others read, the waiters of `ready --wait`, and the per-server gauges.
    fn publish(&mut self) {
        let snapshot = ServerSnapshot::of(&self.machine, self.container.as_ref());
        let phase = snapshot.phase;
        if let Ok(mut shared) = self.snapshot.lock() {
            *shared = snapshot;
        }
        if phase == PhaseName::InRotation {
            for waiter in self.ready_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
        export_gauges(
            &self.ctx.metrics,
            &self.id,
            &self.machine,
            self.actual_admin,
        );
    }
}
