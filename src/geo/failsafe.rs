//! Failsafe mode's rules (Patroni's `failsafe_mode`), pure: the promises
//! a region leader gives the write region, when a region that promised may
//! take over writes, when the write region's leader asks for a failsafe
//! lease, and what a confirmation grants. The runtime, and the argument
//! why this never makes two write regions, are in
//! `node::regions::failsafe`.

use std::time::Duration;

use crate::clock::Instant;
use crate::lease::{HeldLease, LeaseTerms};
use crate::meta::RegionState;

/// What a region leader promised, and since when it leads. Pure.
#[derive(Debug, Default)]
pub struct Promises {
    /// No take-over before this: a failsafe lease granted on our word may
    /// run until then.
    promised_until: Option<Instant>,
    /// The raft term this node was first seen leading in, and when.
    led_since: Option<(u64, Instant)>,
}

impl Promises {
    /// Notes that this node leads in `term` at `now`; the first sighting of
    /// a term counts.
    pub fn note_leader(&mut self, term: u64, now: Instant) {
        if self.led_since.is_none_or(|(t, _)| t != term) {
            self.led_since = Some((term, now));
        }
    }

    /// Promises not to take over writes for `ttl` from `now`.
    pub fn promise(&mut self, now: Instant, ttl: Duration) {
        let until = now + ttl;
        self.promised_until = Some(self.promised_until.map_or(until, |u| u.max(until)));
    }

    /// When a region leading in `term` may take over writes: after its own
    /// promises, and a `ttl` after it began leading (an earlier leader of
    /// the region may have promised until then). Counting `term` as begun
    /// `now` when it was not seen before errs on the late side.
    pub fn take_over_after(&mut self, term: u64, now: Instant, ttl: Duration) -> Instant {
        self.note_leader(term, now);
        let (_, since) = self.led_since.expect("noted above");
        self.promised_until
            .map_or(since + ttl, |u| u.max(since + ttl))
    }
}

/// What the write region's leader does on a renewal tick in failsafe mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailsafeTick {
    /// Its lease is fenced: a transition is under way, nothing to ask.
    Fenced,
    /// A renewal landed within the last two intervals: the meta group
    /// answers, and its word is the one that counts.
    MetaRenews,
    /// Ask every other region's leader to confirm.
    Confirm,
}

/// The failsafe decision at `now` for the lease the leader last `held`
/// (valid or not): a lease granted by the meta group with more than
/// `ttl - margin - 2 * renew_every` left is fresh; a failsafe lease is
/// always extended while every region confirms.
pub fn failsafe_tick(held: Option<HeldLease>, now: Instant, terms: &LeaseTerms) -> FailsafeTick {
    if held.is_some_and(|h| h.fenced) {
        return FailsafeTick::Fenced;
    }
    let fresh_after = terms
        .ttl
        .saturating_sub(terms.safety_margin + terms.renew_every * 2);
    let remaining = held.map(|h| h.valid_until.saturating_duration_since(now));
    if remaining.is_some_and(|r| r > fresh_after) && !held.is_some_and(|h| h.failsafe) {
        FailsafeTick::MetaRenews
    } else {
        FailsafeTick::Confirm
    }
}

