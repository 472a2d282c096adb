//! Why a fleet budget operation failed, with what an operator should do about it.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("etcd at {endpoints} did not answer ({operation}) within {} ms: check that etcd runs and that [fleet] endpoints names it", timeout.as_millis())]
    Timeout {
        endpoints: String,
        operation: String,
        timeout: Duration,
    },
    #[error("etcd at {endpoints} failed ({operation}): {message}")]
    Etcd {
        endpoints: String,
        operation: String,
        message: String,
    },
    #[error("no etcd lease yet (etcd at {endpoints} has not answered since the start): the fleet budget cannot be checked")]
    NoLease { endpoints: String },
    #[error("the fleet budget of backend {backend} allows {max_out} server(s) out at once and {held} are out: {holders}; draining {server} now would exceed it (wait with --wait, or --force)")]
    Full {
        backend: String,
        server: String,
        max_out: usize,
        held: usize,
        holders: String,
    },
    #[error("waited {waited_ms} ms for a fleet budget slot of backend {backend} for {server}; still held by {holders}")]
    WaitTimedOut {
        backend: String,
        server: String,
        waited_ms: u64,
        holders: String,
    },
}

impl FleetError {
    /// etcd could not be asked (as opposed to an answer that says no).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            FleetError::Timeout { .. } | FleetError::Etcd { .. } | FleetError::NoLease { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_backend_the_server_and_the_holders() {
        let full = FleetError::Full {
            backend: "app".into(),
            server: "app/app1".into(),
            max_out: 1,
            held: 1,
            holders: "host-b/app2 (roll)".into(),
        };
        let text = full.to_string();
        assert!(text.contains("backend app"), "{text}");
        assert!(text.contains("host-b/app2"), "{text}");
        assert!(!full.is_unreachable());
        let timeout = FleetError::Timeout {
            endpoints: "http://127.0.0.1:2379".into(),
            operation: "read slots".into(),
            timeout: Duration::from_secs(2),
        };
        assert!(timeout.to_string().contains("2000 ms"));
        assert!(timeout.is_unreachable());
    }
}
