//! The ownership record: which servers haproxy-drain took out of rotation, and what to restore.
//!
//! Written atomically (temp file, rename) *before* the HAProxy change it describes, so a crash of
//! haproxy-drain at any point leaves either the old or the new record and the next start
//! reconciles. No fsync: the record must survive our process, not the host — a host crash also
//! restarts HAProxy, whose runtime state (what the record describes) does not survive it either,
//! and an fsync on the reaction path costs about as much as the HAProxy command itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::sync::Mutex;

mod file;

pub use file::OwnershipError;
use file::{load, set_member, write, Records};

use crate::drain::Ownership;
use crate::haproxy::types::ServerId;

/// The persisted map, shared by every server task.
///
/// Writes are group commits: a change returns once a write that contains it is done, and one
/// write covers every change made while the previous one ran, so hundreds of servers changing at
/// once cost a few writes of the whole file, not hundreds.
#[derive(Debug)]
pub struct OwnershipStore {
    path: Option<PathBuf>,
    servers: Mutex<Records>,
    /// The generation of the last write done; held during the write.
    written: Mutex<u64>,
}

impl OwnershipStore {
    /// Loads the record at `path` (a missing file is an empty record) and writes it back at
    /// once, so that a state file that cannot be written stops the start-up, not the first
    /// drain. `None`: memory only.
    pub fn open(path: Option<PathBuf>) -> Result<Self, OwnershipError> {
        let servers = match &path {
            Some(path) => {
                let records = load(path)?;
                write(path, &records)?;
                records
            }
            None => Records::default(),
        };
        Ok(Self {
            path,
            servers: Mutex::new(servers),
            written: Mutex::new(0),
        })
    }

    pub async fn get(&self, id: &ServerId) -> Option<Ownership> {
        self.servers.lock().await.held.get(id).cloned()
    }

    pub async fn all(&self) -> BTreeMap<ServerId, Ownership> {
        self.servers.lock().await.held.clone()
    }

    pub async fn save(&self, id: &ServerId, ownership: Ownership) -> Result<(), OwnershipError> {
        let generation = {
            let mut records = self.servers.lock().await;
            if records.held.get(id) == Some(&ownership) {
                return Ok(());
            }
            records.held.insert(id.clone(), ownership);
            records.changed()
        };
        self.commit(generation).await
    }

    pub async fn forget(&self, id: &ServerId) -> Result<(), OwnershipError> {
        let generation = {
            let mut records = self.servers.lock().await;
            if records.held.remove(id).is_none() {
                return Ok(());
            }
            records.changed()
        };
        self.commit(generation).await
    }

    pub async fn is_dynamic(&self, id: &ServerId) -> bool {
        self.servers.lock().await.dynamic.contains(id)
    }

    pub async fn set_dynamic(&self, id: &ServerId, dynamic: bool) -> Result<(), OwnershipError> {
        let generation = {
            let mut records = self.servers.lock().await;
            if !set_member(&mut records.dynamic, id, dynamic) {
                return Ok(());
            }
            records.changed()
        };
        self.commit(generation).await
    }

    /// Containers a roll had stopped (and perhaps set aside for a recreate) and not yet started
    /// again: if haproxy-drain dies there, its next start finishes the swap and starts them.
    pub async fn rolling(&self) -> Vec<String> {
        self.servers.lock().await.rolling.iter().cloned().collect()
    }

    /// Records (`true`, before the roll stops it) or clears (`false`, once it runs again) a
    /// container's place in a roll.
    pub async fn set_rolling(&self, container: &str, rolling: bool) -> Result<(), OwnershipError> {
        let generation = {
            let mut records = self.servers.lock().await;
            if !set_member(&mut records.rolling, &container.to_string(), rolling) {
                return Ok(());
            }
            records.changed()
        };
        self.commit(generation).await
    }

    /// Containers a surge was replacing, with their server: if haproxy-drain dies there, its
    /// next start finishes or undoes the swap and removes the copy's temporary server.
    pub async fn surging(&self) -> Vec<(String, ServerId)> {
        let records = self.servers.lock().await;
        records
            .surging
            .iter()
            .map(|(c, s)| (c.clone(), s.clone()))
            .collect()
    }

    /// Records (before the copy is created) or clears (`None`, once only the container under its
    /// name is left) a container's surge.
    pub async fn set_surging(
        &self,
        container: &str,
        server: Option<&ServerId>,
    ) -> Result<(), OwnershipError> {
        let generation = {
            let mut records = self.servers.lock().await;
            let before = records.surging.get(container).cloned();
            if before.as_ref() == server {
                return Ok(());
            }
            match server {
                Some(server) => records
                    .surging
                    .insert(container.to_string(), server.clone()),
                None => records.surging.remove(container),
            };
            records.changed()
        };
        self.commit(generation).await
    }

