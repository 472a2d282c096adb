//! The state file's content: in memory ([`Records`]: the servers haproxy-drain holds, the
//! servers it added, the containers a roll or a surge is replacing), on disk (a versioned JSON
//! format, written atomically: temp file, rename), and a clear error for every way it can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::drain::Ownership;
use crate::haproxy::types::ServerId;

#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("cannot write the state file {path}: {source} (is --state-file on a writable disk?)")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the state file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the state file {path} is not valid ({message}); move it away to start fresh — servers it held will be taken back by reconciliation")]
    Corrupt { path: String, message: String },
}

#[derive(Debug, Default, Clone)]
pub(super) struct Records {
    /// Counts changes; not persisted.
    pub(super) generation: u64,
    pub(super) held: BTreeMap<ServerId, Ownership>,
    pub(super) dynamic: BTreeSet<ServerId>,
    pub(super) rolling: BTreeSet<String>,
    pub(super) surging: BTreeMap<String, ServerId>,
}

pub(super) fn set_member<T: Ord + Clone>(
    set: &mut std::collections::BTreeSet<T>,
    item: &T,
    member: bool,
) -> bool {
    if member {
        set.insert(item.clone())
    } else {
        set.remove(item)
    }
}

impl Records {
    pub(super) fn changed(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }
}

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    /// Keyed by `backend/server`.
    servers: BTreeMap<String, Ownership>,
    /// Servers haproxy-drain added with `add server` (deleted again when their container goes).
    #[serde(default)]
    dynamic: Vec<String>,
    /// Containers a roll is between stopping and starting again (see [`OwnershipStore::rolling`]).
    #[serde(default)]
    rolling: Vec<String>,
    /// Containers under `roll --surge`, each with its server (the copy's temporary server is
    /// derived from it).
    #[serde(default)]
    surging: BTreeMap<String, String>,
}

pub(super) fn write(path: &Path, records: &Records) -> Result<(), OwnershipError> {
    let file = File {
        version: FORMAT_VERSION,
        servers: records
            .held
            .iter()
            .map(|(id, o)| (id.to_string(), o.clone()))
            .collect(),
        dynamic: records.dynamic.iter().map(|id| id.to_string()).collect(),
        rolling: records.rolling.iter().cloned().collect(),
        surging: records
            .surging
            .iter()
            .map(|(c, s)| (c.clone(), s.to_string()))
            .collect(),
    };
    let write_err = |source| OwnershipError::Write {
        path: path.display().to_string(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| write_err(e.into()))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let tmp = path.with_extension("tmp");
    let mut out = std::fs::File::create(&tmp).map_err(write_err)?;
    out.write_all(&bytes).map_err(write_err)?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(write_err)?;
    Ok(())
}

pub(super) fn load(path: &Path) -> Result<Records, OwnershipError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Records::default()),
        Err(source) => {
            return Err(OwnershipError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let corrupt = |message: String| OwnershipError::Corrupt {
        path: path.display().to_string(),
        message,
    };
    let file: File = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(format!("unknown format version {}", file.version)));
    }
    let id = |key: &str| {
        ServerId::parse(key).ok_or_else(|| corrupt(format!("'{key}' is not backend/server")))
    };
    let mut records = Records::default();
    for (key, ownership) in file.servers {
        records.held.insert(id(&key)?, ownership);
    }
    for key in file.dynamic {
        records.dynamic.insert(id(&key)?);
    }
    records.rolling = file.rolling.into_iter().collect();
    for (container, server) in file.surging {
        records.surging.insert(container, id(&server)?);
    }
    Ok(records)
}
