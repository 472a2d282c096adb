//! Each [`Report`] of the machine is one log line and one metric, written in one place so the
//! two cannot drift apart.

use crate::drain::Report;
use crate::haproxy::ServerId;
use crate::metrics::{Metrics, RestoreResult};

pub fn emit(id: &ServerId, report: &Report, metrics: &Metrics) {
    let (proxy, server) = (id.backend.as_str(), id.server.as_str());
    match *report {
        Report::DrainStarted { trigger } => metrics.drain_started(trigger.as_str(), proxy, server),
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
            tracing::info!(server = %id, trigger = trigger.as_str(), result = result.as_str(), elapsed_ms = elapsed.as_millis() as u64, sessions_left, "drain finished");
        }
        Report::Restored {
            start_to_rotation,
            out_of_rotation,
        } => {
            metrics.restore_finished(
                RestoreResult::Restored,
                proxy,
                server,
                start_to_rotation,
                Some(out_of_rotation),
            );
            tracing::info!(server = %id, start_to_rotation_ms = start_to_rotation.map(|d| d.as_millis() as u64), out_of_rotation_ms = out_of_rotation.as_millis() as u64, "back in rotation");
        }
        Report::GateTimedOut { waited } => {
            metrics.restore_finished(RestoreResult::HealthTimeout, proxy, server, None, None);
            tracing::warn!(server = %id, waited_ms = waited.as_millis() as u64, "container not healthy before the health timeout; keeping the server out of rotation and still probing");
        }
        Report::StopIgnored { held } => {
            metrics.stop_ignored(proxy, server);
            tracing::warn!(server = %id, held_ms = held.as_millis() as u64, "the container was asked to stop but still runs the same run after its stop timeout plus the drain timeout (the app ignored the signal?); putting the server back through the health gate");
        }
        Report::RampYielded { expected, found } => {
            tracing::info!(server = %id, expected, found, "weight changed during the slow start (an operator's?); the ramp ends and leaves it as it is");
        }
        Report::Correction(kind) => {
            metrics.reconcile_correction(kind);
            tracing::info!(server = %id, kind, "reconciliation corrected HAProxy");
        }
    }
}

/// A restore that did not reach every HAProxy: the record stays, reconciliation retries.
pub fn restore_failed(id: &ServerId, metrics: &Metrics) {
    metrics.restore_finished(RestoreResult::Failed, &id.backend, &id.server, None, None);
    tracing::warn!(server = %id, "restore did not reach every HAProxy; still held, retried at the next reconciliation");
}
