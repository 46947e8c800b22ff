//! What a checker returns: the violations it found, each with the
//! operations that show it, and the parts of the history it gave up on.
//!
//! Invariant: a verdict is valid only when it has neither violations nor
//! parts given up on; a search that gave up proves nothing either way.

use std::fmt;

use crate::ids::ReplicaId;

use super::history::Operation;

/// At most this many operations are attached to one violation, so a report
/// on a huge history stays readable; the detail says how many there were.
pub const OFFENDING_OPS_MAX: usize = 16;

/// The anomaly a violation shows; one per property a checker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anomaly {
    /// No order of the operations on a key explains what the reads saw.
    NotLinearizable,
    ReadYourWrites,
    MonotonicReads,
    MonotonicWrites,
    WritesFollowReads,
    /// A read more than K versions behind.
    StaleVersions,
    /// A read missing a write acknowledged more than T ms before it.
    StaleTime,
    /// A read saw write n+1 of a writer without write n.
    PrefixGap,
    /// A read returned a value no write sent (or one whose write failed).
    UnknownValue,
    /// An acknowledged write is missing at the end and not accounted for.
    LostWrite,
    /// A conflict-feed entry names a write another entry already accounted for.
    AccountedTwice,
    /// Replicas report different state digests after quiescence.
    Diverged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub anomaly: Anomaly,
    pub key: Option<String>,
    /// The offending operations, at most [`OFFENDING_OPS_MAX`].
    pub ops: Vec<Operation>,
    /// Replicas involved (convergence only).
    pub replicas: Vec<ReplicaId>,
    pub detail: String,
}

impl Violation {
    pub fn on_key(anomaly: Anomaly, key: &str, ops: &[&Operation], detail: String) -> Self {
        Self {
            anomaly,
            key: Some(key.to_string()),
            ops: ops
                .iter()
                .take(OFFENDING_OPS_MAX)
                .map(|op| (*op).clone())
                .collect(),
            replicas: Vec::new(),
            detail,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.anomaly)?;
        if let Some(key) = &self.key {
            write!(f, " on {key:?}")?;
        }
        write!(f, ": {}", self.detail)?;
        for op in &self.ops {
            write!(f, "\n    {op}")?;
        }
        Ok(())
    }
}

/// A part of the history a bounded search could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooComplex {
    pub key: String,
    pub states_explored: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    pub too_complex: Vec<TooComplex>,
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty() && self.too_complex.is_empty()
    }

    pub fn has(&self, anomaly: Anomaly) -> bool {
        self.violations.iter().any(|v| v.anomaly == anomaly)
    }
}
