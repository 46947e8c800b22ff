//! Bounded staleness at the write region leader: each read region's lag
//! behind its applied state (`lag_of`), and the throttle that refuses a
//! write while an online read region lags more than K operations or T ms
//! (`check_staleness`, the rule in `geo::staleness`).

use crate::codec::decode;
use crate::error::Error;
use crate::geo::acks::{Lag, lag};
use crate::geo::entry::GeoEntry;
use crate::geo::staleness::{first_over_bounds, known_applied};
use crate::hlc;
use crate::ids::RegionId;
use crate::node::regions::handle::Geo;

impl Geo {
    /// A read region's lag behind this (write leader) node's applied state.
    pub fn lag_of(&self, region: &RegionId) -> Lag {
        let Some(replica) = self.replica() else {
            return Lag::default();
        };
        let head = replica.applied().glsn;
        let renewed = self.meta_state().regions.get(region).map(|m| m.applied);
        let acked = self.inner.strong.acks.get(region).map(|a| a.glsn);
        let acked = known_applied(acked, renewed);
        let oldest_missing_ms = replica
            .state()
            .geo_read(acked.lsn + 1, 1, 1)
            .ok()
            .and_then(|page| page.into_iter().next())
            .filter(|(lsn, _)| *lsn == acked.lsn + 1)
            .and_then(|(_, bytes)| decode::<GeoEntry>("geo entry", &bytes).ok())
            .map(|e| hlc::physical_ms(e.ts));
        let now_ms = self.inner.clock.wall_ms();
        lag(head, acked, oldest_missing_ms, now_ms)
    }

    /// Bounded staleness: refuses a write while an online region lags more
    /// than K operations or T ms.
    pub fn check_staleness(&self) -> Result<(), Error> {
        let meta = self.meta_state();
        let bounds = self.bounds();
        match first_over_bounds(&meta, bounds, |region| self.lag_of(region)) {
            None => Ok(()),
            Some((region, lag)) => Err(Error::Throttled {
                region,
                lag_ops: lag.ops,
                lag_ms: lag.ms,
                max_ops: bounds.max_ops,
                max_ms: bounds.max_ms,
                retry_after_ms: bounds.retry_after_ms(),
            }),
        }
    }
}
