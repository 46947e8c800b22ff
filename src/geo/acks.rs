//! The write region leader's view of its read regions: the GLSN each has
//! acknowledged (durably applied) and when, and the replication lag that
//! follows, in operations and milliseconds. Strong writes wait on it and
//! bounded staleness throttles on it.

use crate::clock::Instant;
use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::glsn::Glsn;
use crate::ids::RegionId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub glsn: Glsn,
    pub at: Instant,
}

/// How far a region trails the write region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lag {
    pub ops: u64,
    pub ms: u64,
}

/// The lag of a region that acknowledged `acked` while the write region
/// has applied `head`. `oldest_missing_ms` is the wall-clock time (ms) at
/// which the first write the region lacks was made; lag in ms is its age.
/// Pure, for the tests.
pub fn lag(head: Glsn, acked: Glsn, oldest_missing_ms: Option<u64>, now_ms: u64) -> Lag {
    if acked.lsn >= head.lsn {
        return Lag::default();
    }
    Lag {
        ops: head.lsn - acked.lsn,
        ms: oldest_missing_ms.map_or(0, |t| now_ms.saturating_sub(t)),
    }
}

/// Acknowledgements received by this node (meaningful on the write region
/// leader). Waiters watch `changes`.
#[derive(Debug)]
pub struct AckTable {
    /// A std lock: held only to read or update the map.
    acks: Mutex<HashMap<RegionId, Ack>>,
    changes: watch::Sender<u64>,
}

impl Default for AckTable {
    fn default() -> Self {
        Self {
            acks: Mutex::new(HashMap::new()),
            changes: watch::channel(0).0,
        }
    }
}

impl AckTable {
    /// Records an acknowledgement; never moves a region's GLSN back.
    pub fn record(&self, region: &RegionId, glsn: Glsn) {
        let mut acks = self.acks.lock().unwrap_or_else(|p| p.into_inner());
        let ack = acks.entry(region.clone()).or_insert(Ack {
            glsn,
            at: Instant::now(),
        });
        if glsn >= ack.glsn {
            *ack = Ack {
                glsn,
                at: Instant::now(),
            };
        }
        drop(acks);
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn get(&self, region: &RegionId) -> Option<Ack> {
        self.acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(region)
            .copied()
    }

    /// Forgets every acknowledgement (this node stopped leading the write
    /// region; a later leadership starts from fresh reports).
    pub fn clear(&self) {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_missing_writes_and_the_age_of_the_oldest() {
        let head = Glsn::new(1, 100);
        assert_eq!(lag(head, Glsn::new(1, 100), Some(5), 1000), Lag::default());
        assert_eq!(lag(head, Glsn::new(1, 120), None, 1000), Lag::default());
        assert_eq!(
            lag(head, Glsn::new(1, 90), Some(700), 1000),
            Lag { ops: 10, ms: 300 }
        );
        // A clock that reads earlier than the write's stamp is no lag, not
        // an underflow.
        assert_eq!(lag(head, Glsn::new(1, 99), Some(2000), 1000).ms, 0);
    }

    #[test]
    fn an_acknowledgement_never_moves_back() {
        let table = AckTable::default();
        let west = RegionId::new("east");
        table.record(&west, Glsn::new(1, 10));
        table.record(&west, Glsn::new(1, 7));
        assert_eq!(table.get(&west).unwrap().glsn, Glsn::new(1, 10));
        table.clear();
        assert_eq!(table.get(&west), None);
    }
}
