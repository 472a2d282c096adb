//! Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` endpoints.
//!
//! [`Metrics`] is created once by the daemon and shared as `Arc<Metrics>`; the controller, the
//! Docker watcher and the HAProxy client call its recording methods, which never fail and never
//! block for long (atomic updates behind short locks). Every series carries the prefix
//! `haproxy_drain_`; server series use HAProxy's exporter label names `proxy` and `server` so they
//! join with HAProxy's own metrics. Label values fed from outside are bounded (see [`labels`]).
//!
//! The endpoint serves the classic Prometheus text format (0.0.4), not OpenMetrics, because
//! `promtool check metrics` and older scrapers only parse the classic one.

mod buckets;
mod fleet;
mod labels;
mod record;
mod server;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use fleet::FleetMetrics;
pub use labels::{OPEN_VOCABULARY_LIMIT, OTHER, SERVER_STATES};
pub use server::{router, serve, MetricsServer, CONTENT_TYPE};

use buckets::{fast_histogram, histogram_family, long_histogram, HistogramFamily};
use labels::*;

/// How a drain ended; the `result` label of `haproxy_drain_drains_finished_total`.
pub use crate::drain::DrainResult;

/// How a restore ended; the `result` label of `haproxy_drain_restores_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestoreResult {
    /// The server is back in rotation.
    Restored,
    /// The container never became healthy before the health deadline.
    HealthTimeout,
    /// HAProxy refused the change or another error stopped the restore.
    Failed,
}

impl RestoreResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreResult::Restored => "restored",
            RestoreResult::HealthTimeout => "health_timeout",
            RestoreResult::Failed => "failed",
        }
    }
}

/// Why the metrics endpoint could not run.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "cannot listen for metrics on {addr}: {source} (port in use? change --metrics-listen)"
    )]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the metrics endpoint on {addr} stopped: {source}")]
    Serve {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("encoding metrics failed (a bug in haproxy-drain; please report it)")]
    Encode(#[from] std::fmt::Error),
}

/// Whether haproxy-drain can do its job right now; what `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Each entry names one thing that is not connected.
    NotReady(Vec<String>),
}

/// All of haproxy-drain's metrics. Share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    drains_started: Family<TriggerServerLabels, Counter>,
    drains_finished: Family<TriggerResultServerLabels, Counter>,
    drain_duration: HistogramFamily<ResultServerLabels>,
    drain_sessions_left: Family<ServerLabels, Gauge>,
    restores: Family<ResultServerLabels, Counter>,
    stops_ignored: Family<ServerLabels, Counter>,
    restore_start_to_rotation: HistogramFamily<ServerLabels>,
    out_of_rotation_duration: HistogramFamily<ServerLabels>,
    reaction_latency: HistogramFamily<ActionServerLabels>,
    servers_out_of_rotation: Family<OwnerServerLabels, Gauge>,
    out_of_rotation_since: Family<OwnerServerLabels, Gauge<f64, AtomicU64>>,
    desired_state: Family<StateServerLabels, Gauge>,
    actual_state: Family<StateServerLabels, Gauge>,
    docker_events: Family<ActionLabels, Counter>,
    docker_reconnects: Counter,
    docker_connected: Gauge,
    /// The first reconciliation was applied: the daemon knows its servers.
    reconciled: std::sync::atomic::AtomicBool,
    haproxy_commands: Family<CommandResultLabels, Counter>,
    haproxy_command_duration: HistogramFamily<CommandLabels>,
    haproxy_connected: Family<HaproxyLabels, Gauge>,
    reloads_detected: Counter,
    reconcile_corrections: Family<KindLabels, Counter>,
    config_errors: Family<KindLabels, Counter>,
    roll_steps: Family<ResultLabels, Counter>,
    rolls: Family<ResultLabels, Counter>,
    gate_requests: Family<KindResultLabels, Counter>,
    /// The fleet budget on etcd (`[fleet]`).
    pub fleet: FleetMetrics,
    vocabularies: Vocabularies,
    /// HAProxy URL → connected; kept apart from the gauge so `/readyz` can list every URL even
    /// when the gauge's label folded some into `other`.
    haproxies: Mutex<BTreeMap<String, bool>>,
}

