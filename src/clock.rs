//! The clock seam: every reading of time in the server, the client and the
//! verify harness goes through here, so that a deterministic simulation
//! (`sim`) can run them in simulated time.
//!
//! - Monotonic time is tokio's [`Instant`]. Outside a paused runtime it is
//!   `std::time::Instant` itself (tokio reads the same clock), so
//!   production behaviour is unchanged; in a simulation every host's
//!   runtime is paused and turmoil advances it, so timeouts, leases and
//!   deadlines follow simulated time. Two hosts' instants are never
//!   compared: each host measures durations against its own clock.
//! - Wall time is [`system_now`]: the system clock, or in a simulation a
//!   fixed epoch plus the simulated time elapsed, the same for every host
//!   and every run of a seed.

#[cfg(feature = "simulation")]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

pub use tokio::time::Instant;

/// Where wall time starts in a simulation: 2026-01-01T00:00:00Z. A fixed
/// date keeps HLC timestamps, and so a run's history, identical between
/// runs of one seed.
pub const SIMULATION_EPOCH_MS: u64 = 1_767_225_600_000;

/// The wall clock.
pub fn system_now() -> SystemTime {
    #[cfg(feature = "simulation")]
    if let Some(elapsed) = simulated_elapsed() {
        return UNIX_EPOCH + Duration::from_millis(SIMULATION_EPOCH_MS) + elapsed;
    }
    SystemTime::now()
}

/// The wall clock in milliseconds since the Unix epoch (0 before it).
pub fn wall_ms() -> u64 {
    system_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The simulated time since the simulation began, when this runs inside
/// one.
#[cfg(feature = "simulation")]
fn simulated_elapsed() -> Option<Duration> {
    if turmoil::in_simulation() {
        turmoil::sim_elapsed()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_simulation_wall_time_is_the_system_clock() {
        let before = SystemTime::now();
        let now = system_now();
        assert!(now >= before, "{now:?} < {before:?}");
    }
}
