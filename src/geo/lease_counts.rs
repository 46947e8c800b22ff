//! The meta leader's count of every region's lease, pure: when each ends,
//! counted from the commit of its last renewal (`LeaseTerms::
//! meta_expires_at`), and which regions that makes expired. The meta
//! leader's runtime (`node::regions::supervision`) takes expired read
//! regions out of the strong set and starts a failover when the write
//! region's lease has expired.
//!
//! A new meta leader cannot know when the renewals its predecessor
//! committed were made: it counts every lease as renewed when it took
//! over. That only delays taking a region out; it never shortens a lease a
//! holder still counts on.

use std::collections::HashMap;

use crate::clock::Instant;
use crate::ids::RegionId;
use crate::lease::LeaseTerms;
use crate::meta::{MetaState, RegionState};

#[derive(Debug, Default)]
pub struct LeaseCounts {
    /// When each region's lease ends.
    expiries: HashMap<RegionId, Instant>,
}

impl LeaseCounts {
    /// This node became the meta leader at `now`: every region's lease is
    /// counted as renewed then.
    pub fn restart<'a>(
        &mut self,
        regions: impl IntoIterator<Item = &'a RegionId>,
        now: Instant,
        terms: &LeaseTerms,
    ) {
        self.expiries.clear();
        for region in regions {
            self.expiries
                .insert(region.clone(), terms.meta_expires_at(now));
        }
    }

    /// A renewal of `region`'s lease committed at `committed_at`.
    pub fn renewed(&mut self, region: RegionId, committed_at: Instant, terms: &LeaseTerms) {
        self.expiries
            .insert(region, terms.meta_expires_at(committed_at));
    }

    /// The read regions strong writes wait for whose lease has expired at
    /// `now` (at its end exactly counts), with their state: they leave the
    /// strong set. A region not counted yet (the state was formed after
    /// this leader took over) gets a full lease from `now`.
    pub fn expired(
        &mut self,
        meta: &MetaState,
        now: Instant,
        terms: &LeaseTerms,
    ) -> Vec<(RegionId, RegionState)> {
        for region in meta.regions.keys() {
            self.expiries
                .entry(region.clone())
                .or_insert_with(|| terms.meta_expires_at(now));
        }
        meta.regions
            .iter()
            .filter(|(r, m)| !meta.is_write_region(r) && m.state.in_ack_wait())
            .filter(|(r, _)| self.ended(r, now))
            .map(|(r, m)| (r.clone(), m.state))
            .collect()
    }

    /// The write region's lease has expired at `now`.
    pub fn write_expired(&self, meta: &MetaState, now: Instant) -> bool {
        meta.write_region
            .as_ref()
            .is_some_and(|w| self.ended(w, now))
    }

    fn ended(&self, region: &RegionId, now: Instant) -> bool {
        self.expiries.get(region).is_some_and(|e| *e <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::geo::testing::{formed, r, set_state};

    fn terms() -> LeaseTerms {
        LeaseTerms {
            ttl: Duration::from_millis(3000),
            renew_every: Duration::from_millis(500),
            safety_margin: Duration::from_millis(500),
        }
    }

    const TTL: Duration = Duration::from_millis(3000);

    #[test]
    fn a_lease_expires_exactly_at_its_end() {
        let t0 = Instant::now();
        let meta = formed();
        let mut c = LeaseCounts::default();
        c.restart(meta.regions.keys(), t0, &terms());
        let just_before = t0 + TTL - Duration::from_nanos(1);
        assert!(c.expired(&meta, just_before, &terms()).is_empty());
        assert!(!c.write_expired(&meta, just_before));
        let at_end = t0 + TTL;
        assert_eq!(
            c.expired(&meta, at_end, &terms()),
            vec![
                (r("east"), RegionState::Online),
                (r("north"), RegionState::Online)
            ],
            "read regions only, in order"
        );
        assert!(c.write_expired(&meta, at_end));
    }

    #[test]
    fn a_renewal_counts_from_its_commit() {
        let t0 = Instant::now();
        let meta = formed();
        let mut c = LeaseCounts::default();
        c.restart(meta.regions.keys(), t0, &terms());
        c.renewed(r("east"), t0 + Duration::from_secs(2), &terms());
        c.renewed(r("west"), t0 + Duration::from_secs(2), &terms());
        let later = t0 + TTL;
        assert_eq!(
            c.expired(&meta, later, &terms()),
            vec![(r("north"), RegionState::Online)]
        );
        assert!(!c.write_expired(&meta, later));
        assert!(c.write_expired(&meta, t0 + Duration::from_secs(2) + TTL));
    }

    /// A meta leader that took over mid-lease counts every lease from when
    /// it took over, whatever its predecessor counted: later, never
    /// earlier, than the holder stops.
    #[test]
    fn a_new_meta_leader_counts_every_lease_from_its_takeover() {
        let t0 = Instant::now();
        let meta = formed();
        let mut c = LeaseCounts::default();
        c.restart(meta.regions.keys(), t0, &terms());
        // East renewed long ago, as far as the old leader knew.
        let takeover = t0 + Duration::from_secs(10);
        assert_eq!(c.expired(&meta, takeover, &terms()).len(), 2);
        c.restart(meta.regions.keys(), takeover, &terms());
        assert!(c.expired(&meta, takeover + TTL / 2, &terms()).is_empty());
        assert!(!c.write_expired(&meta, takeover + TTL / 2));
        assert_eq!(c.expired(&meta, takeover + TTL, &terms()).len(), 2);
    }

    #[test]
    fn a_region_first_seen_after_the_takeover_gets_a_full_lease() {
        let t0 = Instant::now();
        let meta = formed();
        let mut c = LeaseCounts::default();
        // Leader since before the state was formed: nothing counted.
        c.restart(std::iter::empty(), t0, &terms());
        assert!(!c.write_expired(&meta, t0 + TTL * 5), "not counted yet");
        let seen = t0 + TTL * 5;
        assert!(c.expired(&meta, seen, &terms()).is_empty());
        assert!(!c.write_expired(&meta, seen + TTL - Duration::from_nanos(1)));
        assert!(c.write_expired(&meta, seen + TTL));
    }

    /// Every state of the two read regions at expiry: only those strong
    /// writes wait for (online, joining) are taken out.
    #[test]
    fn only_regions_strong_writes_wait_for_are_taken_out() {
        let states = [
            RegionState::Online,
            RegionState::Joining,
            RegionState::Offline,
        ];
        let t0 = Instant::now();
        for east in states {
            for north in states {
                let mut meta = formed();
                set_state(&mut meta, "east", east);
                set_state(&mut meta, "north", north);
                let mut c = LeaseCounts::default();
                c.restart(meta.regions.keys(), t0, &terms());
                let expected: Vec<(RegionId, RegionState)> = [("east", east), ("north", north)]
                    .into_iter()
                    .filter(|(_, s)| s.in_ack_wait())
                    .map(|(name, s)| (r(name), s))
                    .collect();
                assert_eq!(
                    c.expired(&meta, t0 + TTL, &terms()),
                    expected,
                    "east {east:?}, north {north:?}"
                );
            }
        }
    }
}
