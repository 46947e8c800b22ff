//! The ranking of a key's leaves by its container's policy: a total order,
//! so the maximum of a set of leaves does not depend on the order the set
//! was built in.
//!
//! `lww:/path` ranks a version without a number at the path (missing, not a
//! number, not JSON) below every version with one, and only then compares
//! `(ts, region, lsn)`. The reading "fall back to `ts` when either side lacks
//! the path" is not transitive: with a = {p: 1, ts 3}, b = {no p, ts 2},
//! c = {p: 2, ts 1}, c beats a by path, a beats b by ts, b beats c by ts: a
//! cycle, so a set of three has no maximum and the winner would depend on
//! the order of comparison. DESIGN.md's "a missing path falls back to ts"
//! holds between versions that both lack it.

use std::cmp::Ordering;

use crate::container::{ContainerPolicy, JsonPointer};

use super::write::{Body, Version};

/// The number at `path` in a version's value: `None` for a tombstone, a
/// value that is not JSON, a missing path or a non-number.
fn path_number(path: &JsonPointer, version: &Version) -> Option<f64> {
    let Body::Value { value, .. } = &version.body else {
        return None;
    };
    let json: serde_json::Value = serde_json::from_slice(value).ok()?;
    path.number_in(&json)
}

/// `(ts, region, lsn)`: the tie-break every policy ends with. Dots are
/// unique, so two different versions never compare equal.
fn by_time(a: &Version, b: &Version) -> Ordering {
    (a.ts, &a.dot.origin, a.dot.lsn).cmp(&(b.ts, &b.dot.origin, b.dot.lsn))
}

/// The `lww` order, greatest wins: a tombstone outranks any put (a delete
/// wins over a concurrent insert or replace); then, with a path, the number
/// at the path, where no number ranks below every number; then time.
pub fn lww_order(path: Option<&JsonPointer>, a: &Version, b: &Version) -> Ordering {
    let tombstones = a.is_tombstone().cmp(&b.is_tombstone());
    let numbers = || match path {
        None => Ordering::Equal,
        Some(path) => match (path_number(path, a), path_number(path, b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        },
    };
    tombstones.then_with(numbers).then_with(|| by_time(a, b))
}

/// The current version among a key's leaves: the `lww` maximum, or for
/// `custom` the earliest by time (the version confirmed first normally is
/// the earliest, and "the confirmed version stays"). `None` only for no
/// leaves. A CRDT policy has no leaves here (its items are CRDT values).
pub fn current<'a>(
    policy: &ContainerPolicy,
    leaves: impl IntoIterator<Item = &'a Version>,
) -> Option<&'a Version> {
    let leaves = leaves.into_iter();
    match policy {
        ContainerPolicy::Lww { path, .. } => leaves.max_by(|a, b| lww_order(path.as_ref(), a, b)),
        ContainerPolicy::Custom => leaves.min_by(|a, b| by_time(a, b)),
        ContainerPolicy::Counter | ContainerPolicy::Set | ContainerPolicy::Register => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confirm::write::PutKind;
    use crate::dot::Dot;
    use crate::ids::RegionId;

    fn put(region: &str, lsn: u64, ts: u64, value: &str) -> Version {
        Version {
            dot: Dot::new(RegionId::new(region), lsn),
            ts,
            body: Body::Value {
                value: value.as_bytes().to_vec(),
                kind: PutKind::Replace,
            },
        }
    }

    fn tombstone(region: &str, lsn: u64, ts: u64) -> Version {
        Version {
            dot: Dot::new(RegionId::new(region), lsn),
            ts,
            body: Body::Tombstone,
        }
    }

    fn lww() -> ContainerPolicy {
        "lww".parse().unwrap()
    }

    fn path() -> ContainerPolicy {
        "lww:/priority".parse().unwrap()
    }

    fn winner(policy: &ContainerPolicy, leaves: &[Version]) -> Dot {
        let forward = current(policy, leaves).unwrap().dot.clone();
        let backward = current(policy, leaves.iter().rev()).unwrap().dot.clone();
        assert_eq!(forward, backward, "the maximum depends on no order");
        forward
    }

    #[test]
    fn lww_ranks_by_time_then_region_then_lsn() {
        let later = put("east", 1, 20, "a");
        let earlier = put("west", 1, 10, "b");
        assert_eq!(winner(&lww(), &[later.clone(), earlier]), later.dot);
        let east = put("east", 1, 10, "a");
        let west = put("west", 1, 10, "b");
        assert_eq!(
            winner(&lww(), &[east.clone(), west.clone()]),
            west.dot,
            "tie: region"
        );
        let west2 = put("west", 2, 10, "c");
        assert_eq!(
            winner(&lww(), &[west2.clone(), west]),
            west2.dot,
            "tie: lsn"
        );
    }

    #[test]
    fn a_tombstone_outranks_any_put() {
        let old_delete = tombstone("east", 1, 1);
        let new_put = put("west", 9, 100, "x");
        assert_eq!(
            winner(&lww(), &[new_put.clone(), old_delete.clone()]),
            old_delete.dot
        );
        assert_eq!(
            winner(&path(), &[new_put, old_delete.clone()]),
            old_delete.dot
        );
        let other_delete = tombstone("west", 1, 2);
        assert_eq!(
            winner(&lww(), &[old_delete, other_delete.clone()]),
            other_delete.dot,
            "between tombstones, time"
        );
    }

    #[test]
    fn a_path_ranks_numbers_first_and_no_number_lowest() {
        let high = put("east", 1, 1, r#"{"priority": 5}"#);
        let low_late = put("west", 1, 99, r#"{"priority": -2.5}"#);
        let missing = put("north", 1, 200, r#"{"other": 9}"#);
        let text = put("south", 1, 300, r#"{"priority": "7"}"#);
        let not_json = put("central", 1, 400, "not json");
        let all = [
            high.clone(),
            low_late.clone(),
            missing.clone(),
            text.clone(),
            not_json.clone(),
        ];
        assert_eq!(winner(&path(), &all), high.dot);
        assert_eq!(
            winner(&path(), &all[1..]),
            low_late.dot,
            "any number beats none"
        );
        assert_eq!(
            winner(&path(), &all[2..]),
            not_json.dot,
            "without numbers, time decides"
        );
        let tie = put("west", 2, 0, r#"{"priority": 5}"#);
        assert_eq!(
            winner(&path(), &[high.clone(), tie]),
            high.dot,
            "equal numbers: time"
        );
        assert_eq!(
            winner(&lww(), &all),
            not_json.dot,
            "plain lww ignores the path"
        );
    }

    #[test]
    fn custom_keeps_the_earliest() {
        let first = put("west", 3, 5, "a");
        let second = put("east", 1, 5, "b");
        let third = tombstone("north", 1, 1);
        assert_eq!(
            winner(&ContainerPolicy::Custom, &[first.clone(), second.clone()]),
            second.dot,
            "tie: region"
        );
        assert_eq!(
            winner(&ContainerPolicy::Custom, &[first, second, third.clone()]),
            third.dot,
            "custom resolves nothing, tombstones included"
        );
        assert!(current(&ContainerPolicy::Counter, &[put("e", 1, 1, "x")]).is_none());
    }
}
