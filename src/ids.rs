//! Identifier newtypes, so a region name can never be passed where a node id
//! is expected. They print compactly (`west`, `n2`, `west/n2`) for logs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One `meridian` process: one replica of its region's replica set.
/// Unique across the whole account.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A named place holding one full copy of the data.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RegionId(pub String);

impl RegionId {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A region name as a person types it: trimmed, and refused when empty.
impl FromStr for RegionId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.trim();
        if name.is_empty() {
            return Err("a region name may not be empty".to_string());
        }
        Ok(RegionId::new(name))
    }
}

impl From<RegionId> for String {
    fn from(region: RegionId) -> String {
        region.0
    }
}

impl From<&str> for RegionId {
    fn from(name: &str) -> Self {
        RegionId::new(name)
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A node together with its region, printed as `west/n2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaId {
    pub region: RegionId,
    pub node: NodeId,
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_compactly() {
        let id = ReplicaId {
            region: RegionId::new("west"),
            node: NodeId(2),
        };
        assert_eq!(id.to_string(), "west/n2");
    }

    #[test]
    fn region_names_parse_trimmed_and_never_empty() {
        assert_eq!(" east ".parse::<RegionId>(), Ok(RegionId::new("east")));
        for empty in ["", "  "] {
            assert_eq!(
                empty.parse::<RegionId>(),
                Err("a region name may not be empty".to_string())
            );
        }
    }
}
