//! A hybrid logical clock: physical milliseconds in the high 48 bits and a
//! logical counter in the low 16, so timestamps from one node never go
//! backwards and stay close to wall time.
//!
//! Each node's clock also is the node's wall clock ([`Hlc::wall_ms`]): the
//! host's, shifted by an offset that only fault injection sets, so the
//! nemesis can skew one node's clock among others in the same process.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const LOGICAL_BITS: u32 = 16;

#[derive(Debug, Default)]
pub struct Hlc {
    last: AtomicU64,
    /// Milliseconds added to the host's clock (fault injection only).
    offset_ms: AtomicI64,
}

/// The timestamp after `last` given the physical clock reading: pure, so the
/// clock-going-backwards cases are tested without a clock.
pub fn tick(last: u64, physical_ms: u64) -> u64 {
    let physical = physical_ms << LOGICAL_BITS;
    physical.max(last + 1)
}

pub fn physical_ms(ts: u64) -> u64 {
    ts >> LOGICAL_BITS
}

/// The wall clock in milliseconds since the Unix epoch (0 before it),
/// through the clock seam.
pub fn wall_ms() -> u64 {
    crate::clock::wall_ms()
}

/// `ms` shifted by `offset_ms`, clamped to the representable range.
pub fn shifted(ms: u64, offset_ms: i64) -> u64 {
    ms.saturating_add_signed(offset_ms)
}

impl Hlc {
    /// This node's wall clock in milliseconds since the Unix epoch.
    pub fn wall_ms(&self) -> u64 {
        shifted(wall_ms(), self.offset_ms.load(Ordering::Relaxed))
    }

    /// Skews this node's wall clock by `offset_ms` from the host's (0
    /// undoes it). Timestamps still never go backwards.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    pub fn now(&self) -> u64 {
        let wall_ms = self.wall_ms();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = tick(last, wall_ms);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Moves the clock past a timestamp seen from another node.
    pub fn observe(&self, ts: u64) {
        self.last.fetch_max(ts, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let a = tick(0, 1_000);
        assert_eq!(physical_ms(a), 1_000);
        // The wall clock stepped back: the logical part carries on.
        let b = tick(a, 900);
        assert_eq!(b, a + 1);
        let c = tick(b, 2_000);
        assert!(c > b);
        assert_eq!(physical_ms(c), 2_000);
    }

    #[test]
    fn an_offset_shifts_the_wall_clock_and_timestamps_never_go_back() {
        let clock = Hlc::default();
        let before = clock.now();
        clock.set_offset_ms(60_000);
        let ahead = clock.now();
        assert!(physical_ms(ahead) >= physical_ms(before) + 59_000);
        assert!(clock.wall_ms() >= wall_ms() + 59_000);
        // Set back: the wall clock returns, the timestamps carry on.
        clock.set_offset_ms(-60_000);
        assert!(clock.wall_ms() + 59_000 <= wall_ms());
        assert!(clock.now() > ahead);
        assert_eq!(shifted(5, -10), 0);
        assert_eq!(shifted(u64::MAX - 1, 10), u64::MAX);
    }

    #[test]
    fn observe_moves_past_remote_time() {
        let clock = Hlc::default();
        let far = tick(0, u64::MAX >> 20);
        clock.observe(far);
        assert!(clock.now() > far);
    }
}