/// One bounded vocabulary per open label.
#[derive(Debug, Default)]
struct Vocabularies {
    reaction_action: BoundedVocabulary,
    command: BoundedVocabulary,
    correction_kind: BoundedVocabulary,
    config_error_kind: BoundedVocabulary,
    haproxy: BoundedVocabulary,
    roll_result: BoundedVocabulary,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric family. Families without samples yet still show their HELP/TYPE.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("haproxy_drain");
        let mut metrics = Self {
            drains_started: Family::default(),
            drains_finished: Family::default(),
            drain_duration: histogram_family(long_histogram),
            drain_sessions_left: Family::default(),
            restores: Family::default(),
            stops_ignored: Family::default(),
            restore_start_to_rotation: histogram_family(long_histogram),
            out_of_rotation_duration: histogram_family(long_histogram),
            reaction_latency: histogram_family(fast_histogram),
            servers_out_of_rotation: Family::default(),
            out_of_rotation_since: Family::default(),
            desired_state: Family::default(),
            actual_state: Family::default(),
            docker_events: Family::default(),
            docker_reconnects: Counter::default(),
            docker_connected: Gauge::default(),
            reconciled: std::sync::atomic::AtomicBool::new(false),
            haproxy_commands: Family::default(),
            haproxy_command_duration: histogram_family(fast_histogram),
            haproxy_connected: Family::default(),
            reloads_detected: Counter::default(),
            reconcile_corrections: Family::default(),
            config_errors: Family::default(),
            roll_steps: Family::default(),
            rolls: Family::default(),
            gate_requests: Family::default(),
            fleet: FleetMetrics::default(),
            vocabularies: Vocabularies::default(),
            haproxies: Mutex::new(BTreeMap::new()),
            registry: Registry::default(),
        };
        metrics.register_all(&mut registry);
        metrics.registry = registry;
        metrics.initialise_known_series();
        metrics
    }

    /// Every series whose label values are known before anything happens, at 0.
    fn initialise_known_series(&self) {
        for action in DOCKER_ACTIONS {
            self.docker_events.get_or_create_owned(&ActionLabels {
                action: action.to_string(),
            });
        }
        for kind in CORRECTION_KINDS {
            self.reconcile_corrections.get_or_create_owned(&KindLabels {
                kind: self.vocabularies.correction_kind.admit(kind),
            });
        }
        for kind in CONFIG_ERROR_KINDS {
            self.config_errors.get_or_create_owned(&KindLabels {
                kind: self.vocabularies.config_error_kind.admit(kind),
            });
        }
        for result in ROLL_RESULTS {
            let labels = ResultLabels {
                result: self.vocabularies.roll_result.admit(result),
            };
            self.roll_steps.get_or_create_owned(&labels);
            self.rolls.get_or_create_owned(&labels);
        }
        for command in crate::haproxy::Command::VERBS {
            let command = self.vocabularies.command.admit(command);
            for result in ["ok", "error"] {
                self.haproxy_commands
                    .get_or_create_owned(&CommandResultLabels {
                        command: command.clone(),
                        result: result.to_string(),
                    });
            }
            self.haproxy_command_duration
                .get_or_create_owned(&CommandLabels { command });
        }
    }

    fn register_all(&self, r: &mut Registry) {
        r.register(
            "build",
            "haproxy-drain's version; always 1",
            Info::new(VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }),
        );
        r.register(
            "drains_started",
            "Drains started, by what triggered them",
            self.drains_started.clone(),
        );
        r.register(
            "drains_finished",
            "Drains finished, by trigger and result (drained, timed_out, aborted)",
            self.drains_finished.clone(),
        );
        r.register(
            "drain_duration_seconds",
            "Time from out of rotation to the last session closing (or to the deadline)",
            self.drain_duration.clone(),
        );
        r.register(
            "drain_sessions_left",
            "Sessions open when the server's last drain ended; above 0: the deadline cut them",
            self.drain_sessions_left.clone(),
        );
        r.register(
            "restores",
            "Restores finished, by result (restored, health_timeout, failed)",
            self.restores.clone(),
        );
        r.register(
            "stops_ignored",
            "Stop requests (e.g. docker kill -s TERM) after which the container kept running past \
             its stop timeout plus the drain timeout; the server was put back through the gate",
            self.stops_ignored.clone(),
        );
        r.register(
            "restore_start_to_rotation_seconds",
            "Time from the container starting to the server being back in rotation",
            self.restore_start_to_rotation.clone(),
        );
        r.register(
            "out_of_rotation_duration_seconds",
            "Total time a server was out of rotation across one container restart",
            self.out_of_rotation_duration.clone(),
        );
        r.register(
            "reaction_latency_seconds",
            "Time from the Docker event to every HAProxy acknowledging the change, by action",
            self.reaction_latency.clone(),
        );
        r.register(
            "servers_out_of_rotation",
            "1 per server out of rotation now; owner: who took it out (operator, haproxy-drain)",
            self.servers_out_of_rotation.clone(),
        );
        r.register(
            "out_of_rotation_since_timestamp_seconds",
            "Unix time at which the server was taken out of rotation by its current owner",
            self.out_of_rotation_since.clone(),
        );
        r.register(
            "server_desired_state",
            "1 for the admin state (ready, drain, maint) haproxy-drain wants, 0 for the others",
            self.desired_state.clone(),
        );
        r.register(
            "server_actual_state",
            "1 for the admin state (ready, drain, maint) HAProxy reports, 0 for the others",
            self.actual_state.clone(),
        );
        r.register(
            "docker_events",
            "Docker container events received, by action",
            self.docker_events.clone(),
        );
        r.register(
            "docker_reconnects",
            "Times the Docker event stream was lost and reconnected",
            self.docker_reconnects.clone(),
        );
        r.register(
            "docker_connected",
            "1 while the Docker event stream is connected",
            self.docker_connected.clone(),
        );
        r.register(
            "haproxy_commands",
            "HAProxy runtime API commands sent, by command and result (ok, error)",
            self.haproxy_commands.clone(),
        );
        r.register(
            "haproxy_command_duration_seconds",
            "HAProxy runtime API command round-trip time, by command",
            self.haproxy_command_duration.clone(),
        );
        r.register(
            "haproxy_connected",
            "1 while the HAProxy runtime API at this address answers",
            self.haproxy_connected.clone(),
        );
        r.register(
            "reloads_detected",
            "HAProxy reloads detected (servers' state reset underneath haproxy-drain)",
            self.reloads_detected.clone(),
        );
        r.register(
            "reconcile_corrections",
            "Differences between desired and actual state that reconciliation corrected, by kind",
            self.reconcile_corrections.clone(),
        );
        r.register(
            "config_errors",
            "Configuration and container label errors, by kind",
            self.config_errors.clone(),
        );
        r.register(
            "roll_steps",
            "Rolling-restart steps (one container each), by result",
            self.roll_steps.clone(),
        );
        r.register(
            "rolls",
            "Rolling restarts finished, by result",
            self.rolls.clone(),
        );
        r.register(
            "gate_requests",
            "Docker API requests through the gate, by kind (stop, restart, kill, remove, other) and result",
            self.gate_requests.clone(),
        );
        self.fleet.register(r);
    }

    /// The current values in the classic Prometheus text format.
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Ready when the Docker event stream is connected, at least one HAProxy is known and every
    /// known HAProxy answers.
    pub fn readiness(&self) -> Readiness {
        let mut missing = Vec::new();
        if self.docker_connected.get() != 1 {
            missing.push("docker: event stream not connected".to_string());
        }
        let haproxies = self
            .haproxies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if haproxies.is_empty() {
            missing.push("haproxy: no HAProxy connected yet".to_string());
        }
        if !self.reconciled.load(std::sync::atomic::Ordering::Relaxed) {
            missing.push("reconciliation: the first pass has not finished".to_string());
        }
        for (url, connected) in haproxies.iter() {
            if !connected {
                missing.push(format!("haproxy {url}: not connected"));
            }
        }
        if missing.is_empty() {
            Readiness::Ready
        } else {
            Readiness::NotReady(missing)
        }
    }
}

#[cfg(test)]
mod tests;
