//! Between meridian's [`Clock`] (a sorted map) and the crate's vector
//! clock.

use crdts::{Dot as CrdtDot, VClock};

use crate::crdt::error::CrdtError;
use crate::crdt::ops::Clock;
use crate::ids::RegionId;

/// The crate's vector clock of `clock`.
pub(super) fn vclock(clock: &Clock) -> VClock<RegionId> {
    clock
        .iter()
        .map(|(region, n)| CrdtDot::new(region.clone(), *n))
        .collect()
}

/// The [`Clock`] of the crate's `vclock`, without zero entries.
pub(super) fn clock_of(vclock: &VClock<RegionId>) -> Clock {
    vclock
        .iter()
        .map(|dot| (dot.actor.clone(), dot.counter))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// One step more of `region` on `vclock`, refused at the top of `u64`.
pub(super) fn next_step(vclock: &VClock<RegionId>, region: &RegionId) -> Result<(), CrdtError> {
    match vclock.get(region) {
        u64::MAX => Err(CrdtError::Overflow {
            region: region.clone(),
        }),
        _ => Ok(()),
    }
}
