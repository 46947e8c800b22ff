//! The five consistency levels, as data with the rules attached
//! (DESIGN.md "Consistency levels").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Ordered from strongest to weakest, so `a <= b` reads "a is at least as
/// strong as b".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    Strong,
    BoundedStaleness,
    Session,
    ConsistentPrefix,
    Eventual,
}

/// How a read must be served within a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// Linearizable: a read index confirmed by the region leader, then the
    /// local replica once it has applied up to it.
    ReadIndex,
    /// The local replica once it has applied the session token (brief wait).
    Session,
    /// The local replica's applied state, no waiting.
    Local,
}

impl Consistency {
    pub const ALL: [Consistency; 5] = [
        Consistency::Strong,
        Consistency::BoundedStaleness,
        Consistency::Session,
        Consistency::ConsistentPrefix,
        Consistency::Eventual,
    ];

    /// Cosmos's rule: a request may ask for the account default or weaker.
    pub fn is_allowed_under(self, account_default: Consistency) -> bool {
        self >= account_default
    }

    /// Inside one region, STRONG and BOUNDED_STALENESS read at the region
    /// leader's read index; the cross-region lease rules come with regions.
    pub fn read_path(self) -> ReadPath {
        match self {
            Consistency::Strong | Consistency::BoundedStaleness => ReadPath::ReadIndex,
            Consistency::Session => ReadPath::Session,
            Consistency::ConsistentPrefix | Consistency::Eventual => ReadPath::Local,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Strong => "strong",
            Consistency::BoundedStaleness => "bounded_staleness",
            Consistency::Session => "session",
            Consistency::ConsistentPrefix => "consistent_prefix",
            Consistency::Eventual => "eventual",
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown consistency level {0:?}: expected strong, bounded_staleness, session, consistent_prefix or eventual"
)]
pub struct UnknownConsistency(pub String);

impl FromStr for Consistency {
    type Err = UnknownConsistency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalized = s.trim().to_ascii_lowercase().replace('-', "_");
        Consistency::ALL
            .into_iter()
            .find(|c| {
                c.as_str() == normalized
                    || (normalized == "bounded" && *c == Consistency::BoundedStaleness)
            })
            .ok_or_else(|| UnknownConsistency(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weaker_or_equal_is_allowed_stronger_is_not() {
        for default in Consistency::ALL {
            for requested in Consistency::ALL {
                let allowed = requested.is_allowed_under(default);
                let position = |c| Consistency::ALL.iter().position(|x| *x == c).unwrap();
                assert_eq!(
                    allowed,
                    position(requested) >= position(default),
                    "{requested} under {default}"
                );
            }
        }
    }

    #[test]
    fn parses_every_level_by_name() {
        for level in Consistency::ALL {
            assert_eq!(level.as_str().parse::<Consistency>().unwrap(), level);
        }
        assert_eq!(
            "BOUNDED-STALENESS".parse::<Consistency>().unwrap(),
            Consistency::BoundedStaleness
        );
        assert!("linearizable".parse::<Consistency>().is_err());
    }

    #[test]
    fn read_paths_follow_the_table() {
        assert_eq!(Consistency::Strong.read_path(), ReadPath::ReadIndex);
        assert_eq!(
            Consistency::BoundedStaleness.read_path(),
            ReadPath::ReadIndex
        );
        assert_eq!(Consistency::Session.read_path(), ReadPath::Session);
        assert_eq!(Consistency::ConsistentPrefix.read_path(), ReadPath::Local);
        assert_eq!(Consistency::Eventual.read_path(), ReadPath::Local);
    }
}
