//! The open-loop schedule of `meridian bench --rate N`: operation `i` is
//! due `i / N` seconds after the start, whether or not earlier operations
//! have finished. Latency is measured from that intended start, so a
//! server that stalls is charged for every operation that had to wait,
//! not just the one in flight (no coordinated omission). Pure, so the
//! arithmetic is tested without a clock.

use std::time::Duration;

/// The most operations per second `--rate` accepts: beyond it the timer
/// resolution, not the server, would decide when operations start.
pub const RATE_MAX: u64 = 1_000_000;
/// An operation that starts later than this after its intended time was
/// late: every client was busy. tokio's timer has millisecond resolution,
/// so a start within a few milliseconds of its slot is on time.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

const NANOS_PER_S: u128 = 1_000_000_000;

/// A fixed rate, in operations per second across all clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate_per_s: u64,
}

impl Schedule {
    /// `rate_per_s` must be between 1 and [`RATE_MAX`]; the command line
    /// refuses anything else.
    pub fn new(rate_per_s: u64) -> Option<Schedule> {
        (1..=RATE_MAX)
            .contains(&rate_per_s)
            .then_some(Schedule { rate_per_s })
    }

    pub fn rate_per_s(self) -> u64 {
        self.rate_per_s
    }

    /// When operation `index` should start, counted from the run's start.
    pub fn intended_start(self, index: u64) -> Duration {
        let nanos = u128::from(index) * NANOS_PER_S / u128::from(self.rate_per_s);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The index of the latest operation due at `elapsed` (operation 0 is
    /// due at once).
    pub fn due_index(self, elapsed: Duration) -> u64 {
        let due = elapsed.as_nanos() * u128::from(self.rate_per_s) / NANOS_PER_S;
        u64::try_from(due).unwrap_or(u64::MAX)
    }

    /// How many operations are due strictly before `duration` ends: the
    /// number a client that kept up would have started.
    pub fn scheduled_within(self, duration: Duration) -> u64 {
        let scaled = duration.as_nanos() * u128::from(self.rate_per_s);
        u64::try_from(scaled.div_ceil(NANOS_PER_S)).unwrap_or(u64::MAX)
    }
}

/// Whether an operation meant to start at `intended` and started at
/// `actual` (both from the run's start) was late.
pub fn is_late(intended: Duration, actual: Duration) -> bool {
    actual.saturating_sub(intended) > LATE_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn rates_outside_the_bounds_are_refused() {
        assert_eq!(Schedule::new(0), None);
        assert_eq!(Schedule::new(RATE_MAX + 1), None);
        assert_eq!(
            Schedule::new(RATE_MAX).map(Schedule::rate_per_s),
            Some(RATE_MAX)
        );
    }

    #[test]
    fn operations_are_spaced_evenly_from_the_start() {
        let s = Schedule::new(100).unwrap();
        assert_eq!(s.intended_start(0), Duration::ZERO);
        assert_eq!(s.intended_start(1), ms(10));
        assert_eq!(s.intended_start(250), ms(2500));
        // A rate that does not divide a second spaces to the nanosecond.
        let third = Schedule::new(3).unwrap();
        assert_eq!(third.intended_start(1), Duration::from_nanos(333_333_333));
        assert_eq!(third.intended_start(3), Duration::from_secs(1));
    }

    #[test]
    fn the_due_index_follows_elapsed_time() {
        let s = Schedule::new(100).unwrap();
        assert_eq!(s.due_index(Duration::ZERO), 0);
        assert_eq!(s.due_index(ms(9)), 0);
        assert_eq!(s.due_index(ms(10)), 1);
        assert_eq!(s.due_index(ms(1005)), 100);
        // The due index and the intended start agree at every boundary.
        for index in [0, 1, 7, 99, 12_345] {
            assert_eq!(s.due_index(s.intended_start(index)), index);
        }
    }

    #[test]
    fn a_run_schedules_rate_times_duration_operations() {
        let s = Schedule::new(100).unwrap();
        assert_eq!(s.scheduled_within(Duration::from_secs(10)), 1000);
        // Operation 0 is due at once, so any non-empty run has one.
        assert_eq!(s.scheduled_within(Duration::from_nanos(1)), 1);
        assert_eq!(s.scheduled_within(Duration::ZERO), 0);
        assert_eq!(s.scheduled_within(ms(15)), 2);
        // Exactly the operations whose start falls before the end.
        let odd = Schedule::new(7).unwrap();
        let duration = ms(2_300);
        let n = odd.scheduled_within(duration);
        assert!(odd.intended_start(n - 1) < duration);
        assert!(odd.intended_start(n) >= duration);
    }

    #[test]
    fn late_means_beyond_the_timer_slack() {
        assert!(!is_late(ms(100), ms(100)));
        assert!(!is_late(ms(100), ms(100) + LATE_AFTER));
        assert!(is_late(ms(100), ms(111)));
        // Starting early (never done, but harmless) is not late.
        assert!(!is_late(ms(100), ms(50)));
    }
}
