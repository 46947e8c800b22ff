//! The hub's confirmation rule for multi-write (DESIGN.md "Multi-write
//! mode"), pure: what confirming a region's tentative write does to its
//! item and to the conflict feed. The runtime appends each outcome to the
//! hub's geo log; every replica applies the same outcomes in the same order.
//!
//! The rule. Per key the hub keeps the **frontier**: the confirmed versions
//! that no confirmed write of that key has seen. A write's base is its origin
//! region's version vector when it took the write, so "w' has seen w" is
//! `w'.base.covers(w.dot)`. Confirming `w` drops every leaf its base covers
//! and adds `w`. The key's current version is the policy's maximum over the
//! leaves ([`rank`]), and its feed is one entry per other leaf ([`feed`]).
//! CRDT keys apply the write's operation instead ([`crate::crdt`]) and never
//! produce feed entries.
//!
//! Why it is order independent. Comparing an incoming write with the hub's
//! current version is not: with regions A and B, w1 = A's put, w2 = B's put
//! (neither saw anything), w3 = A's put that saw w1 only, and ts(w1) <
//! ts(w2) < ts(w3), confirming w1, w2, w3 puts w1 and w2 in the feed, while
//! w1, w3, w2 puts only w2 there. With the frontier, after any order the
//! leaves are the confirmed writes of the key that no other confirmed write
//! of the key has seen, which depends only on the set of confirmed writes:
//! the hub confirms a write only after every write its base covers
//! ([`Hub::confirm`] refuses a base it has not confirmed), so a leaf is
//! never added after a write that saw it, and every write that sees it
//! comes later and drops it. The ranking is a total order (dots are
//! unique), so the maximum of the leaves, and hence the current version and
//! the feed, depend only on the leaves too. Confirmation returns the feed's
//! delta (entries added, removed, changed), and applying the deltas in order
//! gives the feed computed from the final leaves.
//!
//! Invariants: per origin, writes are confirmed in LSN order without gaps
//! (a gap is an error, a repeat is a [`Confirmation::Duplicate`] that
//! changes nothing); a feed entry's id is its losing dot, the same in every
//! region; every confirmed write is exactly one of: the current version of
//! its key, seen by a later confirmed write of its key, merged into a CRDT,
//! in the feed once, or (`--no-feed-for-lww` only) lost by policy without a
//! record. `order_test.rs` checks all of this by confirming random runs of
//! a simulated account in many orders.

pub mod feed;
pub mod hub;
pub mod rank;
pub mod write;

#[cfg(test)]
mod order_test;

pub use feed::{ConflictKind, Feed, FeedDelta, FeedEntry, Resolution};
pub use hub::{ConfirmError, Confirmation, Current, Hub, ItemKey};
pub use write::{Body, PutKind, Version, Write, WriteOp};
