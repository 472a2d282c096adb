//! The hub: routes Docker events and control requests to server tasks, runs the timers.
//!
//! The hub owns the maps (container → server, server → task) and never waits on a drain or on a
//! read: waits for control requests run in their own small tasks, reconciliation reads in one
//! of their own (`Truth::read`), and each HAProxy's reload watch in one per HAProxy
//! (`haproxy_watch`), so a slow `docker ps` or HAProxy does not delay the routing of events.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::control;
use super::handle::ControlRequest;
use super::reconcile::{Reconciler, Truth};
use super::routes::{KnownContainer, Routes};
use super::server_msg::ServerMsg;
use super::{haproxy_watch, Context};
use crate::docker::{ContainerEvent, EventAction, WatchItem};
use crate::shutdown::Shutdown;

pub struct Hub {
    ctx: Arc<Context>,
    shutdown: Shutdown,
    routes: Routes,
    reconciler: Reconciler,
    /// Reconciliation reads: one at a time, requests meanwhile folded into one more.
    reads: ReadState,
}

#[derive(Default)]
struct ReadState {
    /// The read under way; a finished handle whose result never came (a panic) lets the next
    /// request start a new one.
    in_flight: Option<tokio::task::JoinHandle<()>>,
    pending: Option<&'static str>,
}

impl Hub {
    pub fn new(ctx: Arc<Context>, shutdown: Shutdown) -> Self {
        Self {
            reconciler: Reconciler::default(),
            routes: Routes::new(ctx.clone(), shutdown.clone()),
            ctx,
            shutdown,
            reads: ReadState::default(),
        }
    }

    /// Runs until shutdown. `watch` is the Docker event stream, `control` the API's requests.
    pub async fn run(
        mut self,
        mut watch: mpsc::Receiver<WatchItem>,
        mut control: mpsc::Receiver<ControlRequest>,
    ) {
        let mut shutdown = self.shutdown.clone();
        let mut reconcile_tick = tokio::time::interval(self.ctx.config.reconcile_interval);
        reconcile_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut haproxy_news = haproxy_watch::spawn_watchers(&self.ctx, &self.shutdown);
        let (truth_tx, mut truths) = mpsc::channel(1);
        // Drains whose fleet slot was taken off the hub come back here.
        let (requeue, mut requeued) = mpsc::channel(64);
        loop {
            tokio::select! {
                item = watch.recv() => match item {
                    Some(item) => self.on_watch(item, &truth_tx).await,
                    None => break,
                },
                Some(request) = control.recv() => {
                    control::on_control(&mut self.routes, &self.reconciler, &requeue, request).await
                }
                Some(request) = requeued.recv() => {
                    control::on_control(&mut self.routes, &self.reconciler, &requeue, request).await
                }
                Some(truth) = truths.recv() => {
                    self.reads.in_flight = None;
                    if let Some(truth) = truth {
                        self.reconciler.apply(&mut self.routes, truth).await;
                    }
                    if let Some(why) = self.reads.pending.take() {
                        self.reconcile(why, &truth_tx);
                    }
                }
                _ = reconcile_tick.tick() => self.reconcile("periodic", &truth_tx),
                Some(why) = haproxy_news.recv() => self.reconcile(why, &truth_tx),
                _ = shutdown.recv() => break,
            }
        }
        tracing::info!(
            "controller stopped; in-progress drains are left for the next start to reconcile"
        );
    }

    /// Starts a reconciliation read in its own task, or folds the request into the next one
    /// when a read is under way.
    fn reconcile(&mut self, why: &'static str, truth_tx: &mpsc::Sender<Option<Truth>>) {
        if self
            .reads
            .in_flight
            .as_ref()
            .is_some_and(|r| !r.is_finished())
        {
            self.reads.pending.get_or_insert(why);
            return;
        }
        let (ctx, tx) = (self.ctx.clone(), truth_tx.clone());
        self.reads.in_flight = Some(tokio::spawn(async move {
            let _ = tx.send(Truth::read(ctx, why).await).await;
        }));
    }

    async fn on_watch(&mut self, item: WatchItem, truth_tx: &mpsc::Sender<Option<Truth>>) {
        match item {
            WatchItem::Connected { replayed_since } => {
                self.ctx.metrics.set_docker_connected(true);
                tracing::info!(?replayed_since, "Docker event stream connected");
                self.reconcile("docker_connected", truth_tx);
            }
            WatchItem::Disconnected { error } => {
                self.ctx.metrics.set_docker_connected(false);
                self.ctx.metrics.docker_reconnect();
                tracing::warn!(%error, "Docker event stream lost; reconnecting");
            }
            WatchItem::Event(event) => self.on_event(event).await,
        }
    }

    /// Routes a container event to its server's task; what it means is the task's decision.
    async fn on_event(&mut self, event: ContainerEvent) {
        let action = action_label(&event.action);
        self.ctx.metrics.docker_event(action);
        tracing::debug!(container = %event.name, action, time_nano = event.time_nano, "docker event");
        let Some(mapping) = self
            .routes
            .map_container(&event.id, &event.name, &event.attributes)
        else {
            return;
        };
        let server = mapping.server.clone();
        self.routes
            .ensure_task(&server, &mapping, Some(&event.id))
            .await;
        let Some(entry) = self.routes.servers.get_mut(&server) else {
            return;
        };
        entry.routed_at = Some(tokio::time::Instant::now());
        let is_current = entry
            .current_container
            .as_deref()
            .is_none_or(|current| current == event.id);
        if !is_current && entry.current_running {
            tracing::debug!(container = event.name, server = %server, action, "event of a replaced container ignored");
            return;
        }
        match &event.action {
            EventAction::Start => {
                entry.current_container = Some(event.id.clone());
                entry.current_running = true;
                self.routes.containers.insert(
                    event.id.clone(),
                    KnownContainer {
                        name: event.name.clone(),
                        server: server.clone(),
                        routed_at: tokio::time::Instant::now(),
                    },
                );
            }
            EventAction::Die { .. } | EventAction::Stop => entry.current_running = false,
            EventAction::Destroy => {
                entry.current_running = false;
                entry.current_container = None;
                self.routes.containers.remove(&event.id);
            }
            _ => {}
        }
        let _ = entry.tx.send(ServerMsg::Event(event)).await;
    }
}

fn action_label(action: &EventAction) -> &str {
    match action {
        EventAction::Kill { .. } => "kill",
        EventAction::Die { .. } => "die",
        EventAction::Stop => "stop",
        EventAction::Start => "start",
        EventAction::Restart => "restart",
        EventAction::Destroy => "destroy",
        EventAction::Healthy => "health_status: healthy",
        EventAction::Unhealthy => "health_status: unhealthy",
        EventAction::Pause => "pause",
        EventAction::Unpause => "unpause",
        EventAction::Other(other) => other.as_str(),
    }
}
