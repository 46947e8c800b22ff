//! Lease arithmetic (DESIGN.md "The meta group and failover"), pure so the
//! safety argument is a unit test rather than a hope.
//!
//! A lease is granted by committing a renewal in the meta group. The two
//! sides count it from different moments:
//!
//! - the holder counts from when it *sent* the renewal, and stops using the
//!   lease `safety_margin` before `ttl` has passed;
//! - the meta group counts from when it *committed* the renewal, which is
//!   later than the send, and treats the lease as held for the whole `ttl`.
//!
//! So the holder stops first whenever the two clocks' rates differ by less
//! than `safety_margin / ttl`; the meta group never takes a region out (or
//! hands its write role away) while the region still believes it holds the
//! lease.

use std::time::Duration;

use crate::clock::Instant;
use crate::meta::RegionState;

/// The settings both sides use; validated by `config` (renew + margin <
/// ttl).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTerms {
    pub ttl: Duration,
    pub renew_every: Duration,
    pub safety_margin: Duration,
}

impl LeaseTerms {
    pub fn from_config(c: &crate::config::LeaseConfig) -> Self {
        Self {
            ttl: Duration::from_millis(c.ttl_ms),
            renew_every: Duration::from_millis(c.renew_ms),
            safety_margin: Duration::from_millis(c.safety_margin_ms),
        }
    }

    /// Until when the holder may use a lease whose renewal it sent at
    /// `sent_at` (its own clock).
    pub fn holder_valid_until(&self, sent_at: Instant) -> Instant {
        sent_at + self.ttl.saturating_sub(self.safety_margin)
    }

    /// Until when the meta group considers a lease held whose renewal it
    /// committed at `committed_at` (its own clock).
    pub fn meta_expires_at(&self, committed_at: Instant) -> Instant {
        committed_at + self.ttl
    }

    /// How much longer the holder may use the lease at `now`.
    pub fn holder_remaining(&self, sent_at: Instant, now: Instant) -> Duration {
        self.holder_valid_until(sent_at)
            .saturating_duration_since(now)
    }
}

/// The region leader's own view of its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    pub valid_until: Instant,
    /// The region's state when the renewal committed.
    pub state: RegionState,
    /// The region is the write region being fenced by a transition: it
    /// takes no writes.
    pub fenced: bool,
    /// Granted by every other region's leader, not the meta group
    /// (failsafe mode).
    pub failsafe: bool,
}

impl HeldLease {
    /// The lease may still be used at `now`: it ends at `valid_until`
    /// exactly, not after.
    pub fn usable_at(&self, now: Instant) -> bool {
        self.valid_until > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_is_unusable_from_the_instant_it_ends() {
        let end = Instant::now() + Duration::from_secs(1);
        let held = HeldLease {
            valid_until: end,
            state: RegionState::Online,
            fenced: false,
            failsafe: false,
        };
        assert!(held.usable_at(end - Duration::from_nanos(1)));
        assert!(!held.usable_at(end), "exactly at its end");
        assert!(!held.usable_at(end + Duration::from_millis(1)));
    }

    fn terms() -> LeaseTerms {
        LeaseTerms {
            ttl: Duration::from_millis(3000),
            renew_every: Duration::from_millis(500),
            safety_margin: Duration::from_millis(500),
        }
    }

    #[test]
    fn the_holder_stops_before_the_meta_group_lets_go() {
        let t = terms();
        let base = Instant::now();
        // Whatever the delay between sending and committing (0 to 2 s), and
        // a clock-rate difference within the margin's share of the ttl
        // (here: the holder's clock running 10% slow), the holder's end is
        // strictly before the meta group's end in real time.
        for commit_delay_ms in [0u64, 1, 50, 700, 2000] {
            let sent = base;
            let committed = sent + Duration::from_millis(commit_delay_ms);
            let holder_span = t.holder_valid_until(sent) - sent;
            // A slow holder clock stretches its span in real time.
            let holder_end_real = sent + holder_span.mul_f64(1.10);
            let meta_end_real = t.meta_expires_at(committed);
            assert!(
                holder_end_real < meta_end_real,
                "commit delay {commit_delay_ms} ms: holder ends {:?} after the meta group",
                holder_end_real - meta_end_real
            );
        }
    }

    #[test]
    fn remaining_time_counts_down_to_zero_and_stays_there() {
        let t = terms();
        let sent = Instant::now();
        assert_eq!(t.holder_remaining(sent, sent), Duration::from_millis(2500));
        assert_eq!(
            t.holder_remaining(sent, sent + Duration::from_millis(2000)),
            Duration::from_millis(500)
        );
        assert_eq!(
            t.holder_remaining(sent, sent + Duration::from_secs(10)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_margin_larger_than_the_ttl_gives_no_lease_at_all() {
        let t = LeaseTerms {
            safety_margin: Duration::from_secs(5),
            ..terms()
        };
        let sent = Instant::now();
        assert_eq!(t.holder_valid_until(sent), sent);
    }
}
