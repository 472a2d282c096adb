//! The fleet budget's series (`[fleet]`, see `fleet_budget`): slots held, waits, refusals and
//! fallbacks when etcd cannot be asked. Backends come from the configuration, so the label is
//! bounded; every configured backend's series exist at 0 from the start.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FleetBackendLabels {
    pub proxy: String,
}

/// Why a drain went on without a fleet slot; the `reason` label of the fallbacks counter.
pub const FALLBACK_REASONS: &[&str] = &["etcd_unreachable"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FleetReasonLabels {
    pub proxy: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct FleetMetrics {
    slots_held: Family<FleetBackendLabels, Gauge>,
    waits: Family<FleetBackendLabels, Counter>,
    refusals: Family<FleetBackendLabels, Counter>,
    fallbacks: Family<FleetReasonLabels, Counter>,
    etcd_reachable: Gauge,
}

impl FleetMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "fleet_slots_held",
            "Fleet budget slots this sidecar holds in etcd now, by backend",
            self.slots_held.clone(),
        );
        r.register(
            "fleet_waits",
            "Drains that waited for a fleet budget slot (roll, drain --wait, the Docker API gate), by backend",
            self.waits.clone(),
        );
        r.register(
            "fleet_refusals",
            "Drains refused because the fleet budget was full (drain without --wait, or a wait that timed out), by backend",
            self.refusals.clone(),
        );
        r.register(
            "fleet_fallbacks",
            "Drains that went on under the local budget only because etcd could not be asked, by backend and reason",
            self.fallbacks.clone(),
        );
        r.register(
            "fleet_etcd_reachable",
            "1 while the last etcd call of the fleet budget succeeded",
            self.etcd_reachable.clone(),
        );
    }

    /// Creates every series of `backend` at 0 (called once per configured backend).
    pub fn declare_backend(&self, backend: &str) {
        let labels = FleetBackendLabels {
            proxy: backend.to_string(),
        };
        let _ = self.slots_held.get_or_create(&labels);
        let _ = self.waits.get_or_create(&labels);
        let _ = self.refusals.get_or_create(&labels);
        for reason in FALLBACK_REASONS {
            let _ = self.fallbacks.get_or_create(&FleetReasonLabels {
                proxy: backend.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    pub fn set_slots_held(&self, backend: &str, held: usize) {
        self.slots_held
            .get_or_create(&FleetBackendLabels {
                proxy: backend.to_string(),
            })
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    pub fn waited(&self, backend: &str) {
        self.waits
            .get_or_create(&FleetBackendLabels {
                proxy: backend.to_string(),
            })
            .inc();
    }

    pub fn refused(&self, backend: &str) {
        self.refusals
            .get_or_create(&FleetBackendLabels {
                proxy: backend.to_string(),
            })
            .inc();
    }

    pub fn fell_back(&self, backend: &str) {
        self.fallbacks
            .get_or_create(&FleetReasonLabels {
                proxy: backend.to_string(),
                reason: FALLBACK_REASONS[0].to_string(),
            })
            .inc();
    }

    pub fn set_etcd_reachable(&self, reachable: bool) {
        self.etcd_reachable.set(i64::from(reachable));
    }
}
