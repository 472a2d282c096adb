//! The recording methods: one per thing that happens, so callers never touch metric families.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::labels::*;
use super::{DrainResult, Metrics, RestoreResult};

impl Metrics {
    /// A drain began: the server is being taken out of rotation.
    /// `trigger`: `docker_event`, `api`, `roll`, `reconcile` or `gate` (anything else counts as `other`).
    pub fn drain_started(&self, trigger: &str, proxy: &str, server: &str) {
        self.drains_started
            .get_or_create(&TriggerServerLabels {
                trigger: fixed(TRIGGERS, trigger).to_string(),
                proxy: proxy.to_string(),
                server: server.to_string(),
            })
            .inc();
    }

    /// A drain ended. `duration`: out of rotation → 0 sessions (or → the deadline);
    /// `sessions_left`: sessions still open at that moment (0 when it drained fully).
    pub fn drain_finished(
        &self,
        trigger: &str,
        result: DrainResult,
        proxy: &str,
        server: &str,
        duration: Duration,
        sessions_left: u64,
    ) {
        self.drains_finished
            .get_or_create(&TriggerResultServerLabels {
                trigger: fixed(TRIGGERS, trigger).to_string(),
                result: result.as_str().to_string(),
                proxy: proxy.to_string(),
                server: server.to_string(),
            })
            .inc();
        self.drain_duration
            .get_or_create(&ResultServerLabels {
                result: result.as_str().to_string(),
                proxy: proxy.to_string(),
                server: server.to_string(),
            })
            .observe(duration.as_secs_f64());
        self.drain_sessions_left
            .get_or_create(&ServerLabels::new(proxy, server))
            .set(i64::try_from(sessions_left).unwrap_or(i64::MAX));
    }

    /// A restore ended. `start_to_rotation`: container start → back in rotation (when it got
    /// there); `out_of_rotation`: the whole time the server was out across this restart.
    pub fn restore_finished(
        &self,
        result: RestoreResult,
        proxy: &str,
        server: &str,
        start_to_rotation: Option<Duration>,
        out_of_rotation: Option<Duration>,
    ) {
        self.restores
            .get_or_create(&ResultServerLabels {
                result: result.as_str().to_string(),
                proxy: proxy.to_string(),
                server: server.to_string(),
            })
            .inc();
        let labels = ServerLabels::new(proxy, server);
        if let Some(elapsed) = start_to_rotation {
            self.restore_start_to_rotation
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
        }
        if let Some(elapsed) = out_of_rotation {
            self.out_of_rotation_duration
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
        }
    }

    /// The container kept running past the hold of a stop request: the app ignored the signal.
    pub fn stop_ignored(&self, proxy: &str, server: &str) {
        self.stops_ignored
            .get_or_create(&ServerLabels::new(proxy, server))
            .inc();
    }

    /// Docker event time → every HAProxy acknowledged the change. `action`: what was done
    /// (`drain`, `maint`, `restore`, …; at most [`super::OPEN_VOCABULARY_LIMIT`] distinct).
    pub fn reaction_latency(&self, action: &str, proxy: &str, server: &str, latency: Duration) {
        self.reaction_latency
            .get_or_create(&ActionServerLabels {
                action: self.vocabularies.reaction_action.admit(action),
                proxy: proxy.to_string(),
                server: server.to_string(),
            })
            .observe(latency.as_secs_f64());
    }

    /// Who holds the server out of rotation now: `Some("operator")`, `Some("haproxy-drain")`, or
    /// `None` (or `Some("none")`) when it is in rotation. Call it on every change; the series of
    /// the previous owner is removed, and the "since" timestamp is kept while the owner stays.
    pub fn set_out_of_rotation(&self, proxy: &str, server: &str, owner: Option<&str>) {
        let owner = owner
            .filter(|owner| !owner.eq_ignore_ascii_case("none"))
            .map(|owner| fixed(OWNERS, owner));
        for other in OWNERS.iter().copied().chain([OTHER]) {
            if Some(other) != owner {
                // The count stays at 0, so sums and panels show 0 rather than "no data"; the
                // timestamp goes, since a 0 would read as "out since 1970".
                let labels = owner_labels(proxy, server, other);
                if other != OTHER || self.servers_out_of_rotation.get(&labels).is_some() {
                    self.servers_out_of_rotation.get_or_create(&labels).set(0);
                }
                self.out_of_rotation_since.remove(&labels);
            }
        }
        let Some(owner) = owner else { return };
        let labels = owner_labels(proxy, server, owner);
        self.servers_out_of_rotation.get_or_create(&labels).set(1);
        if self.out_of_rotation_since.get(&labels).is_none() {
            self.out_of_rotation_since
                .get_or_create(&labels)
                .set(unix_now_seconds());
        }
    }

