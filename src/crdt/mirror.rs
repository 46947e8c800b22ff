//! The crate's private fields, read through its serde form into sorted
//! maps: a counter's shares and a register's siblings with their clocks.
//! Mirrors of `PNCounter { p: GCounter { inner: VClock { dots } }, n }` and
//! `MVReg { vals: Vec<(VClock, V)> }` of crdts 7.3.2 (pinned exactly).

use crdts::{MVReg, PNCounter};
use serde::Deserialize;

use crate::crdt::error::CrdtError;
use crate::crdt::ops::Clock;
use crate::ids::RegionId;

/// Why reading the crate's fields through serde_json cannot fail: every map
/// key is a `RegionId`, a string, and the mirrors below match crdts 7.3.2,
/// pinned exactly (the unit tests read every type through them).
pub(super) const MIRROR_HOLDS: &str =
    "crdts 7.3.2 counters and registers serialise to JSON with string keys, as the mirrors expect";

#[derive(Deserialize)]
struct ClockMirror {
    dots: Clock,
}

#[derive(Deserialize)]
struct GCounterMirror {
    inner: ClockMirror,
}

#[derive(Deserialize)]
struct PnCounterMirror {
    p: GCounterMirror,
    n: GCounterMirror,
}

#[derive(Deserialize)]
struct MvRegMirror {
    vals: Vec<(ClockMirror, Vec<u8>)>,
}

/// A counter's up and down shares by region, without zero shares.
pub(super) fn counter_shares(counter: &PNCounter<RegionId>) -> Result<(Clock, Clock), CrdtError> {
    let mirror: PnCounterMirror = serde_json::to_value(counter)
        .and_then(serde_json::from_value)
        .map_err(|e| CrdtError::Malformed(format!("counter shares: {e}")))?;
    let strip = |c: Clock| c.into_iter().filter(|(_, n)| *n > 0).collect();
    Ok((strip(mirror.p.inner.dots), strip(mirror.n.inner.dots)))
}

/// A register's siblings, each with its clock (without zero entries).
pub(super) fn register_siblings(
    register: &MVReg<Vec<u8>, RegionId>,
) -> Result<Vec<(Clock, Vec<u8>)>, CrdtError> {
    let mirror: MvRegMirror = serde_json::to_value(register)
        .and_then(serde_json::from_value)
        .map_err(|e| CrdtError::Malformed(format!("register siblings: {e}")))?;
    Ok(mirror
        .vals
        .into_iter()
        .map(|(clock, value)| {
            let clock = clock.dots.into_iter().filter(|(_, n)| *n > 0).collect();
            (clock, value)
        })
        .collect())
}
