//! Convergence: after faults stop and traffic quiesces, every replica of
//! every region reports the same state digest.
//!
//! The digest most replicas report is taken as the reference (ties go to
//! the smallest digest, so the verdict does not depend on input order);
//! every replica reporting another digest is named in one violation.
//!
//! Guarantees: equal digests at the moment they were collected. Does not
//! wait for quiescence or retry within a deadline: the caller collects
//! digests once the deadline has passed, and this decides on them.

use std::collections::BTreeMap;

use crate::ids::ReplicaId;

use super::verdict::{Anomaly, Verdict, Violation};

/// Replicas and the digests they reported.
pub fn check(digests: &[(ReplicaId, String)]) -> Verdict {
    let mut verdict = Verdict::default();
    let Some(reference) = reference_digest(digests) else {
        return verdict;
    };
    let differing: Vec<ReplicaId> = digests
        .iter()
        .filter(|(_, digest)| *digest != reference)
        .map(|(replica, _)| replica.clone())
        .collect();
    if !differing.is_empty() {
        let names: Vec<String> = digests
            .iter()
            .filter(|(_, digest)| *digest != reference)
            .map(|(replica, digest)| format!("{replica}={digest}"))
            .collect();
        verdict.violations.push(Violation {
            anomaly: Anomaly::Diverged,
            key: None,
            ops: Vec::new(),
            replicas: differing,
            detail: format!(
                "most replicas report {reference}; {} differ",
                names.join(", ")
            ),
        });
    }
    verdict
}

/// The most common digest; `None` when no replica reported.
fn reference_digest(digests: &[(ReplicaId, String)]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, digest) in digests {
        *counts.entry(digest.as_str()).or_default() += 1;
    }
    // max_by_key keeps the last maximum; iterate in reverse so ties pick
    // the smallest digest.
    counts
        .into_iter()
        .rev()
        .max_by_key(|(_, count)| *count)
        .map(|(digest, _)| digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{NodeId, RegionId};

    fn replica(region: &str, node: u64) -> ReplicaId {
        ReplicaId {
            region: RegionId::new(region),
            node: NodeId(node),
        }
    }

    #[test]
    fn equal_digests_pass() {
        let digests = vec![
            (replica("west", 1), "abc".to_string()),
            (replica("west", 2), "abc".to_string()),
            (replica("east", 5), "abc".to_string()),
        ];
        assert!(check(&digests).is_valid());
        assert!(check(&[]).is_valid());
    }

    #[test]
    fn diverging_digests_name_the_replicas_that_differ() {
        let digests = vec![
            (replica("west", 1), "abc".to_string()),
            (replica("east", 5), "xyz".to_string()),
            (replica("west", 2), "abc".to_string()),
        ];
        let v = check(&digests);
        assert!(v.has(Anomaly::Diverged), "{v:?}");
        assert_eq!(v.violations[0].replicas, vec![replica("east", 5)]);
        assert!(v.violations[0].detail.contains("east/n5=xyz"));
    }

    #[test]
    fn a_tie_is_decided_by_digest_not_input_order() {
        let a = vec![
            (replica("west", 1), "b".to_string()),
            (replica("east", 5), "a".to_string()),
        ];
        let b: Vec<_> = a.iter().rev().cloned().collect();
        assert_eq!(check(&a).violations[0].replicas, vec![replica("west", 1)]);
        assert_eq!(check(&b).violations[0].replicas, vec![replica("west", 1)]);
    }
}
