//! How fresh a read region is, proven by its acknowledgement round trips:
//! what makes bounded staleness's T hold in the region that serves the
//! read (DESIGN.md "Consistency levels").
//!
//! A read region's leader acknowledges what it applied to the write
//! region's leader, which answers with its head: its applied GLSN after a
//! read index, so every write acknowledged to a client before the answer
//! is at or below it. The acknowledgement was *sent* before the answer was
//! made, so once the region has applied that head it holds every write
//! acknowledged before the send: it is fresh as of the send. The region
//! serves reads that must be within T only until T after that moment.
//!
//! Without it, a read lease alone let a region serve bounded reads staler
//! than T: cut off from every region, for as long as its lease ran on
//! (ttl - safety margin after its last renewal); cut off from the write
//! region only, for as long as it could still renew. Throttling stops new
//! writes then, but the region keeps missing the ones already
//! acknowledged.
//!
//! Like the lease, freshness is counted from a send on the region's own
//! monotonic clock: it needs no agreement between the regions' clocks.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Instant;

use crate::glsn::Glsn;
use crate::lease::HeldLease;
use crate::meta::RegionState;

/// Answers waiting for the region to apply their head, at most: when full
/// the oldest is dropped, which only forgoes a proof older than the rest.
const PENDING_MAX: usize = 64;

#[derive(Debug, Default)]
pub struct Freshness {
    /// (sent_at, head) of answers whose head is not applied yet, in the
    /// order the acknowledgements were sent.
    pending: VecDeque<(Instant, Glsn)>,
    /// The region holds every write acknowledged before this moment.
    fresh_as_of: Option<Instant>,
}

impl Freshness {
    /// The acknowledgement sent at `sent_at` was answered with the write
    /// region's `head`; the region has applied `applied` by now.
    pub fn answered(&mut self, sent_at: Instant, head: Glsn, applied: Glsn) {
        if self.pending.len() == PENDING_MAX {
            self.pending.pop_front();
        }
        self.pending.push_back((sent_at, head));
        self.applied(applied);
    }

    /// The region has applied up to `applied`.
    pub fn applied(&mut self, applied: Glsn) {
        while let Some(&(sent_at, head)) = self.pending.front() {
            if head > applied {
                break;
            }
            self.fresh_as_of = self.fresh_as_of.max(Some(sent_at));
            self.pending.pop_front();
        }
    }

    /// Until when the region may serve reads that must miss no write
    /// acknowledged more than `t` before them; `None`: not at all.
    pub fn valid_until(&self, t: Duration) -> Option<Instant> {
        self.fresh_as_of.map(|at| at + t)
    }
}

/// The read lease a region leader publishes for its replica (checked
/// before a read index): the lease it `held` (valid or not: the replica
/// compares the instant) while its region is online, and in a read region
/// no later than the end of its freshness (`fresh_until`, `None`: never
/// proven fresh, so no read lease at all).
pub fn read_lease_until(
    held: Option<HeldLease>,
    in_write_region: bool,
    fresh_until: Option<Instant>,
) -> Option<Instant> {
    let lease = held
        .filter(|h| h.state == RegionState::Online)
        .map(|h| h.valid_until);
    if in_write_region {
        lease
    } else {
        // `None` orders first: a region without proof gets no lease.
        lease.min(fresh_until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every region state and lease kind, with freshness before, at and
    /// after the lease's end or missing, in the write region and a read
    /// region.
    #[test]
    fn the_read_lease_is_the_online_lease_capped_by_freshness_in_a_read_region() {
        let end = Instant::now() + Duration::from_secs(2);
        let states = [
            RegionState::Online,
            RegionState::Joining,
            RegionState::Offline,
        ];
        let freshness = [
            None,
            Some(end - Duration::from_millis(1)),
            Some(end),
            Some(end + Duration::from_millis(1)),
        ];
        for state in states {
            for fenced in [false, true] {
                for failsafe in [false, true] {
                    let held = HeldLease {
                        valid_until: end,
                        state,
                        fenced,
                        failsafe,
                    };
                    for fresh in freshness {
                        let lease = (state == RegionState::Online).then_some(end);
                        assert_eq!(read_lease_until(Some(held), true, fresh), lease);
                        let capped = match (lease, fresh) {
                            (Some(l), Some(f)) => Some(l.min(f)),
                            _ => None,
                        };
                        assert_eq!(
                            read_lease_until(Some(held), false, fresh),
                            capped,
                            "{state:?} fenced={fenced} failsafe={failsafe} {fresh:?}"
                        );
                    }
                }
            }
        }
        for fresh in freshness {
            assert_eq!(read_lease_until(None, true, fresh), None);
            assert_eq!(read_lease_until(None, false, fresh), None);
        }
    }

    const T: Duration = Duration::from_millis(1000);

    fn g(lsn: u64) -> Glsn {
        Glsn::new(1, lsn)
    }

    #[test]
    fn fresh_as_of_the_send_once_the_head_is_applied() {
        let base = Instant::now();
        let mut f = Freshness::default();
        assert_eq!(f.valid_until(T), None, "no proof yet");
        // Sent at +0, answered with head 10 while the region had 8.
        f.answered(base, g(10), g(8));
        assert_eq!(f.valid_until(T), None, "head not applied yet");
        f.applied(g(10));
        assert_eq!(f.valid_until(T), Some(base + T));
    }

    #[test]
    fn a_region_that_stops_hearing_answers_runs_out_after_t() {
        let base = Instant::now();
        let mut f = Freshness::default();
        f.answered(base, g(5), g(5));
        // Later answers whose heads never arrive prove nothing: the region
        // stays fresh as of the last answer it caught up with.
        f.answered(base + Duration::from_millis(200), g(9), g(5));
        f.answered(base + Duration::from_millis(400), g(12), g(5));
        f.applied(g(9));
        assert_eq!(
            f.valid_until(T),
            Some(base + Duration::from_millis(200) + T)
        );
        f.applied(g(20));
        assert_eq!(
            f.valid_until(T),
            Some(base + Duration::from_millis(400) + T)
        );
    }

    #[test]
    fn a_full_queue_drops_the_oldest_proof_only() {
        let base = Instant::now();
        let mut f = Freshness::default();
        for i in 0..(PENDING_MAX as u64 + 10) {
            f.answered(base + Duration::from_millis(i), g(100 + i), g(0));
        }
        assert_eq!(f.pending.len(), PENDING_MAX);
        f.applied(g(1000));
        let newest = base + Duration::from_millis(PENDING_MAX as u64 + 9);
        assert_eq!(f.valid_until(T), Some(newest + T));
    }
}
