//! Conflict feed entries of multi-write keys, as a function of a key's
//! leaves, and the deltas between two feeds.
//!
//! A key's feed holds one entry per leaf that is not its current version:
//! resolved (lost by `lww`, when the container keeps a feed) or unresolved
//! (`custom`). An entry's id is its losing write's dot, the same in every
//! region, and a write is a leaf of one key only, so no write is ever in the
//! feed twice.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::container::ContainerPolicy;
use crate::dot::Dot;

use super::rank;
use super::write::{Body, PutKind, Version};

/// The kinds of multi-write conflict, as Cosmos DB names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConflictKind {
    /// Both were inserts: each origin saw no live version.
    InsertInsert,
    /// Both were puts, at least one over a live version.
    ReplaceReplace,
    /// The loser or the winner is a delete.
    DeleteReplace,
}

impl fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InsertInsert => "insert/insert",
            Self::ReplaceReplace => "replace/replace",
            Self::DeleteReplace => "delete/replace",
        })
    }
}

impl ConflictKind {
    pub fn between(loser: &Version, winner: &Version) -> Self {
        match (&loser.body, &winner.body) {
            (Body::Tombstone, _) | (_, Body::Tombstone) => Self::DeleteReplace,
            (
                Body::Value {
                    kind: PutKind::Insert,
                    ..
                },
                Body::Value {
                    kind: PutKind::Insert,
                    ..
                },
            ) => Self::InsertInsert,
            _ => Self::ReplaceReplace,
        }
    }
}

/// How an entry's conflict stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resolution {
    /// The container's `lww` policy chose the winner; the entry is a record.
    ByPolicy,
    /// `custom`: the current version stays until a client resolves it
    /// (`Conflicts.Resolve` writes a version whose base covers both).
    Unresolved,
}

/// One conflict feed entry of a multi-write key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub container: String,
    pub key: String,
    pub kind: ConflictKind,
    /// The losing write: its value or tombstone, dot, ts and origin region.
    pub loser: Version,
    pub policy: ContainerPolicy,
    pub resolution: Resolution,
    /// The current version's dot: the winner, or for `custom` the version
    /// that stays.
    pub winner: Dot,
}

impl FeedEntry {
    /// The entry's id: the losing dot, printed `east:42`.
    pub fn id(&self) -> &Dot {
        &self.loser.dot
    }
}

/// One change to the feed, in the order a runtime applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedDelta {
    Added(FeedEntry),
    /// The entry's winner (and so maybe its kind) changed.
    Changed(FeedEntry),
    /// Its write was overwritten by a write that saw it, or became the
    /// current version.
    Removed {
        id: Dot,
    },
}

/// The feed, keyed by entry id.
pub type Feed = BTreeMap<Dot, FeedEntry>;

/// The feed of one key with these leaves.
pub fn of_key<'a>(
    container: &str,
    key: &str,
    policy: &ContainerPolicy,
    leaves: impl IntoIterator<Item = &'a Version> + Clone,
) -> Feed {
    let resolution = match policy {
        ContainerPolicy::Lww { feed: true, .. } => Resolution::ByPolicy,
        ContainerPolicy::Custom => Resolution::Unresolved,
        _ => return Feed::new(),
    };
    let Some(current) = rank::current(policy, leaves.clone()) else {
        return Feed::new();
    };
    leaves
        .into_iter()
        .filter(|leaf| leaf.dot != current.dot)
        .map(|loser| {
            let entry = FeedEntry {
                container: container.to_string(),
                key: key.to_string(),
                kind: ConflictKind::between(loser, current),
                loser: loser.clone(),
                policy: policy.clone(),
                resolution,
                winner: current.dot.clone(),
            };
            (loser.dot.clone(), entry)
        })
        .collect()
}

/// The deltas that turn `before` into `after`, sorted by id.
pub fn diff(before: &Feed, after: &Feed) -> Vec<FeedDelta> {
    let mut deltas = Vec::new();
    for (id, entry) in before {
        match after.get(id) {
            None => deltas.push(FeedDelta::Removed { id: id.clone() }),
            Some(now) if now != entry => deltas.push(FeedDelta::Changed(now.clone())),
            Some(_) => {}
        }
    }
    for (id, entry) in after {
        if !before.contains_key(id) {
            deltas.push(FeedDelta::Added(entry.clone()));
        }
    }
    deltas.sort_by(|a, b| delta_id(a).cmp(delta_id(b)));
    deltas
}

fn delta_id(delta: &FeedDelta) -> &Dot {
    match delta {
        FeedDelta::Added(entry) | FeedDelta::Changed(entry) => entry.id(),
        FeedDelta::Removed { id } => id,
    }
}