    /// The admin state haproxy-drain wants (`desired`) and the one HAProxy reports (`actual`),
    /// each one of `ready`, `drain`, `maint`; any other word sets all three to 0.
    pub fn set_server_state(&self, proxy: &str, server: &str, desired: &str, actual: &str) {
        self.initialise_server_counters(proxy, server);
        for state in SERVER_STATES {
            let labels = StateServerLabels {
                proxy: proxy.to_string(),
                server: server.to_string(),
                state: state.to_string(),
            };
            let flag = |value: &str| i64::from(value.trim().eq_ignore_ascii_case(state));
            self.desired_state.get_or_create(&labels).set(flag(desired));
            self.actual_state.get_or_create(&labels).set(flag(actual));
        }
    }

    /// Creates a server's drain and restore counters at 0 the first time it is seen: a counter
    /// series that first appears already at 1 is invisible to `increase()`, so the first timeout
    /// of a server would never alert.
    fn initialise_server_counters(&self, proxy: &str, server: &str) {
        let first_state = StateServerLabels {
            proxy: proxy.to_string(),
            server: server.to_string(),
            state: SERVER_STATES[0].to_string(),
        };
        if self.desired_state.get(&first_state).is_some() {
            return;
        }
        let results = [
            DrainResult::Drained,
            DrainResult::TimedOut,
            DrainResult::Aborted,
        ];
        for trigger in TRIGGERS {
            self.drains_started
                .get_or_create_owned(&TriggerServerLabels {
                    trigger: trigger.to_string(),
                    proxy: proxy.to_string(),
                    server: server.to_string(),
                });
            for result in results {
                self.drains_finished
                    .get_or_create_owned(&TriggerResultServerLabels {
                        trigger: trigger.to_string(),
                        result: result.as_str().to_string(),
                        proxy: proxy.to_string(),
                        server: server.to_string(),
                    });
            }
        }
        for result in [
            RestoreResult::Restored,
            RestoreResult::HealthTimeout,
            RestoreResult::Failed,
        ] {
            self.restores.get_or_create_owned(&ResultServerLabels {
                result: result.as_str().to_string(),
                proxy: proxy.to_string(),
                server: server.to_string(),
            });
        }
        // Histograms and gauges too: a panel over a family with no series says "no data".
        for result in results {
            self.drain_duration
                .get_or_create_owned(&ResultServerLabels {
                    result: result.as_str().to_string(),
                    proxy: proxy.to_string(),
                    server: server.to_string(),
                });
        }
        let labels = ServerLabels::new(proxy, server);
        self.stops_ignored.get_or_create_owned(&labels);
        self.drain_sessions_left.get_or_create_owned(&labels);
        self.restore_start_to_rotation.get_or_create_owned(&labels);
        self.out_of_rotation_duration.get_or_create_owned(&labels);
        for action in REACTION_ACTIONS {
            self.reaction_latency
                .get_or_create_owned(&ActionServerLabels {
                    action: self.vocabularies.reaction_action.admit(action),
                    proxy: proxy.to_string(),
                    server: server.to_string(),
                });
        }
        for owner in OWNERS {
            self.servers_out_of_rotation
                .get_or_create_owned(&owner_labels(proxy, server, owner));
        }
    }

    /// The server is gone from the configuration: drop its gauges so it stops showing up as out
    /// of rotation or mismatched. Counters and histograms keep their history.
    pub fn forget_server(&self, proxy: &str, server: &str) {
        for owner in OWNERS.iter().copied().chain([OTHER]) {
            let labels = owner_labels(proxy, server, owner);
            self.servers_out_of_rotation.remove(&labels);
            self.out_of_rotation_since.remove(&labels);
        }
        for state in SERVER_STATES {
            let labels = StateServerLabels {
                proxy: proxy.to_string(),
                server: server.to_string(),
                state: state.to_string(),
            };
            self.desired_state.remove(&labels);
            self.actual_state.remove(&labels);
        }
        self.drain_sessions_left
            .remove(&ServerLabels::new(proxy, server));
    }

