//! The hub's confirmation state and its one rule, [`Hub::confirm`].

use std::collections::BTreeMap;

use crate::container::{
    ContainerError, ContainerPolicy, ContainerSpec, CreateDecision, check_create,
};
use crate::crdt::{CrdtError, CrdtValue};
use crate::dot::{Dot, VersionVector};

use super::feed::{self, Feed, FeedDelta};
use super::rank;
use super::write::{Body, Version, Write, WriteOp};

/// `(container, key)`.
pub type ItemKey = (String, String);

/// What a key holds at the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyState {
    /// A policy item: the frontier, the confirmed versions that no
    /// confirmed write of the key has seen.
    Leaves(BTreeMap<Dot, Version>),
    Crdt(CrdtValue),
}

/// An item as it reads after confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// The policy's current version (a tombstone reads as absent).
    Version(Version),
    Crdt(CrdtValue),
}

/// What confirming one write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Its dot was confirmed before: nothing changed.
    Duplicate,
    /// Confirmed and applied to its item.
    Applied {
        current: Current,
        feed: Vec<FeedDelta>,
        /// The write created its container with the default policy.
        created_container: bool,
    },
    /// Confirmed (its dot is used up, so the origin's later writes follow)
    /// but not applied: its operation does not fit the container's policy,
    /// e.g. two regions created the same container with different policies
    /// at once and the hub ordered the other creation first.
    Refused { reason: ContainerError },
}

/// Why a write cannot be confirmed now. Nothing changed; the runtime stops
/// the batch, as for a gap in a shipped geo log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfirmError {
    #[error("write {dot} skips origin LSNs: the hub has confirmed up to {}:{confirmed}", dot.origin)]
    Gap { dot: Dot, confirmed: u64 },
    #[error("write {dot} has a base ({base}) that saw its own or later writes of its origin")]
    BaseAhead { dot: Dot, base: VersionVector },
    #[error("write {dot} has a base ({base}) the hub has not confirmed ({confirmed})")]
    BaseNotConfirmed {
        dot: Dot,
        base: VersionVector,
        confirmed: VersionVector,
    },
    #[error("write {dot}: {source}")]
    Crdt { dot: Dot, source: CrdtError },
}

