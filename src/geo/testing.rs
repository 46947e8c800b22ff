//! Meta states for the unit tests of the geo rules: a formed account of
//! three regions, west writing, east and north reading.

use crate::consistency::Consistency;
use crate::ids::RegionId;
use crate::meta::{MetaState, RegionState};

pub fn r(name: &str) -> RegionId {
    RegionId::new(name)
}

/// West writes; every region online; failover on, not paused.
pub fn formed() -> MetaState {
    let s = crate::meta::testing::formed(&["west", "east", "north"], Consistency::Session);
    assert_eq!(s.write_region, Some(r("west")), "the first region writes");
    s
}

/// Puts `region` in `state` directly (the write region too: the rules
/// must hold for any state the meta group could hold).
pub fn set_state(s: &mut MetaState, region: &str, state: RegionState) {
    s.regions
        .get_mut(&r(region))
        .expect("a region of `formed`")
        .state = state;
}
