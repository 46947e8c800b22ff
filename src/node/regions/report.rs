//! A node's report of its region for status (`meridian status`, and the
//! region taking over writes asking who holds the most): its leader, what
//! it applied, its lease, and at the write region leader every read
//! region's lag.

use crate::clock::Instant;
use crate::node::messages::RegionReport;
use crate::node::regions::handle::Geo;

impl Geo {
    /// This node's report of its region (meaningful at the region leader).
    pub fn report(&self) -> Option<RegionReport> {
        let replica = self.replica()?;
        let lags = if self.is_write_leader() {
            let meta = self.meta_state();
            meta.regions
                .keys()
                .filter(|r| !meta.is_write_region(r))
                .map(|r| (r.clone(), self.lag_of(r)))
                .collect()
        } else {
            Vec::new()
        };
        Some(RegionReport {
            region: replica.region().clone(),
            leader: replica.leader(),
            applied: replica.applied().glsn,
            lease_remaining_ms: self.held_lease().map(|h| {
                h.valid_until
                    .saturating_duration_since(Instant::now())
                    .as_millis() as u64
            }),
            failsafe: self.held_lease().is_some_and(|h| h.failsafe),
            lags,
        })
    }
}