/// The hub's confirmation state: a pure function of the set of writes it
/// confirmed (see the module header of `confirm`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hub {
    /// Per origin, the highest confirmed LSN.
    confirmed: VersionVector,
    containers: BTreeMap<String, ContainerPolicy>,
    items: BTreeMap<ItemKey, KeyState>,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Per origin, the highest confirmed LSN.
    pub fn confirmed(&self) -> &VersionVector {
        &self.confirmed
    }

    /// `container create`: refused when the container has another policy.
    pub fn create_container(
        &mut self,
        spec: &ContainerSpec,
    ) -> Result<CreateDecision, ContainerError> {
        let existing = self.containers.get(&spec.name).map(|policy| ContainerSpec {
            name: spec.name.clone(),
            policy: policy.clone(),
        });
        let decision = check_create(existing.as_ref(), spec)?;
        self.containers
            .insert(spec.name.clone(), spec.policy.clone());
        Ok(decision)
    }

    pub fn policy(&self, container: &str) -> Option<&ContainerPolicy> {
        self.containers.get(container)
    }

    /// Confirms one write of an origin, in that origin's order.
    ///
    /// A dot confirmed before is a duplicate and changes nothing. A dot
    /// past the next one of its origin, or a base the hub has not confirmed,
    /// is an error and changes nothing. Otherwise the write joins its key:
    /// every leaf its base covers leaves the frontier, the write becomes a
    /// leaf, and the current version and the feed follow from the leaves.
    pub fn confirm(&mut self, write: &Write) -> Result<Confirmation, ConfirmError> {
        if self.confirmed.covers(&write.dot) {
            return Ok(Confirmation::Duplicate);
        }
        self.check_order(write)?;
        let created_container = !self.containers.contains_key(&write.container);
        let policy = self
            .containers
            .get(&write.container)
            .cloned()
            .unwrap_or_default();
        if let Err(reason) = check_op(&write.container, &policy, &write.op) {
            self.confirmed.observe(&write.dot);
            return Ok(Confirmation::Refused { reason });
        }
        let item = (write.container.clone(), write.key.clone());
        let (current, feed) = match (&write.op, policy.crdt_kind()) {
            (WriteOp::Crdt(op), Some(kind)) => {
                let state = self
                    .items
                    .entry(item)
                    .or_insert_with(|| KeyState::Crdt(CrdtValue::new(kind)));
                let KeyState::Crdt(value) = state else {
                    unreachable!("a key of a CRDT container holds a CRDT value");
                };
                value.apply(op).map_err(|source| ConfirmError::Crdt {
                    dot: write.dot.clone(),
                    source,
                })?;
                (Current::Crdt(value.clone()), Vec::new())
            }
            _ => self.join_leaves(write, &policy, item),
        };
        self.containers
            .entry(write.container.clone())
            .or_insert(policy);
        self.confirmed.observe(&write.dot);
        Ok(Confirmation::Applied {
            current,
            feed,
            created_container,
        })
    }

    fn check_order(&self, write: &Write) -> Result<(), ConfirmError> {
        let dot = &write.dot;
        let confirmed = self.confirmed.get(&dot.origin);
        if dot.lsn != confirmed + 1 {
            return Err(ConfirmError::Gap {
                dot: dot.clone(),
                confirmed,
            });
        }
        if write.base.get(&dot.origin) >= dot.lsn {
            return Err(ConfirmError::BaseAhead {
                dot: dot.clone(),
                base: write.base.clone(),
            });
        }
        if !self.confirmed.covers_vector(&write.base) {
            return Err(ConfirmError::BaseNotConfirmed {
                dot: dot.clone(),
                base: write.base.clone(),
                confirmed: self.confirmed.clone(),
            });
        }
        Ok(())
    }

    /// A put or delete joins its key's frontier.
    fn join_leaves(
        &mut self,
        write: &Write,
        policy: &ContainerPolicy,
        item: ItemKey,
    ) -> (Current, Vec<FeedDelta>) {
        let state = self
            .items
            .entry(item)
            .or_insert_with(|| KeyState::Leaves(BTreeMap::new()));
        let KeyState::Leaves(leaves) = state else {
            unreachable!("a key of a policy container holds leaves");
        };
        let before = feed::of_key(&write.container, &write.key, policy, leaves.values());
        leaves.retain(|dot, _| !write.base.covers(dot));
        let body = match &write.op {
            WriteOp::Put { value, kind } => Body::Value {
                value: value.clone(),
                kind: *kind,
            },
            // `check_op` let only puts and deletes through to here.
            _ => Body::Tombstone,
        };
        let version = Version {
            dot: write.dot.clone(),
            ts: write.ts,
            body,
        };
        leaves.insert(write.dot.clone(), version);
        let after = feed::of_key(&write.container, &write.key, policy, leaves.values());
        // There is a leaf now, so there is a current version.
        let current = rank::current(policy, leaves.values())
            .expect("a key with a leaf has a current version")
            .clone();
        (Current::Version(current), feed::diff(&before, &after))
    }

    /// The current state of one item.
    pub fn item(&self, container: &str, key: &str) -> Option<Current> {
        let state = self.items.get(&(container.to_string(), key.to_string()))?;
        self.current_of(container, state)
    }

    fn current_of(&self, container: &str, state: &KeyState) -> Option<Current> {
        match state {
            KeyState::Crdt(value) => Some(Current::Crdt(value.clone())),
            KeyState::Leaves(leaves) => {
                let policy = self.containers.get(container)?;
                rank::current(policy, leaves.values()).map(|v| Current::Version(v.clone()))
            }
        }
    }

    /// Every item's current state.
    pub fn items(&self) -> BTreeMap<ItemKey, Current> {
        self.items
            .iter()
            .filter_map(|(item, state)| Some((item.clone(), self.current_of(&item.0, state)?)))
            .collect()
    }

    /// The leaves of a policy item, by dot.
    pub fn leaves(&self, container: &str, key: &str) -> Vec<&Version> {
        match self.items.get(&(container.to_string(), key.to_string())) {
            Some(KeyState::Leaves(leaves)) => leaves.values().collect(),
            _ => Vec::new(),
        }
    }

    /// The whole conflict feed, computed from the leaves of every key.
    pub fn feed(&self) -> Feed {
        let mut all = Feed::new();
        for ((container, key), state) in &self.items {
            if let (KeyState::Leaves(leaves), Some(policy)) =
                (state, self.containers.get(container))
            {
                all.extend(feed::of_key(container, key, policy, leaves.values()));
            }
        }
        all
    }
}

