//! CRDT items of multi-write's CRDT containers (DESIGN.md "Multi-write
//! mode"), over the `crdts` crate, pure.
//!
//! - `counter`: `PNCounter<RegionId>`; `incr(by)`, negative allowed; reads as
//!   the sum.
//! - `set`: `Orswot<String, RegionId>`; `add` wins over a concurrent `remove`
//!   (a remove takes away only the adds its origin had seen); reads as the
//!   members, sorted.
//! - `register`: `MVReg<Vec<u8>, RegionId>`; concurrent writes are kept as
//!   siblings, a write that saw them replaces them; reads as the siblings,
//!   sorted. MVReg's clocks express exactly the hub's "base covers" relation
//!   for one key: an origin's write clock is the merge of the clocks of the
//!   siblings in its view plus one step of its own, so `c1 < c2` holds iff
//!   the origin of write 2 had seen write 1 when it wrote, which is iff
//!   write 2's base covers write 1's dot. So the crate's type is used and the
//!   hub's frontier is not needed for registers.
//!
//! Clients send requests ([`CrdtRequest`]); the origin region turns one into
//! an operation ([`CrdtOp`]) from its own view of the item
//! ([`CrdtValue::prepare`]), and the hub and every replica apply that
//! operation ([`CrdtValue::apply`]). Operations are meridian's own types
//! (sorted maps), not the crate's, so the geo log carries stable bytes.
//!
//! Why the result does not depend on the order of confirmation: counter
//! operations carry the origin's new total for its own share, and applying
//! one is a per-region maximum. Set and register operations commute when
//! delivered causally, which the hub guarantees (a write is confirmed only
//! after every write its base covers). `apply` refuses an operation that
//! would need state not applied yet (a set add past the next step of its
//! region, a remove whose context is ahead of the set) instead of letting the
//! crate defer it; so the crate's hidden deferred-remove state is always
//! empty and the public accessors see the whole value.
//!
//! The crate's serde bytes are not canonical (hash maps) and are never hashed
//! or compared. [`CrdtValue::encode`] writes meridian's canonical, versioned
//! encoding instead: a version byte, a type byte, then every map sorted; the
//! same logical value always gives the same bytes. [`CrdtValue::decode`]
//! refuses unknown versions, malformed bytes and any non-canonical form
//! (it rebuilds the value and checks that it encodes back to the same bytes),
//! with an error, never a panic. [`CrdtValue::digest`] hashes the canonical
//! bytes.
//!
//! The files, one concept each:
//! - `ops`: the kinds, the requests, the operations and the reads;
//! - `error`: why a request, operation or encoding is refused;
//! - `counter`, `set`, `register`: each kind's prepare, apply, read and
//!   encoding;
//! - `value`: [`CrdtValue`], which hands each call to its kind's file and
//!   adds the version and type bytes;
//! - `encoding`: the pieces of the canonical bytes and a reader over
//!   untrusted ones;
//! - `clock`: between meridian's [`Clock`] and the crate's vector clock;
//! - `mirror`: the crate's private fields, read through its serde form.

mod clock;
mod counter;
mod encoding;
mod error;
mod mirror;
mod ops;
mod register;
mod set;
#[cfg(test)]
mod testing;
mod value;

pub use error::CrdtError;
pub use ops::{Clock, CrdtKind, CrdtOp, CrdtRead, CrdtRequest, Direction};
pub use set::SET_MEMBER_BYTES_MAX;
pub use value::CrdtValue;

/// The version byte of the canonical encoding this code writes.
pub const CRDT_ENCODING_VERSION: u8 = 1;