/// The lease every region's confirmation of a request sent at `sent_at`
/// grants, given the `current` one: `None` when it would not extend it (a
/// fenced lease stays fenced, and a lease never gets shorter).
pub fn failsafe_extension(
    current: Option<HeldLease>,
    sent_at: Instant,
    terms: &LeaseTerms,
) -> Option<HeldLease> {
    let until = terms.holder_valid_until(sent_at);
    match current {
        Some(current) if current.fenced || current.valid_until >= until => None,
        _ => Some(HeldLease {
            valid_until: until,
            state: RegionState::Online,
            fenced: false,
            failsafe: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    #[test]
    fn a_new_leader_waits_a_ttl_from_when_it_began_leading() {
        let t0 = Instant::now();
        let mut p = Promises::default();
        p.note_leader(4, t0);
        // Seen again later in the same term: still counted from t0.
        p.note_leader(4, t0 + Duration::from_secs(10));
        assert_eq!(
            p.take_over_after(4, t0 + Duration::from_secs(20), TTL),
            t0 + TTL
        );
        // A term never seen before counts from now: the late side.
        let now = t0 + Duration::from_secs(30);
        assert_eq!(p.take_over_after(5, now, TTL), now + TTL);
    }

    #[test]
    fn a_take_over_waits_for_the_latest_promise() {
        let t0 = Instant::now();
        let mut p = Promises::default();
        p.note_leader(1, t0);
        p.promise(t0 + Duration::from_secs(5), TTL);
        p.promise(t0 + Duration::from_secs(4), TTL);
        assert_eq!(
            p.take_over_after(1, t0 + Duration::from_secs(6), TTL),
            t0 + Duration::from_secs(8),
            "an earlier promise never shortens a later one"
        );
        // Long-led and nothing promised lately: no wait.
        let late = t0 + Duration::from_secs(60);
        assert!(p.take_over_after(1, late, TTL) < late);
    }

    fn terms() -> LeaseTerms {
        LeaseTerms {
            ttl: TTL,
            renew_every: Duration::from_millis(500),
            safety_margin: Duration::from_millis(500),
        }
    }

    fn lease(valid_until: Instant, fenced: bool, failsafe: bool) -> HeldLease {
        HeldLease {
            valid_until,
            state: RegionState::Online,
            fenced,
            failsafe,
        }
    }

    /// Every kind of held lease at every remaining time around the
    /// freshness bound (ttl 3 s - margin 0.5 s - 2 renewals 1 s = 1.5 s).
    #[test]
    fn the_write_leader_asks_the_regions_only_when_the_meta_group_went_quiet() {
        let now = Instant::now();
        let bound = Duration::from_millis(1500);
        let remainings = [
            None,
            Some(Duration::ZERO),
            Some(bound - Duration::from_millis(1)),
            Some(bound),
            Some(bound + Duration::from_millis(1)),
            Some(Duration::from_millis(2500)),
        ];
        for remaining in remainings {
            for fenced in [false, true] {
                for failsafe in [false, true] {
                    let held = remaining.map(|r| lease(now + r, fenced, failsafe));
                    let want = if held.is_some() && fenced {
                        FailsafeTick::Fenced
                    } else if remaining.is_some_and(|r| r > bound) && !failsafe {
                        FailsafeTick::MetaRenews
                    } else {
                        FailsafeTick::Confirm
                    };
                    assert_eq!(
                        failsafe_tick(held, now, &terms()),
                        want,
                        "{remaining:?} fenced={fenced} failsafe={failsafe}"
                    );
                }
            }
        }
        // An expired lease counts as none left.
        let expired = lease(now - Duration::from_secs(1), false, false);
        assert_eq!(
            failsafe_tick(Some(expired), now, &terms()),
            FailsafeTick::Confirm
        );
    }

    #[test]
    fn a_confirmation_extends_an_unfenced_lease_and_never_shortens_one() {
        let sent_at = Instant::now();
        let until = terms().holder_valid_until(sent_at);
        let granted = failsafe_extension(None, sent_at, &terms()).expect("no lease: granted");
        assert_eq!(granted, lease(until, false, true));
        for fenced in [false, true] {
            for failsafe in [false, true] {
                for offset_ms in [-1i64, 0, 1] {
                    let valid_until = if offset_ms < 0 {
                        until - Duration::from_millis(1)
                    } else {
                        until + Duration::from_millis(offset_ms as u64)
                    };
                    let current = lease(valid_until, fenced, failsafe);
                    let got = failsafe_extension(Some(current), sent_at, &terms());
                    let want =
                        (!fenced && valid_until < until).then_some(lease(until, false, true));
                    assert_eq!(
                        got, want,
                        "fenced={fenced} failsafe={failsafe} {offset_ms} ms"
                    );
                }
            }
        }
    }

    #[test]
    fn the_holder_stops_before_any_promise_ends() {
        // The write region counts from when it sent, minus the safety
        // margin; the promise from after it was received.
        let terms = terms();
        let sent_at = Instant::now();
        for delay_ms in [0, 1, 40, 400, 5000] {
            let mut p = Promises::default();
            p.note_leader(1, sent_at - Duration::from_secs(100));
            let received = sent_at + Duration::from_millis(delay_ms);
            p.promise(received, TTL);
            let holder_until = terms.holder_valid_until(sent_at);
            assert!(holder_until < p.take_over_after(1, received, TTL));
        }
    }
}
