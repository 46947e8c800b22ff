//! Test-only fault switches (issue 5): each one makes the server break one
//! promise, so a test can show that the matching checker catches it. They
//! exist only in builds with the `verify-mutations` feature; elsewhere
//! `armed` is a constant `false` and every switch compiles away.
//!
//! A switch is process-wide: it is meant for `meridian verify --mutation`,
//! whose whole account runs in one process.

use std::fmt;
use std::str::FromStr;

/// One broken promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// A strong read is served from the local replica without a read
    /// index: a follower or a deposed leader may answer with old data.
    /// The linearizability checker must catch it.
    StaleStrongRead,
    /// A session read ignores its token and answers from whatever the
    /// replica has applied. The session checker must catch it.
    SessionIgnoresToken,
    /// The write leader acknowledges one write in 16 without proposing
    /// it. The durability checker must catch it.
    AckUnwritten,
}

impl Mutation {
    pub const ALL: [Mutation; 3] = [
        Mutation::StaleStrongRead,
        Mutation::SessionIgnoresToken,
        Mutation::AckUnwritten,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mutation::StaleStrongRead => "stale-strong-read",
            Mutation::SessionIgnoresToken => "session-ignores-token",
            Mutation::AckUnwritten => "ack-unwritten",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mutation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Mutation::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Mutation::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown mutation {text:?}; one of {}", names.join(", "))
            })
    }
}

#[cfg(feature = "verify-mutations")]
static ARMED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Arms `mutation` for the rest of the process, or refuses in a build
/// without the switches.
pub fn arm(mutation: Mutation) -> Result<(), String> {
    #[cfg(feature = "verify-mutations")]
    {
        ARMED.fetch_or(mutation.bit(), std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(%mutation, "mutation armed: this process breaks a promise on purpose");
        Ok(())
    }
    #[cfg(not(feature = "verify-mutations"))]
    {
        let _ = mutation.bit();
        Err(format!(
            "cannot arm {mutation}: this meridian was built without the verify-mutations feature \
             (cargo build --release --features verify-mutations)"
        ))
    }
}

/// Whether `mutation` is armed; always `false` without the feature.
#[inline]
pub fn armed(mutation: Mutation) -> bool {
    #[cfg(feature = "verify-mutations")]
    {
        ARMED.load(std::sync::atomic::Ordering::Relaxed) & mutation.bit() != 0
    }
    #[cfg(not(feature = "verify-mutations"))]
    {
        let _ = mutation;
        false
    }
}

/// For `AckUnwritten`: whether this write is one of the one in 16 to drop.
pub fn drop_this_write() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    armed(Mutation::AckUnwritten) && WRITES.fetch_add(1, Ordering::Relaxed) % 16 == 15
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known() {
        for m in Mutation::ALL {
            assert_eq!(m.as_str().parse::<Mutation>(), Ok(m));
        }
        let err = "lose-everything".parse::<Mutation>().unwrap_err();
        assert!(err.contains("ack-unwritten"), "{err}");
    }

    #[test]
    fn bits_are_distinct() {
        let bits: std::collections::BTreeSet<u8> = Mutation::ALL.iter().map(|m| m.bit()).collect();
        assert_eq!(bits.len(), Mutation::ALL.len());
    }
}