    /// Returns once a write containing change `generation` is done (this one or another
    /// caller's).
    async fn commit(&self, generation: u64) -> Result<(), OwnershipError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut written = self.written.lock().await;
        if *written >= generation {
            return Ok(());
        }
        let records = self.servers.lock().await.clone();
        write(path, &records)?;
        *written = records.generation;
        Ok(())
    }
}

/// Adds or removes `item`; true when the set changed.
#[cfg(test)]
mod tests {
    #[test]
    fn a_state_file_that_cannot_be_written_fails_at_open_naming_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").expect("file");
        let path = blocker.join("state.json");
        let error = OwnershipStore::open(Some(path.clone())).expect_err("cannot be used");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");

        // Readable (absent) but not writable, even for root.
        let path = PathBuf::from("/proc/haproxy-drain-state.json");
        let error = OwnershipStore::open(Some(path.clone())).expect_err("cannot be written");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("writable"), "{message}");
    }

    #[test]
    fn open_creates_the_directory_and_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new/dir/state.json");
        OwnershipStore::open(Some(path.clone())).expect("opens");
        assert!(path.is_file(), "written at start-up");
        OwnershipStore::open(Some(path)).expect("and read back");
    }

    use super::*;
    use crate::drain::Trigger;
    use crate::haproxy::types::AdminState;

    fn record(weight: u32) -> Ownership {
        Ownership {
            prior_admin: AdminState::Ready,
            prior_weight: Some(weight),
            sticky: false,
            dynamic: false,
            trigger: Trigger::DockerEvent,
            since_unix_ms: 42,
            stop: None,
            ramping: false,
        }
    }

    #[tokio::test]
    async fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let id = ServerId::new("be", "web1");
        let store = OwnershipStore::open(Some(path.clone())).unwrap();
        store.save(&id, record(7)).await.unwrap();
        store
            .save(&ServerId::new("be", "web2"), record(3))
            .await
            .unwrap();
        store.forget(&ServerId::new("be", "web2")).await.unwrap();
        store
            .set_dynamic(&ServerId::new("be", "dyn"), true)
            .await
            .unwrap();
        store.set_rolling("app_1", true).await.unwrap();
        store.set_rolling("app_2", true).await.unwrap();
        store.set_rolling("app_2", false).await.unwrap();
        let temp = ServerId::new("be", "app_3.haproxy-drain-new");
        store.set_surging("app_3", Some(&temp)).await.unwrap();
        store.set_surging("app_4", Some(&temp)).await.unwrap();
        store.set_surging("app_4", None).await.unwrap();
        drop(store);
        let again = OwnershipStore::open(Some(path)).unwrap();
        assert_eq!(again.rolling().await, vec!["app_1".to_string()]);
        assert_eq!(again.surging().await, vec![("app_3".to_string(), temp)]);
        assert_eq!(again.get(&id).await, Some(record(7)));
        assert_eq!(again.all().await.len(), 1);
        assert!(again.is_dynamic(&ServerId::new("be", "dyn")).await);
        assert!(!again.is_dynamic(&id).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_changes_are_all_written_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = std::sync::Arc::new(OwnershipStore::open(Some(path.clone())).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = ServerId::new("be", format!("s{i}"));
                    store.save(&id, record(i)).await.unwrap();
                    // Returned: the file has it, whoever wrote it.
                    let text = std::fs::read_to_string(dir_file(&store)).unwrap();
                    assert!(text.contains(&format!("\"be/s{i}\"")), "s{i} written");
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let again = OwnershipStore::open(Some(path)).unwrap();
        assert_eq!(again.all().await.len(), 200);
    }

    fn dir_file(store: &OwnershipStore) -> PathBuf {
        store.path.clone().expect("a file-backed store")
    }

    #[test]
    fn corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for text in [
            "{not json",
            r#"{"version":9,"servers":{}}"#,
            r#"{"version":1,"servers":{"nobackend":{"prior_admin":"ready","prior_weight":1,"sticky":false,"dynamic":false,"trigger":"api","since_unix_ms":0}}}"#,
        ] {
            std::fs::write(&path, text).unwrap();
            let err = OwnershipStore::open(Some(path.clone()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("state.json"), "{err}");
        }
    }
}
