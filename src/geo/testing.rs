//! Meta states for the unit tests of the geo rules: a formed account of
//! three regions, west writing, east and north reading.

use crate::config::WriteMode;
use crate::consistency::Consistency;
use crate::ids::RegionId;
use crate::meta::{AccountSettings, MetaCommand, MetaState, RegionState};

pub fn r(name: &str) -> RegionId {
    RegionId::new(name)
}

/// West writes; every region online; failover on, not paused.
pub fn formed() -> MetaState {
    let mut s = MetaState::default();
    s.apply(MetaCommand::Init {
        settings: AccountSettings {
            name: "dev".into(),
            write_mode: WriteMode::SingleWrite,
            default_consistency: Consistency::Session,
            max_staleness_ops: 10,
            max_staleness_ms: 1000,
            failover: true,
            max_lag_on_failover: 100,
        },
        priorities: vec![r("west"), r("east"), r("north")],
    });
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
