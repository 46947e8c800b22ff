//! The strong set's rules (DESIGN.md "Consistency levels"), pure: when a
//! joining region may be marked online, how far the write region leader
//! may trim the geo log, which regions a strong write still waits for,
//! and when strong writes are refused. The write region leader's runtime
//! (`node::regions::strong_set`) carries them out.
//!
//! Re-entry takes two steps (docs/FAILOVER.md): a region taken out renews
//! and becomes joining, which strong writes wait for at once; it is marked
//! online, and serves strong and bounded reads, only once it has
//! acknowledged everything applied when the leader first saw it joining
//! (the writes that did not wait for it) and trails within K and T.

use std::collections::HashMap;

use crate::error::Error;
use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::meta::{MetaState, RegionState};

/// The write leader proposes a geo log trim once this many entries can go.
pub const TRIM_AFTER_ENTRIES: u64 = 10_000;

/// The write region leader's memory for keeping the strong set: per
/// joining region its join point, and how far the geo log was trimmed.
#[derive(Debug, Default)]
pub struct StrongSetKeeper {
    /// Per joining region: the GLSN applied when this node first saw it
    /// joining. Strong writes acknowledged after that waited for it.
    join_points: HashMap<RegionId, Glsn>,
    /// The LSN up to which a trim was last committed.
    trimmed: u64,
    was_leader: bool,
}

impl StrongSetKeeper {
    /// This node does not lead the write region this tick. True when it
    /// just stopped: the join points are forgotten, and the caller clears
    /// the acknowledgements (a later leadership starts from fresh ones).
    pub fn not_leading(&mut self) -> bool {
        let stopped = self.was_leader;
        if stopped {
            self.join_points.clear();
            self.was_leader = false;
        }
        stopped
    }

    /// This node leads the write region this tick: forgets the join points
    /// of regions no longer joining (a region that left and comes back
    /// gets a new one).
    pub fn leading(&mut self, meta: &MetaState) {
        self.was_leader = true;
        self.join_points
            .retain(|r, _| meta.region_state(r) == Some(RegionState::Joining));
    }

    /// The join point of `region`: fixed at `applied` the first time it is
    /// asked for while the region joins.
    pub fn join_point(&mut self, region: &RegionId, applied: Glsn) -> Glsn {
        *self.join_points.entry(region.clone()).or_insert(applied)
    }

    /// The LSN to trim the geo log up to, given the `floor` every counted
    /// region holds: only once `TRIM_AFTER_ENTRIES` entries can go.
    pub fn trim_to(&self, floor: u64) -> Option<u64> {
        (floor >= self.trimmed + TRIM_AFTER_ENTRIES).then_some(floor)
    }

    /// A trim up to `upto` committed.
    pub fn trimmed(&mut self, upto: u64) {
        self.trimmed = upto;
    }
}

/// A joining region may be marked online: it acknowledged its join point,
/// and (online, it serves bounded reads at once) it trails within K and T,
/// or those reads would trail by every write made while it was joining.
/// `within_bounds` is asked only once the first holds.
pub fn caught_up(acked: Option<Glsn>, point: Glsn, within_bounds: impl FnOnce() -> bool) -> bool {
    acked.is_some_and(|a| a >= point) && within_bounds()
}

/// The LSN up to which the geo log may be trimmed: what every online read
/// region has acknowledged (one that has not counts as 0), or with none,
/// what the write region applied. A joining region is not counted: if the
/// entries it lacks are trimmed, it re-syncs from a state image.
pub fn trim_floor(
    meta: &MetaState,
    acked_lsn: impl Fn(&RegionId) -> Option<u64>,
    applied_lsn: u64,
) -> u64 {
    meta.regions
        .iter()
        .filter(|(r, m)| !meta.is_write_region(r) && m.state == RegionState::Online)
        .map(|(r, _)| acked_lsn(r).unwrap_or(0))
        .min()
        .unwrap_or(applied_lsn)
}

