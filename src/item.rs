//! Items: `(container, key) -> value` with system properties, and the input
//! validation every request passes before it reaches a replica.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::limits::{CONTAINER_NAME_CHARS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// Changes on every write of an item. Derived from the write's GLSN, so
/// every replica computes the same etag for the same version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Etag(pub String);

impl Etag {
    pub fn for_write(glsn: Glsn) -> Self {
        Etag(format!("{:x}-{:x}", glsn.epoch, glsn.lsn))
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored version of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemVersion {
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub etag: Etag,
    pub glsn: Glsn,
    /// Hybrid logical clock timestamp given by the proposing node.
    pub ts: u64,
    pub origin_region: RegionId,
}

/// A key range within one container, for scans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    pub prefix: String,
    /// Inclusive lower bound, when set.
    pub start: Option<String>,
    /// Exclusive upper bound, when set.
    pub end: Option<String>,
}

impl KeyRange {
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && self.start.as_deref().is_none_or(|s| key >= s)
            && self.end.as_deref().is_none_or(|e| key < e)
    }
}

/// Input that breaks a limit or a naming rule. The message names the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

pub fn validate_container(name: &str) -> Result<(), InvalidInput> {
    if name.is_empty() {
        return Err(InvalidInput("container name is empty".into()));
    }
    let chars = name.chars().count();
    if chars > CONTAINER_NAME_CHARS_MAX {
        return Err(InvalidInput(format!(
            "container name is {chars} characters; the limit is {CONTAINER_NAME_CHARS_MAX}"
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(InvalidInput(format!(
            "container name contains {bad:?}; allowed characters are A-Z, a-z, 0-9, _ and -"
        )));
    }
    Ok(())
}

pub fn validate_key(key: &str) -> Result<(), InvalidInput> {
    if key.is_empty() {
        return Err(InvalidInput("key is empty".into()));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(InvalidInput(format!(
            "key is {} bytes of UTF-8; the limit is {KEY_BYTES_MAX} bytes (2 KiB)",
            key.len()
        )));
    }
    Ok(())
}

pub fn validate_value(value: &[u8]) -> Result<(), InvalidInput> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(InvalidInput(format!(
            "value is {} bytes; the limit is {VALUE_BYTES_MAX} bytes (2 MiB)",
            value.len()
        )));
    }
    Ok(())
}

/// Scan bounds share the key limit so a scan cannot smuggle in a huge string.
pub fn validate_range(range: &KeyRange) -> Result<(), InvalidInput> {
    for (what, bound) in [
        ("prefix", Some(range.prefix.as_str())),
        ("start", range.start.as_deref()),
        ("end", range.end.as_deref()),
    ] {
        if let Some(b) = bound
            && b.len() > KEY_BYTES_MAX
        {
            return Err(InvalidInput(format!(
                "scan {what} is {} bytes; the limit is {KEY_BYTES_MAX} bytes (2 KiB)",
                b.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_at_the_boundary() {
        assert!(validate_key(&"k".repeat(KEY_BYTES_MAX)).is_ok());
        let err = validate_key(&"k".repeat(KEY_BYTES_MAX + 1)).unwrap_err();
        assert!(err.0.contains("2048"), "{err}");
        // Multi-byte UTF-8 counts in bytes, not characters.
        assert!(validate_key(&"é".repeat(KEY_BYTES_MAX / 2 + 1)).is_err());
        assert!(validate_value(&vec![0; VALUE_BYTES_MAX]).is_ok());
        assert!(validate_value(&vec![0; VALUE_BYTES_MAX + 1]).is_err());
        assert!(validate_container(&"c".repeat(CONTAINER_NAME_CHARS_MAX)).is_ok());
        assert!(validate_container(&"c".repeat(CONTAINER_NAME_CHARS_MAX + 1)).is_err());
    }

    #[test]
    fn container_names_are_restricted() {
        for good in ["users", "a-b_C9"] {
            assert!(validate_container(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "slash/y", "nul\0", "ünï"] {
            assert!(validate_container(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key("").is_err());
    }

    #[test]
    fn key_range_bounds() {
        let r = KeyRange {
            prefix: "user/".into(),
            start: Some("user/b".into()),
            end: Some("user/d".into()),
        };
        assert!(!r.contains("user/a"));
        assert!(r.contains("user/b"));
        assert!(r.contains("user/c9"));
        assert!(!r.contains("user/d"));
        assert!(!r.contains("other/c"));
    }

    #[test]
    fn etags_differ_per_write() {
        assert_ne!(
            Etag::for_write(Glsn::new(1, 1)),
            Etag::for_write(Glsn::new(1, 2))
        );
        assert_ne!(
            Etag::for_write(Glsn::new(1, 2)),
            Etag::for_write(Glsn::new(2, 1))
        );
    }
}
