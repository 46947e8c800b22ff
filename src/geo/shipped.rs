//! What a read region's state machine does with each shipped geo log
//! entry, pure (`StateMachine::apply_shipped` carries it out): entries
//! apply in LSN order, one after another, never in an epoch older than
//! what the region applied or began writing in.

use crate::glsn::Glsn;

/// The fate of the next shipped entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipStep {
    /// At or below the applied LSN, of this epoch or an older one: already
    /// applied (a stream resent it); skip it and look at the next.
    Duplicate,
    /// At or below the applied LSN but of a newer epoch: the region holds
    /// writes past a fork and must re-join; drop the rest of the batch.
    Diverged,
    /// Not the next LSN: drop the rest of the batch (the stream restarts
    /// from the applied LSN).
    Gap,
    /// The next LSN, but of an epoch older than what the region applied or
    /// began writing in (a deposed write region still shipping): drop the
    /// rest of the batch.
    OlderEpoch,
    /// The next entry: apply it.
    Apply,
}

/// The step for `next` in a region that applied up to `applied` and began
/// writing in `write_epoch` (0 if it never did).
pub fn ship_step(applied: Glsn, write_epoch: u64, next: Glsn) -> ShipStep {
    if next.lsn <= applied.lsn {
        if next.epoch > applied.epoch {
            ShipStep::Diverged
        } else {
            ShipStep::Duplicate
        }
    } else if next.lsn != applied.lsn + 1 {
        ShipStep::Gap
    } else if next.epoch < applied.epoch.max(write_epoch) {
        ShipStep::OlderEpoch
    } else {
        ShipStep::Apply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every LSN from two below the applied one to two above, every epoch
    /// from one below the applied one to one above, and a write epoch
    /// below, at and above it.
    #[test]
    fn each_shipped_entry_is_skipped_applied_or_stops_the_batch() {
        let applied = Glsn::new(5, 100);
        for lsn in 98..=102u64 {
            for epoch in 4..=6u64 {
                for write_epoch in [0u64, 5, 6] {
                    let next = Glsn::new(epoch, lsn);
                    let want = if lsn <= 100 && epoch > 5 {
                        ShipStep::Diverged
                    } else if lsn <= 100 {
                        ShipStep::Duplicate
                    } else if lsn == 102 {
                        ShipStep::Gap
                    } else if epoch < 5.max(write_epoch) {
                        ShipStep::OlderEpoch
                    } else {
                        ShipStep::Apply
                    };
                    assert_eq!(
                        ship_step(applied, write_epoch, next),
                        want,
                        "{next} after {applied}, write epoch {write_epoch}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_entry_of_an_older_epoch_at_an_applied_lsn_is_a_duplicate() {
        let applied = Glsn::new(5, 100);
        assert_eq!(
            ship_step(applied, 5, Glsn::new(4, 100)),
            ShipStep::Duplicate
        );
        assert_eq!(ship_step(applied, 5, Glsn::new(4, 37)), ShipStep::Duplicate);
        // The same LSN in a newer epoch: this region went past the fork.
        assert_eq!(ship_step(applied, 5, Glsn::new(6, 100)), ShipStep::Diverged);
    }

    #[test]
    fn a_region_that_began_writing_takes_nothing_older_than_its_epoch() {
        // It applied 5:100 and began epoch 7 as the write region; the old
        // write region still ships epoch 5 and 6.
        let applied = Glsn::new(5, 100);
        assert_eq!(
            ship_step(applied, 7, Glsn::new(6, 101)),
            ShipStep::OlderEpoch
        );
        assert_eq!(ship_step(applied, 7, Glsn::new(7, 101)), ShipStep::Apply);
        assert_eq!(ship_step(Glsn::ZERO, 0, Glsn::new(1, 1)), ShipStep::Apply);
    }
}
