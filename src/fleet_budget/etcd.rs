//! The etcd edge of the fleet budget (etcd-client, the only user of it): one bounded call per
//! method, each failure a [`FleetError`] naming the endpoints and the operation.
//!
//! Taking a slot is one transaction: read the backend's slots at revision R, then put the new
//! slot only if no key under the backend's slot prefix was modified after R (a ranged compare
//! on `mod_revision`). Two hosts that both read a free slot cannot both pass: the second
//! transaction sees the first one's key and fails, and its caller reads again.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp};

use super::error::FleetError;
use super::keys::{FleetKey, Keys};
use super::slots::{BackendView, Holder};
use crate::config::FleetConfig;

/// What a slot's value records (host and server are in its key).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SlotValue {
    since_unix_ms: u64,
    reason: String,
}

#[derive(Clone)]
pub struct EtcdSlots {
    client: Client,
    endpoints: String,
    timeout: Duration,
    pub keys: Keys,
}

impl std::fmt::Debug for EtcdSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSlots")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl EtcdSlots {
    /// Does not wait for etcd: the channel connects on first use, so a sidecar starts (and
    /// falls back) while etcd is down.
    pub async fn connect(config: &FleetConfig) -> Result<Self, FleetError> {
        let endpoints = config.endpoints.join(",");
        let options = ConnectOptions::new()
            .with_connect_timeout(config.request_timeout)
            .with_timeout(config.request_timeout);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| FleetError::Etcd {
                endpoints: endpoints.clone(),
                operation: "connect".into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            endpoints,
            timeout: config.request_timeout,
            keys: Keys::new(&config.prefix),
        })
    }

    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    async fn call<T, F>(&self, operation: &str, call: F) -> Result<T, FleetError>
    where
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(FleetError::Etcd {
                endpoints: self.endpoints.clone(),
                operation: operation.to_string(),
                message: error.to_string(),
            }),
            Err(_) => Err(FleetError::Timeout {
                endpoints: self.endpoints.clone(),
                operation: operation.to_string(),
                timeout: self.timeout,
            }),
        }
    }

    /// A new lease of `ttl` (whole seconds, at least 1).
    pub async fn grant(&self, ttl: Duration) -> Result<i64, FleetError> {
        let mut client = self.client.clone();
        let ttl = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let granted = self
            .call("grant a lease", client.lease_grant(ttl, None))
            .await?;
        Ok(granted.id())
    }

    /// Renews `lease`; `Ok(false)` when etcd no longer knows it (it expired).
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, FleetError> {
        let mut client = self.client.clone();
        let (mut keeper, mut stream) = self
            .call("open a lease keep-alive", client.lease_keep_alive(lease))
            .await?;
        self.call("renew the lease", keeper.keep_alive()).await?;
        let answer = self.call("renew the lease", stream.message()).await?;
        Ok(answer.is_some_and(|a| a.ttl() > 0))
    }

    /// Every slot and host count of `backend`, and the revision they were read at.
    pub async fn read_backend(&self, backend: &str) -> Result<(BackendView, i64), FleetError> {
        let mut client = self.client.clone();
        let prefix = self.keys.backend(backend);
        let answer = self
            .call(
                "read the backend's slots",
                client.get(prefix, Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let revision = answer.header().map_or(0, |h| h.revision());
        let mut view = BackendView::default();
        for kv in answer.kvs() {
            let (Ok(key), Ok(value)) = (kv.key_str(), kv.value_str()) else {
                continue;
            };
            match self.keys.parse(key) {
                Some(FleetKey::Slot { host, server, .. }) => {
                    let value: Option<SlotValue> = serde_json::from_str(value).ok();
                    view.holders.push(Holder {
                        host,
                        server,
                        since_unix_ms: value.as_ref().map_or(0, |v| v.since_unix_ms),
                        reason: value.map_or_else(|| "unknown".to_string(), |v| v.reason),
                    });
                }
                Some(FleetKey::Host { host, .. }) => {
                    view.servers_per_host
                        .insert(host, value.trim().parse().unwrap_or(0));
                }
                None => {}
            }
        }
        Ok((view, revision))
    }

    /// Puts the slot only if the backend's slots are as they were at `revision`; `Ok(false)`
    /// when they changed (read again).
    pub async fn try_take(
        &self,
        backend: &str,
        host: &str,
        server: &str,
        holder: &Holder,
        lease: i64,
        revision: i64,
    ) -> Result<bool, FleetError> {
        let mut client = self.client.clone();
        let unchanged =
            Compare::mod_revision(self.keys.slots(backend), CompareOp::Less, revision + 1)
                .with_prefix();
        let put = TxnOp::put(
            self.keys.slot(backend, host, server),
            slot_value(holder),
            Some(PutOptions::new().with_lease(lease)),
        );
        let txn = Txn::new().when([unchanged]).and_then([put]);
        let answer = self.call("take a slot", client.txn(txn)).await?;
        Ok(answer.succeeded())
    }

    /// Puts the slot whatever the count (a crash, a kill: they cannot be refused).
    pub async fn put_slot(
        &self,
        backend: &str,
        host: &str,
        server: &str,
        holder: &Holder,
        lease: i64,
    ) -> Result<(), FleetError> {
        let key = self.keys.slot(backend, host, server);
        self.put_leased("write a slot", key, slot_value(holder), lease)
            .await
    }

    pub async fn delete_slot(
        &self,
        backend: &str,
        host: &str,
        server: &str,
    ) -> Result<(), FleetError> {
        let mut client = self.client.clone();
        let key = self.keys.slot(backend, host, server);
        self.call("release a slot", client.delete(key, None))
            .await
            .map(|_| ())
    }

    pub async fn put_host(
        &self,
        backend: &str,
        host: &str,
        servers: usize,
        lease: i64,
    ) -> Result<(), FleetError> {
        let key = self.keys.host(backend, host);
        self.put_leased(
            "publish the host's server count",
            key,
            servers.to_string(),
            lease,
        )
        .await
    }

    /// A key that lives as long as `lease` (etcd deletes it when the lease expires).
    async fn put_leased(
        &self,
        operation: &str,
        key: String,
        value: String,
        lease: i64,
    ) -> Result<(), FleetError> {
        let mut client = self.client.clone();
        let options = PutOptions::new().with_lease(lease);
        self.call(operation, client.put(key, value, Some(options)))
            .await
            .map(|_| ())
    }

    /// The slots `host` holds in any backend (a restarted sidecar adopts them).
    pub async fn own_slots(&self, host: &str) -> Result<Vec<(String, Holder)>, FleetError> {
        let mut client = self.client.clone();
        let answer = self
            .call(
                "read this host's slots",
                client.get(self.keys.root(), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let mut own = Vec::new();
        for kv in answer.kvs() {
            let (Ok(key), Ok(value)) = (kv.key_str(), kv.value_str()) else {
                continue;
            };
            if let Some(FleetKey::Slot {
                backend,
                host: holder_host,
                server,
            }) = self.keys.parse(key)
            {
                if holder_host == host {
                    let value: Option<SlotValue> = serde_json::from_str(value).ok();
                    own.push((
                        backend,
                        Holder {
                            host: holder_host,
                            server,
                            since_unix_ms: value.as_ref().map_or(0, |v| v.since_unix_ms),
                            reason: value.map_or_else(|| "unknown".to_string(), |v| v.reason),
                        },
                    ));
                }
            }
        }
        Ok(own)
    }
}

fn slot_value(holder: &Holder) -> String {
    serde_json::to_string(&SlotValue {
        since_unix_ms: holder.since_unix_ms,
        reason: holder.reason.clone(),
    })
    .unwrap_or_default()
}
