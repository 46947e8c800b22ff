//! Bounded staleness (DESIGN.md "Consistency levels") as pure rules: which
//! check a write passes at the write region leader, and which online read
//! region, if any, trails by more than K operations or T ms so writes are
//! throttled. The runtime (`node::regions`) measures the lags; the rules
//! here decide what they mean.

use std::time::Duration;

use crate::config::AccountConfig;
use crate::consistency::Consistency;
use crate::geo::acks::Lag;
use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::meta::{MetaState, RegionState};

/// K and T: the most a region counted by bounded staleness may trail the
/// write region by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalenessBounds {
    pub max_ops: u64,
    pub max_ms: u64,
}

impl StalenessBounds {
    pub fn of(account: &AccountConfig) -> Self {
        Self {
            max_ops: account.max_staleness_ops,
            max_ms: account.max_staleness_ms,
        }
    }

    /// A lag of no more than K operations and T ms (either at its bound
    /// exactly is still within).
    pub fn admits(&self, lag: Lag) -> bool {
        lag.ops <= self.max_ops && lag.ms <= self.max_ms
    }

    /// T, which a read region's freshness is held to.
    pub fn t(&self) -> Duration {
        Duration::from_millis(self.max_ms)
    }

    /// How long a throttled client is told to wait: a tenth of T, within
    /// 10 ms and 1 s.
    pub fn retry_after_ms(&self) -> u64 {
        (self.max_ms / 10).clamp(10, 1000)
    }
}

/// What the write region leader checks before it proposes a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCheck {
    /// A strong write: the strong set must hold a majority of regions.
    StrongSet,
    /// The staleness bounds: no online read region may trail beyond them.
    Staleness,
    /// Nothing: the account promises no bound a write could break.
    Nothing,
}

/// The check for a write at `level` in an account whose default level is
/// `default`: a strong write checks the strong set; any other write is
/// throttled only where bounded staleness (or strong, which implies it)
/// is the account's default.
pub fn write_check(level: Consistency, default: Consistency) -> WriteCheck {
    if level == Consistency::Strong {
        WriteCheck::StrongSet
    } else if default <= Consistency::BoundedStaleness {
        WriteCheck::Staleness
    } else {
        WriteCheck::Nothing
    }
}

/// The regions bounded staleness counts, in order: the online read
/// regions. A joining region is not counted (it serves no bounded read
/// until it is online, see `strong_set::caught_up`).
pub fn counted_regions(meta: &MetaState) -> impl Iterator<Item = &RegionId> {
    meta.regions
        .iter()
        .filter(|(r, m)| !meta.is_write_region(r) && m.state == RegionState::Online)
        .map(|(r, _)| r)
}

/// The first counted region whose lag breaks `bounds`, with that lag.
/// `lag_of` is asked for each counted region in order, until one breaks.
pub fn first_over_bounds(
    meta: &MetaState,
    bounds: StalenessBounds,
    mut lag_of: impl FnMut(&RegionId) -> Lag,
) -> Option<(RegionId, Lag)> {
    counted_regions(meta).find_map(|region| {
        let lag = lag_of(region);
        (!bounds.admits(lag)).then(|| (region.clone(), lag))
    })
}

/// What a read region is known to hold: the higher of its last
/// acknowledgement and what it reported with its last lease renewal (a
/// new write leader has no acknowledgements yet).
pub fn known_applied(acked: Option<Glsn>, renewed: Option<Glsn>) -> Glsn {
    acked
        .unwrap_or(Glsn::ZERO)
        .max(renewed.unwrap_or(Glsn::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::testing::{formed, r, set_state};

    const LEVELS: [Consistency; 5] = [
        Consistency::Strong,
        Consistency::BoundedStaleness,
        Consistency::Session,
        Consistency::ConsistentPrefix,
        Consistency::Eventual,
    ];

    /// Every write level against every account default.
    #[test]
    fn strong_writes_check_the_strong_set_and_others_throttle_under_a_bounded_default() {
        for level in LEVELS {
            for default in LEVELS {
                let expected = match (level, default) {
                    (Consistency::Strong, _) => WriteCheck::StrongSet,
                    (_, Consistency::Strong | Consistency::BoundedStaleness) => {
                        WriteCheck::Staleness
                    }
                    _ => WriteCheck::Nothing,
                };
                assert_eq!(
                    write_check(level, default),
                    expected,
                    "write at {level:?}, account default {default:?}"
                );
            }
        }
    }

    #[test]
    fn the_bounds_admit_a_lag_at_either_bound_exactly() {
        let bounds = StalenessBounds {
            max_ops: 10,
            max_ms: 1000,
        };
        for ops in [0, 9, 10, 11] {
            for ms in [0, 999, 1000, 1001] {
                assert_eq!(
                    bounds.admits(Lag { ops, ms }),
                    ops <= 10 && ms <= 1000,
                    "{ops} ops, {ms} ms"
                );
            }
        }
    }

    #[test]
    fn a_throttled_client_waits_a_tenth_of_t_within_limits() {
        let after = |max_ms| StalenessBounds { max_ops: 1, max_ms }.retry_after_ms();
        assert_eq!(after(0), 10);
        assert_eq!(after(99), 10);
        assert_eq!(after(5000), 500);
        assert_eq!(after(60_000), 1000);
    }

    /// Both read regions in every state, each lagging or not: only an
    /// online read region that lags is reported, the first in order.
    #[test]
    fn only_online_read_regions_are_throttled_on() {
        let bounds = StalenessBounds {
            max_ops: 10,
            max_ms: 1000,
        };
        let states = [
            RegionState::Online,
            RegionState::Joining,
            RegionState::Offline,
        ];
        let behind = Lag { ops: 11, ms: 0 };
        for east in states {
            for north in states {
                for (east_behind, north_behind) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let mut meta = formed();
                    set_state(&mut meta, "east", east);
                    set_state(&mut meta, "north", north);
                    let mut asked = Vec::new();
                    let lag_of = |region: &RegionId| {
                        asked.push(region.clone());
                        let lagging = match region.as_str() {
                            "east" => east_behind,
                            "north" => north_behind,
                            // The write region is never asked.
                            other => panic!("asked for the lag of {other}"),
                        };
                        if lagging { behind } else { Lag::default() }
                    };
                    let found = first_over_bounds(&meta, bounds, lag_of);
                    let expected = if east == RegionState::Online && east_behind {
                        Some((r("east"), behind))
                    } else if north == RegionState::Online && north_behind {
                        Some((r("north"), behind))
                    } else {
                        None
                    };
                    assert_eq!(
                        found, expected,
                        "east {east:?}/{east_behind}, north {north:?}/{north_behind}"
                    );
                    let counted: Vec<RegionId> = counted_regions(&meta).cloned().collect();
                    assert!(asked.iter().all(|a| counted.contains(a)), "{asked:?}");
                }
            }
        }
    }

    #[test]
    fn what_a_region_holds_is_the_higher_of_its_ack_and_its_renewal() {
        let g = |lsn| Glsn::new(2, lsn);
        assert_eq!(known_applied(None, None), Glsn::ZERO);
        assert_eq!(known_applied(Some(g(5)), None), g(5));
        assert_eq!(known_applied(None, Some(g(7))), g(7));
        assert_eq!(known_applied(Some(g(5)), Some(g(7))), g(7));
        assert_eq!(known_applied(Some(g(9)), Some(g(7))), g(9));
    }
}