/// The regions a strong write of `glsn` still waits for: every read region
/// online or joining that has not acknowledged it.
pub fn not_yet_acked(
    meta: &MetaState,
    acked: impl Fn(&RegionId) -> Option<Glsn>,
    glsn: Glsn,
) -> Vec<RegionId> {
    meta.ack_wait_regions()
        .into_iter()
        .filter(|r| acked(r).is_none_or(|a| a < glsn))
        .collect()
}

/// Strong writes need the strong set to hold a majority of regions.
pub fn check_strong_set(meta: &MetaState) -> Result<(), Error> {
    if meta.strong_set_has_majority() {
        return Ok(());
    }
    let online: Vec<&str> = meta
        .regions
        .iter()
        .filter(|(_, m)| m.state == RegionState::Online)
        .map(|(r, _)| r.as_str())
        .collect();
    Err(Error::Unavailable {
        region: meta.write_region.clone(),
        reason: format!(
            "strong writes need a majority of the {} regions online; online: {}",
            meta.regions.len(),
            online.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::testing::{formed, r, set_state};

    const STATES: [RegionState; 3] = [
        RegionState::Online,
        RegionState::Joining,
        RegionState::Offline,
    ];

    fn g(lsn: u64) -> Glsn {
        Glsn::new(1, lsn)
    }

    #[test]
    fn a_joining_region_goes_online_once_it_holds_its_join_point_within_bounds() {
        let point = g(50);
        for acked in [None, Some(g(0)), Some(g(49)), Some(g(50)), Some(g(51))] {
            for within in [false, true] {
                let mut asked = false;
                let admitted = caught_up(acked, point, || {
                    asked = true;
                    within
                });
                let holds = acked.is_some_and(|a| a.lsn >= 50);
                assert_eq!(
                    admitted,
                    holds && within,
                    "acked {acked:?}, within {within}"
                );
                assert_eq!(
                    asked, holds,
                    "the bounds are asked only once it holds the point"
                );
            }
        }
    }

    #[test]
    fn the_join_point_is_fixed_when_first_seen_and_renewed_on_re_entry() {
        let mut k = StrongSetKeeper::default();
        let mut meta = formed();
        set_state(&mut meta, "east", RegionState::Joining);
        k.leading(&meta);
        assert_eq!(k.join_point(&r("east"), g(10)), g(10));
        // Later ticks do not move it, however far the write region got.
        k.leading(&meta);
        assert_eq!(k.join_point(&r("east"), g(90)), g(10));
        // Online (or out) and joining again: a new join point.
        set_state(&mut meta, "east", RegionState::Online);
        k.leading(&meta);
        set_state(&mut meta, "east", RegionState::Joining);
        k.leading(&meta);
        assert_eq!(k.join_point(&r("east"), g(120)), g(120));
    }

    #[test]
    fn losing_the_write_leadership_forgets_join_points_once() {
        let mut k = StrongSetKeeper::default();
        assert!(!k.not_leading(), "never led: nothing to forget");
        let mut meta = formed();
        set_state(&mut meta, "east", RegionState::Joining);
        k.leading(&meta);
        k.join_point(&r("east"), g(10));
        assert!(k.not_leading(), "just stopped: clear the acknowledgements");
        assert!(!k.not_leading(), "already cleared");
        k.leading(&meta);
        assert_eq!(k.join_point(&r("east"), g(70)), g(70), "a fresh join point");
    }

    #[test]
    fn a_trim_waits_for_enough_entries_and_then_moves_the_mark() {
        let mut k = StrongSetKeeper::default();
        assert_eq!(k.trim_to(TRIM_AFTER_ENTRIES - 1), None);
        assert_eq!(k.trim_to(TRIM_AFTER_ENTRIES), Some(TRIM_AFTER_ENTRIES));
        k.trimmed(TRIM_AFTER_ENTRIES);
        assert_eq!(k.trim_to(TRIM_AFTER_ENTRIES * 2 - 1), None);
        assert_eq!(
            k.trim_to(TRIM_AFTER_ENTRIES * 2),
            Some(TRIM_AFTER_ENTRIES * 2)
        );
        // Losing and regaining the leadership does not forget the mark.
        k.leading(&formed());
        k.not_leading();
        assert_eq!(k.trim_to(TRIM_AFTER_ENTRIES * 2 - 1), None);
    }

    /// Both read regions in every state, acknowledged or not: the floor is
    /// the lowest acknowledgement of the online ones (0 if one has none),
    /// or the write region's applied LSN when none is online.
    #[test]
    fn the_trim_floor_counts_online_read_regions_only() {
        let acks = [None, Some(300u64), Some(700)];
        for east in STATES {
            for north in STATES {
                for east_ack in acks {
                    for north_ack in acks {
                        let mut meta = formed();
                        set_state(&mut meta, "east", east);
                        set_state(&mut meta, "north", north);
                        let acked = |region: &RegionId| match region.as_str() {
                            "east" => east_ack,
                            "north" => north_ack,
                            _ => Some(5),
                        };
                        let mut counted = Vec::new();
                        if east == RegionState::Online {
                            counted.push(east_ack.unwrap_or(0));
                        }
                        if north == RegionState::Online {
                            counted.push(north_ack.unwrap_or(0));
                        }
                        let expected = counted.into_iter().min().unwrap_or(1000);
                        assert_eq!(
                            trim_floor(&meta, acked, 1000),
                            expected,
                            "east {east:?}/{east_ack:?}, north {north:?}/{north_ack:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_region_joining_while_the_floor_moves_does_not_hold_the_trim_back() {
        let mut k = StrongSetKeeper::default();
        let mut meta = formed();
        set_state(&mut meta, "north", RegionState::Offline);
        // East is online at 12 000; north comes back and joins having
        // acknowledged nothing.
        let acked = |region: &RegionId| (region.as_str() == "east").then_some(12_000);
        set_state(&mut meta, "north", RegionState::Joining);
        k.leading(&meta);
        let point = k.join_point(&r("north"), g(12_500));
        let floor = trim_floor(&meta, acked, 12_500);
        assert_eq!(floor, 12_000, "the joining region is not counted");
        assert_eq!(k.trim_to(floor), Some(12_000));
        k.trimmed(floor);
        // Once online it is counted, and the floor drops back to it.
        set_state(&mut meta, "north", RegionState::Online);
        k.leading(&meta);
        assert_eq!(trim_floor(&meta, acked, 12_500), 0);
        assert_eq!(k.trim_to(0), None, "a trim never goes back");
        assert_eq!(point, g(12_500));
    }

    #[test]
    fn a_strong_write_waits_for_online_and_joining_read_regions_that_lack_it() {
        for east in STATES {
            for north in STATES {
                for east_ack in [None, Some(g(4)), Some(g(5)), Some(g(6))] {
                    let mut meta = formed();
                    set_state(&mut meta, "east", east);
                    set_state(&mut meta, "north", north);
                    let acked = |region: &RegionId| match region.as_str() {
                        "east" => east_ack,
                        _ => Some(g(100)),
                    };
                    let missing = not_yet_acked(&meta, acked, g(5));
                    let east_missing = east.in_ack_wait() && east_ack.is_none_or(|a| a < g(5));
                    assert_eq!(
                        missing,
                        if east_missing {
                            vec![r("east")]
                        } else {
                            vec![]
                        },
                        "east {east:?}/{east_ack:?}, north {north:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn strong_writes_are_refused_without_a_majority_online() {
        for east in STATES {
            for north in STATES {
                let mut meta = formed();
                set_state(&mut meta, "east", east);
                set_state(&mut meta, "north", north);
                let online = 1 + [east, north]
                    .iter()
                    .filter(|s| **s == RegionState::Online)
                    .count();
                match check_strong_set(&meta) {
                    Ok(()) => assert!(online >= 2, "east {east:?}, north {north:?}"),
                    Err(Error::Unavailable { region, reason }) => {
                        assert!(online < 2, "east {east:?}, north {north:?}");
                        assert_eq!(region, Some(r("west")));
                        assert!(reason.contains("majority of the 3 regions"), "{reason}");
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
        }
    }
}
