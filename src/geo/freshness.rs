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

#[cfg(test)]
mod tests {
    use super::*;

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