/// What a runtime does with a delta. Applying an `Added` twice or a
/// `Removed` of an absent entry is harmless, so a replayed delta is too.
pub fn apply(feed: &mut Feed, delta: &FeedDelta) {
    match delta {
        FeedDelta::Added(entry) | FeedDelta::Changed(entry) => {
            feed.insert(entry.id().clone(), entry.clone());
        }
        FeedDelta::Removed { id } => {
            feed.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RegionId;

    fn version(region: &str, lsn: u64, ts: u64, body: Body) -> Version {
        Version {
            dot: Dot::new(RegionId::new(region), lsn),
            ts,
            body,
        }
    }

    fn insert(v: &str) -> Body {
        Body::Value {
            value: v.into(),
            kind: PutKind::Insert,
        }
    }

    fn replace(v: &str) -> Body {
        Body::Value {
            value: v.into(),
            kind: PutKind::Replace,
        }
    }

    #[test]
    fn conflict_kinds_follow_cosmos() {
        let i1 = version("east", 1, 1, insert("a"));
        let i2 = version("west", 1, 2, insert("b"));
        let r1 = version("east", 2, 3, replace("c"));
        let d1 = version("west", 2, 4, Body::Tombstone);
        assert_eq!(ConflictKind::between(&i1, &i2), ConflictKind::InsertInsert);
        assert_eq!(
            ConflictKind::between(&i1, &r1),
            ConflictKind::ReplaceReplace
        );
        assert_eq!(
            ConflictKind::between(&r1, &i1),
            ConflictKind::ReplaceReplace
        );
        assert_eq!(ConflictKind::between(&r1, &d1), ConflictKind::DeleteReplace);
        assert_eq!(ConflictKind::between(&d1, &i1), ConflictKind::DeleteReplace);
        assert_eq!(ConflictKind::DeleteReplace.to_string(), "delete/replace");
    }

    #[test]
    fn a_keys_feed_holds_every_leaf_but_the_current_one() {
        let leaves = [
            version("east", 1, 1, insert("a")),
            version("west", 1, 2, insert("b")),
            version("north", 1, 3, replace("c")),
        ];
        let lww: ContainerPolicy = "lww".parse().unwrap();
        let feed = of_key("c", "k", &lww, &leaves);
        assert_eq!(feed.len(), 2);
        let east = &feed[&leaves[0].dot];
        assert_eq!(east.winner, leaves[2].dot);
        assert_eq!(east.kind, ConflictKind::ReplaceReplace);
        assert_eq!(east.resolution, Resolution::ByPolicy);
        assert_eq!(east.id().to_string(), "east:1");
        let custom = of_key("c", "k", &ContainerPolicy::Custom, &leaves);
        let west = &custom[&leaves[1].dot];
        assert_eq!(west.winner, leaves[0].dot, "custom: the earliest stays");
        assert_eq!(west.kind, ConflictKind::InsertInsert);
        assert_eq!(west.resolution, Resolution::Unresolved);
        let quiet: ContainerPolicy = "lww --no-feed-for-lww".parse().unwrap();
        assert!(of_key("c", "k", &quiet, &leaves).is_empty());
        assert!(of_key("c", "k", &lww, &leaves[..1]).is_empty());
    }

    #[test]
    fn deltas_turn_one_feed_into_the_other() {
        let leaves = [
            version("east", 1, 1, insert("a")),
            version("west", 1, 2, insert("b")),
            version("north", 1, 3, replace("c")),
            version("south", 1, 0, Body::Tombstone),
        ];
        let lww: ContainerPolicy = "lww".parse().unwrap();
        let before = of_key("c", "k", &lww, &leaves[..3]);
        let after = of_key("c", "k", &lww, &leaves[1..]);
        let deltas = diff(&before, &after);
        let mut feed = before.clone();
        for delta in &deltas {
            apply(&mut feed, delta);
        }
        assert_eq!(feed, after);
        assert!(deltas.contains(&FeedDelta::Removed {
            id: leaves[0].dot.clone()
        }));
        assert!(
            deltas.iter().any(|d| matches!(d, FeedDelta::Changed(e)
                if e.id() == &leaves[1].dot && e.kind == ConflictKind::DeleteReplace)),
            "west's winner changed to the tombstone: {deltas:?}"
        );
        assert!(
            deltas
                .iter()
                .any(|d| matches!(d, FeedDelta::Added(e) if e.id() == &leaves[2].dot)),
            "north lost its place as the current version"
        );
        assert_eq!(deltas.len(), 3);
        assert!(diff(&after, &after).is_empty());
    }
}
