//! What `haproxy-drain status --fleet` shows: each coordinated backend's budget and holders.

use serde::{Deserialize, Serialize};

use super::slots::Holder;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// This sidecar's name in the fleet.
    pub host: String,
    pub endpoints: String,
    pub backends: Vec<BackendStatus>,
    /// Why etcd could not be read (the backends are then empty).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    pub backend: String,
    /// As configured: `1`, `35%`.
    pub budget: String,
    /// Servers in the backend across the live hosts.
    pub servers: usize,
    pub max_out: usize,
    pub holders: Vec<Holder>,
}

impl FleetStatus {
    /// One line per backend, then one per holder; for the CLI.
    pub fn render(&self) -> String {
        let mut out = format!("fleet: host {} on etcd {}\n", self.host, self.endpoints);
        if let Some(error) = &self.error {
            out.push_str(&format!("etcd not readable: {error}\n"));
        }
        for backend in &self.backends {
            out.push_str(&format!(
                "backend {}: budget {} of {} server(s) = {} out at once; {} held\n",
                backend.backend,
                backend.budget,
                backend.servers,
                backend.max_out,
                backend.holders.len()
            ));
            for holder in &backend.holders {
                let since = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(holder.since_unix_ms),
                );
                out.push_str(&format!(
                    "  {}  {}  {}  since {since}\n",
                    holder.host, holder.server, holder.reason
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_the_budget_and_every_holder() {
        let status = FleetStatus {
            host: "host-a".into(),
            endpoints: "http://127.0.0.1:2379".into(),
            backends: vec![BackendStatus {
                backend: "app".into(),
                budget: "1".into(),
                servers: 6,
                max_out: 1,
                holders: vec![Holder {
                    host: "host-b".into(),
                    server: "app2".into(),
                    since_unix_ms: 0,
                    reason: "roll".into(),
                }],
            }],
            error: None,
        };
        let text = status.render();
        assert!(text.contains("backend app: budget 1 of 6 server(s) = 1 out at once; 1 held"));
        assert!(text.contains("host-b  app2  roll  since 1970-01-01T00:00:00Z"));
    }
}
