//! Where the fleet budget lives in etcd. Pure.
//!
//! ```text
//! <prefix>/<backend>/slots/<host>/<server>   one per server out of rotation, under its host's lease
//! <prefix>/<backend>/hosts/<host>            that host's server count (for "35%" budgets), same lease
//! ```
//! Counting a backend's slots is one range read of `<prefix>/<backend>/slots/`.

/// One key, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetKey {
    Slot {
        backend: String,
        host: String,
        server: String,
    },
    Host {
        backend: String,
        host: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix` without a trailing `/` (the configuration strips it).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// Everything of this fleet.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub fn backend(&self, backend: &str) -> String {
        format!("{}/{backend}/", self.prefix)
    }

    pub fn slots(&self, backend: &str) -> String {
        format!("{}/{backend}/slots/", self.prefix)
    }

    pub fn slot(&self, backend: &str, host: &str, server: &str) -> String {
        format!("{}/{backend}/slots/{host}/{server}", self.prefix)
    }

    pub fn host(&self, backend: &str, host: &str) -> String {
        format!("{}/{backend}/hosts/{host}", self.prefix)
    }

    pub fn parse(&self, key: &str) -> Option<FleetKey> {
        let rest = key.strip_prefix(&self.root())?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [backend, "slots", host, server] if !server.is_empty() => Some(FleetKey::Slot {
                backend: backend.to_string(),
                host: host.to_string(),
                server: server.to_string(),
            }),
            [backend, "hosts", host] if !host.is_empty() => Some(FleetKey::Host {
                backend: backend.to_string(),
                host: host.to_string(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let keys = Keys::new("/haproxy-drain/fleet/");
        let slot = keys.slot("app", "host-a", "app1");
        assert_eq!(slot, "/haproxy-drain/fleet/app/slots/host-a/app1");
        assert!(slot.starts_with(&keys.slots("app")));
        assert!(slot.starts_with(&keys.backend("app")));
        assert_eq!(
            keys.parse(&slot),
            Some(FleetKey::Slot {
                backend: "app".into(),
                host: "host-a".into(),
                server: "app1".into()
            })
        );
        assert_eq!(
            keys.parse(&keys.host("app", "host-b")),
            Some(FleetKey::Host {
                backend: "app".into(),
                host: "host-b".into()
            })
        );
    }

    #[test]
    fn foreign_keys_are_not_ours() {
        let keys = Keys::new("/haproxy-drain/fleet");
        for key in [
            "/other/app/slots/a/b",
            "/haproxy-drain/fleet/app/slots/a",
            "/haproxy-drain/fleet/app/slots/a/",
            "/haproxy-drain/fleet/app/other/a",
            "/haproxy-drain/fleet/app/hosts/",
        ] {
            assert_eq!(keys.parse(key), None, "{key}");
        }
    }
}