/// Whether a write's operation fits its container's policy.
fn check_op(container: &str, policy: &ContainerPolicy, op: &WriteOp) -> Result<(), ContainerError> {
    match (op, policy.crdt_kind()) {
        (WriteOp::Put { .. } | WriteOp::Delete, None) => Ok(()),
        (WriteOp::Crdt(op), Some(kind)) if op.kind() == kind => Ok(()),
        (WriteOp::Crdt(op), Some(kind)) => Err(ContainerError::WrongCrdt {
            container: container.to_string(),
            kind,
            op: op.name(),
            op_kind: op.kind(),
        }),
        (WriteOp::Crdt(op), None) => Err(ContainerError::CrdtOpToPolicy {
            container: container.to_string(),
            policy: policy.clone(),
            op: op.name(),
        }),
        (op, Some(kind)) => Err(ContainerError::PlainWriteToCrdt {
            container: container.to_string(),
            kind,
            op: op.name(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confirm::feed::{ConflictKind, Resolution};
    use crate::confirm::write::PutKind;
    use crate::crdt::{CrdtKind, CrdtRead, CrdtRequest};
    use crate::ids::RegionId;

    fn r(name: &str) -> RegionId {
        RegionId::new(name)
    }

    fn dot(region: &str, lsn: u64) -> Dot {
        Dot::new(r(region), lsn)
    }

    /// A write with a base of `(region, lsn)` pairs; its own previous LSN is
    /// added to the base.
    fn write(d: Dot, ts: u64, container: &str, op: WriteOp, saw: &[(&str, u64)]) -> Write {
        let mut base: VersionVector = saw.iter().map(|(g, l)| dot(g, *l)).collect();
        base.observe(&Dot::new(d.origin.clone(), d.lsn - 1));
        Write {
            dot: d,
            ts,
            container: container.into(),
            key: "k".into(),
            op,
            base,
        }
    }

    fn put(value: &str, kind: PutKind) -> WriteOp {
        WriteOp::Put {
            value: value.into(),
            kind,
        }
    }

    fn run(hub: &mut Hub, writes: &[&Write]) -> Feed {
        let mut fed = Feed::new();
        for w in writes {
            match hub.confirm(w).expect("confirm") {
                Confirmation::Applied { feed: deltas, .. } => {
                    deltas.iter().for_each(|d| feed::apply(&mut fed, d))
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(fed, hub.feed(), "the deltas give the feed of the leaves");
        fed
    }

    #[test]
    fn the_naive_rules_counterexample_gives_one_feed_in_both_orders() {
        let w1 = write(dot("a", 1), 1, "c", put("w1", PutKind::Insert), &[]);
        let w2 = write(dot("b", 1), 2, "c", put("w2", PutKind::Insert), &[]);
        let w3 = write(dot("a", 2), 3, "c", put("w3", PutKind::Replace), &[]);
        let one = run(&mut Hub::new(), &[&w1, &w2, &w3]);
        let two = run(&mut Hub::new(), &[&w1, &w3, &w2]);
        assert_eq!(one, two);
        assert_eq!(one.keys().cloned().collect::<Vec<_>>(), vec![dot("b", 1)]);
        let entry = &one[&dot("b", 1)];
        assert_eq!(entry.winner, dot("a", 2));
        assert_eq!(entry.kind, ConflictKind::ReplaceReplace);
    }

    #[test]
    fn a_duplicate_changes_nothing_and_a_gap_is_refused() {
        let mut hub = Hub::new();
        let w1 = write(dot("a", 1), 1, "c", put("x", PutKind::Insert), &[]);
        let w3 = write(dot("a", 3), 3, "c", put("z", PutKind::Replace), &[]);
        assert!(matches!(
            hub.confirm(&w1),
            Ok(Confirmation::Applied {
                created_container: true,
                ..
            })
        ));
        let before = hub.clone();
        assert_eq!(hub.confirm(&w1), Ok(Confirmation::Duplicate));
        assert_eq!(hub, before);
        let err = hub.confirm(&w3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "write a:3 skips origin LSNs: the hub has confirmed up to a:1"
        );
        assert_eq!(hub, before, "a refused write changes nothing");
        assert_eq!(hub.policy("c"), Some(&ContainerPolicy::default()));
    }

    #[test]
    fn a_base_the_hub_has_not_confirmed_is_refused() {
        let mut hub = Hub::new();
        let saw_unconfirmed = write(dot("a", 1), 1, "c", WriteOp::Delete, &[("b", 1)]);
        assert!(matches!(
            hub.confirm(&saw_unconfirmed),
            Err(ConfirmError::BaseNotConfirmed { .. })
        ));
        let mut ahead = write(dot("a", 1), 1, "c", WriteOp::Delete, &[]);
        ahead.base.observe(&dot("a", 1));
        assert!(matches!(
            hub.confirm(&ahead),
            Err(ConfirmError::BaseAhead { .. })
        ));
        assert_eq!(hub, Hub::new());
    }

    #[test]
    fn a_delete_wins_over_a_concurrent_put_and_a_put_that_saw_it_revives_the_key() {
        let mut hub = Hub::new();
        let w1 = write(dot("a", 1), 1, "c", put("x", PutKind::Insert), &[]);
        let del = write(dot("b", 1), 2, "c", WriteOp::Delete, &[("a", 1)]);
        let late = write(dot("a", 2), 9, "c", put("y", PutKind::Replace), &[]);
        let feed = run(&mut hub, &[&w1, &del, &late]);
        assert!(matches!(hub.item("c", "k"), Some(Current::Version(v)) if v.is_tombstone()));
        assert_eq!(feed[&dot("a", 2)].kind, ConflictKind::DeleteReplace);
        let revive = write(dot("a", 3), 10, "c", put("z", PutKind::Insert), &[("b", 1)]);
        let Ok(Confirmation::Applied { current, feed, .. }) = hub.confirm(&revive) else {
            panic!("revive");
        };
        assert!(matches!(current, Current::Version(v) if v.value() == Some(&b"z"[..])));
        assert_eq!(feed, vec![FeedDelta::Removed { id: dot("a", 2) }]);
        assert!(hub.feed().is_empty());
    }

    #[test]
    fn custom_keeps_the_earliest_until_a_write_that_saw_both_resolves_it() {
        let mut hub = Hub::new();
        let spec = ContainerSpec {
            name: "c".into(),
            policy: ContainerPolicy::Custom,
        };
        assert_eq!(hub.create_container(&spec), Ok(CreateDecision::Create));
        let w1 = write(dot("a", 1), 5, "c", put("a", PutKind::Insert), &[]);
        let w2 = write(dot("b", 1), 1, "c", put("b", PutKind::Insert), &[]);
        let feed = run(&mut hub, &[&w1, &w2]);
        let entry = &feed[&dot("a", 1)];
        assert_eq!(entry.resolution, Resolution::Unresolved);
        assert_eq!(entry.winner, dot("b", 1), "the earliest stays");
        assert_eq!(entry.kind, ConflictKind::InsertInsert);
        // Conflicts.Resolve: a write whose base covers both versions.
        let resolve = write(
            dot("b", 2),
            6,
            "c",
            put("merged", PutKind::Replace),
            &[("a", 1)],
        );
        let Ok(Confirmation::Applied { feed, .. }) = hub.confirm(&resolve) else {
            panic!("resolve");
        };
        assert_eq!(feed, vec![FeedDelta::Removed { id: dot("a", 1) }]);
        assert_eq!(hub.leaves("c", "k").len(), 1);
    }

    #[test]
    fn an_operation_that_does_not_fit_the_container_is_refused_but_uses_its_dot() {
        let mut hub = Hub::new();
        let spec = ContainerSpec {
            name: "hits".into(),
            policy: ContainerPolicy::Counter,
        };
        hub.create_container(&spec).unwrap();
        let p = write(dot("a", 1), 1, "hits", put("1", PutKind::Insert), &[]);
        let Ok(Confirmation::Refused { reason }) = hub.confirm(&p) else {
            panic!("a put to a counter");
        };
        assert_eq!(
            reason.to_string(),
            "container hits is a counter: send incr, not put"
        );
        let op = CrdtValue::new(CrdtKind::Counter)
            .prepare(&r("a"), &CrdtRequest::Incr { by: 4 })
            .unwrap();
        let incr = write(dot("a", 2), 2, "hits", WriteOp::Crdt(op), &[]);
        assert!(matches!(
            hub.confirm(&incr),
            Ok(Confirmation::Applied { .. })
        ));
        let Some(Current::Crdt(value)) = hub.item("hits", "k") else {
            panic!("a counter");
        };
        assert_eq!(value.read(), Ok(CrdtRead::Counter(4)));
        assert!(hub.feed().is_empty());
        let other = ContainerSpec {
            name: "hits".into(),
            policy: ContainerPolicy::Set,
        };
        assert!(hub.create_container(&other).is_err());
        let op = CrdtValue::new(CrdtKind::Counter)
            .prepare(&r("a"), &CrdtRequest::Incr { by: 1 })
            .unwrap();
        let to_lww = write(dot("a", 3), 3, "plain", WriteOp::Crdt(op), &[]);
        let Ok(Confirmation::Refused { reason }) = hub.confirm(&to_lww) else {
            panic!("an incr to a container created with lww");
        };
        assert_eq!(
            reason.to_string(),
            "container plain has policy lww: send put or delete, not incr"
        );
        assert_eq!(
            hub.confirmed().get(&r("a")),
            3,
            "refused writes use their dots"
        );
    }
}
