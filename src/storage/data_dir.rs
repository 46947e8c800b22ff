//! A data directory carries an IDENTITY file naming the account, region and
//! node it belongs to. A node pointed at another node's directory refuses to
//! start instead of mixing two replicas' logs.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, RegionId};
use crate::storage::error::{Result, StorageError};

const IDENTITY_FILE: &str = "IDENTITY";
/// Bumped when the on-disk layout changes incompatibly.
pub const LAYOUT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub account: String,
    pub region: RegionId,
    pub node_id: NodeId,
    pub layout_version: u32,
}

impl Identity {
    pub fn new(account: &str, region: RegionId, node_id: NodeId) -> Self {
        Self {
            account: account.to_string(),
            region,
            node_id,
            layout_version: LAYOUT_VERSION,
        }
    }

    fn describe(&self) -> String {
        format!(
            "account {:?} node {}/{} (layout v{})",
            self.account, self.region, self.node_id, self.layout_version
        )
    }
}

/// Creates the directory and its IDENTITY file if it is new; otherwise checks
/// that it belongs to `expected`. Returns the path of the sled database.
pub fn claim(dir: &Path, expected: &Identity) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let identity_path = dir.join(IDENTITY_FILE);
    match fs::read_to_string(&identity_path) {
        Ok(text) => check(dir, &text, expected)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if fs::read_dir(dir)?.next().is_some() {
                return Err(StorageError::ForeignDataDir { path: dir.into() });
            }
            write_identity(&identity_path, expected)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(dir.join("db"))
}

fn check(dir: &Path, text: &str, expected: &Identity) -> Result<()> {
    let found: Identity = serde_json::from_str(text).map_err(|e| {
        StorageError::Corrupt(format!("{}: unreadable IDENTITY file: {e}", dir.display()))
    })?;
    if &found != expected {
        return Err(StorageError::WrongDataDir {
            path: dir.into(),
            found: found.describe(),
            expected: expected.describe(),
        });
    }
    Ok(())
}

/// Written to a temporary name and renamed, so a crash never leaves a
/// half-written identity behind.
fn write_identity(path: &Path, identity: &Identity) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(identity)
        .map_err(|e| StorageError::Io(format!("encoding identity: {e}")))?;
    fs::write(&tmp, text)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_claimed_then_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::new("dev", RegionId::new("west"), NodeId(1));
        claim(dir.path(), &me).unwrap();
        claim(dir.path(), &me).unwrap();
    }

    #[test]
    fn another_nodes_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        claim(
            dir.path(),
            &Identity::new("dev", RegionId::new("west"), NodeId(1)),
        )
        .unwrap();
        let err = claim(
            dir.path(),
            &Identity::new("dev", RegionId::new("west"), NodeId(2)),
        )
        .unwrap_err();
        assert!(matches!(err, StorageError::WrongDataDir { .. }), "{err}");
        assert!(err.to_string().contains("west/n1"), "{err}");
    }

    #[test]
    fn a_foreign_non_empty_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
        let err = claim(
            dir.path(),
            &Identity::new("dev", RegionId::new("west"), NodeId(1)),
        )
        .unwrap_err();
        assert!(matches!(err, StorageError::ForeignDataDir { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join("precious.txt")).unwrap(),
            "keep me"
        );
    }
}
