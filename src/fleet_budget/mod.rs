//! The fleet-wide availability budget on etcd (`[fleet]`): never more than N servers of a
//! backend out of rotation across every host, whoever takes them out.
//!
//! - `keys`: where slots live in etcd. `slots`: the arithmetic (pure). `hold`: which slots
//!   this host should hold, from what its servers do (pure).
//! - `etcd`: the only user of etcd-client; bounded calls, typed errors (`error`).
//! - [`FleetBudget`] (`budget`): the controller's handle: `acquire` before a drain, `track`
//!   for every server, `status` for `status --fleet`.
//! - `keeper`: the task that holds the lease and keeps this host's slots in step.

mod budget;
mod error;
mod etcd;
mod hold;
mod keeper;
mod keys;
mod slots;
mod status;

use std::sync::Arc;

pub use budget::{budget_text, Acquired, FleetBudget, LocalProbe, SlotWait};
pub use error::FleetError;
pub use hold::LocalState;
pub use keys::Keys;
pub use slots::{BackendView, Holder};
pub use status::{BackendStatus, FleetStatus};

use crate::config::FleetConfig;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Connects (lazily: etcd may be down) and starts the keeper.
pub async fn start(
    config: FleetConfig,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> Result<Arc<FleetBudget>, FleetError> {
    let etcd = etcd::EtcdSlots::connect(&config).await?;
    let budget = Arc::new(FleetBudget::new(config, etcd, metrics));
    tokio::spawn(keeper::run(budget.clone(), shutdown));
    Ok(budget)
}

/// For `haproxy-drain check`: etcd answers, and each budget's state in one line.
pub async fn probe(config: &FleetConfig) -> Result<String, FleetError> {
    let etcd = etcd::EtcdSlots::connect(config).await?;
    let mut parts = Vec::new();
    for (backend, budget) in &config.budgets {
        let (view, _) = etcd.read_backend(backend).await?;
        parts.push(format!(
            "{backend}: budget {} of {} server(s), held by {}",
            budget_text(*budget),
            view.total_servers(),
            view.holders_text()
        ));
    }
    if parts.is_empty() {
        parts.push("no backend in [fleet.budgets]".to_string());
    }
    Ok(format!(
        "etcd at {} as host {}: {}",
        etcd.endpoints(),
        config.host,
        parts.join("; ")
    ))
}