    /// A container event arrived. Unknown actions (and `exec_*`, `rename`, …) count as `other`;
    /// `health_status: healthy` counts as `healthy`.
    pub fn docker_event(&self, action: &str) {
        self.docker_events
            .get_or_create(&ActionLabels {
                action: docker_action(action).to_string(),
            })
            .inc();
    }

    pub fn docker_reconnect(&self) {
        self.docker_reconnects.inc();
    }

    pub fn set_docker_connected(&self, connected: bool) {
        self.docker_connected.set(i64::from(connected));
    }

    /// A reconciliation was applied; `/readyz` waits for the first.
    pub fn reconciled(&self) {
        self.reconciled
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// One runtime API command. `command`: a verb such as `set_weight`; `result`: `ok` or
    /// `error` (anything other than `ok` counts as `error`).
    pub fn haproxy_command(&self, command: &str, result: &str, duration: Duration) {
        let command = self.vocabularies.command.admit(command);
        let result = if result.trim().eq_ignore_ascii_case("ok") {
            "ok"
        } else {
            "error"
        };
        self.haproxy_commands
            .get_or_create(&CommandResultLabels {
                command: command.clone(),
                result: result.to_string(),
            })
            .inc();
        self.haproxy_command_duration
            .get_or_create(&CommandLabels { command })
            .observe(duration.as_secs_f64());
    }

    /// `haproxy`: the address haproxy-drain uses for that HAProxy (socket path or URL). Call it
    /// once per HAProxy at start-up (with `false`) so `/readyz` knows to wait for it.
    pub fn set_haproxy_connected(&self, haproxy: &str, connected: bool) {
        self.haproxy_connected
            .get_or_create(&HaproxyLabels {
                haproxy: self.vocabularies.haproxy.admit(haproxy),
            })
            .set(i64::from(connected));
        self.haproxies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(haproxy.to_string(), connected);
    }

    pub fn reload_detected(&self) {
        self.reloads_detected.inc();
    }

    /// Reconciliation found and fixed a difference. `kind`: e.g. `state`, `weight`, `owner`.
    pub fn reconcile_correction(&self, kind: &str) {
        self.reconcile_corrections
            .get_or_create(&KindLabels {
                kind: self.vocabularies.correction_kind.admit(kind),
            })
            .inc();
    }

    /// A configuration file or container label could not be used. `kind`: e.g. `label`, `config`.
    pub fn config_error(&self, kind: &str) {
        self.config_errors
            .get_or_create(&KindLabels {
                kind: self.vocabularies.config_error_kind.admit(kind),
            })
            .inc();
    }

    /// One container of a rolling restart done. `result`: e.g. `ok`, `failed`, `timed_out`.
    pub fn roll_step(&self, result: &str) {
        self.roll_steps
            .get_or_create(&ResultLabels {
                result: self.vocabularies.roll_result.admit(result),
            })
            .inc();
    }

    /// A whole rolling restart done. `result`: e.g. `ok`, `failed`, `aborted`.
    pub fn roll_finished(&self, result: &str) {
        self.rolls
            .get_or_create(&ResultLabels {
                result: self.vocabularies.roll_result.admit(result),
            })
            .inc();
    }

    /// One request through the Docker gate. Both labels come from the gate's fixed vocabulary
    /// (`src/gate`), never from the request.
    pub fn gate_request(&self, kind: &'static str, result: &'static str) {
        self.gate_requests
            .get_or_create(&KindResultLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }
}

fn owner_labels(proxy: &str, server: &str, owner: &str) -> OwnerServerLabels {
    OwnerServerLabels {
        proxy: proxy.to_string(),
        server: server.to_string(),
        owner: owner.to_string(),
    }
}

fn unix_now_seconds() -> f64 {
    // A clock before 1970 is a broken host; 0 makes "out since" alerts fire: the safe side.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}
