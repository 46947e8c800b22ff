//! Why the meta group refused a command: one variant per kind of refusal,
//! each carrying the regions a caller needs, and the one mapping of a
//! refusal to a client error (so the same refusal reaches a client with
//! the same code wherever it surfaces: renewal, switchover, priorities,
//! schedule).

use serde::{Deserialize, Serialize};

use crate::container::ContainerPolicy;
use crate::error::Error;
use crate::ids::RegionId;
use crate::meta::{ChangeReason, RegionState};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetaRefusal {
    /// The meta group has not formed the account yet.
    #[error("the account is not formed yet")]
    NotFormed,
    /// A command named a region the account does not have.
    #[error(
        "{region} is not a region of the account (the regions are {})",
        names(known)
    )]
    UnknownRegion {
        region: RegionId,
        known: Vec<RegionId>,
    },
    /// A change of write region is under way; one at a time.
    #[error("a {} from {from} to {to} is already under way", reason.as_str())]
    TransitionUnderWay {
        reason: ChangeReason,
        from: RegionId,
        to: RegionId,
    },
    #[error("{region} is already the write region")]
    AlreadyWriteRegion { region: RegionId },
    /// Only an online region may take over writes.
    #[error("{region} is {}: only an online region can take over writes", state.as_str())]
    NotOnline {
        region: RegionId,
        state: RegionState,
    },
    /// A transition to `to` was completed or aborted, but none is under way.
    #[error("no transition to {to} is under way")]
    NoTransition { to: RegionId },
    /// The write region stays in the strong set until a failover moves
    /// the writes away.
    #[error("{region} is the write region; it leaves the strong set only by failover")]
    WriteRegionStaysOnline { region: RegionId },
    /// A region's state changed since the command was decided.
    #[error("{region} is {}, not {}", state.as_str(), expected.as_str())]
    StateChanged {
        region: RegionId,
        state: RegionState,
        expected: RegionState,
    },
    /// A priority order must name every region exactly once.
    #[error(
        "invalid priorities: {} (the regions are {}; name each exactly once)",
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        names(known)
    )]
    BadPriorities {
        problems: Vec<PriorityProblem>,
        known: Vec<RegionId>,
    },
    /// A container's policy is fixed when it is created.
    #[error(
        "container {container} has policy {existing}; a policy cannot change (asked for {requested})"
    )]
    ContainerPolicyFixed {
        container: String,
        existing: ContainerPolicy,
        requested: ContainerPolicy,
    },
}

/// One thing wrong with a priority order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PriorityProblem {
    #[error("{0} is not a region of the account")]
    NotARegion(RegionId),
    #[error("{0} is listed twice")]
    ListedTwice(RegionId),
    #[error("{0} is missing")]
    Missing(RegionId),
}

fn names(regions: &[RegionId]) -> String {
    let names: Vec<&str> = regions.iter().map(RegionId::as_str).collect();
    names.join(", ")
}

/// The one mapping of a refusal to what a client hears: naming regions
/// the account does not have (or a priority order that does not name
/// each once) is the caller's bad input, INVALID_ARGUMENT; the rest are
/// refusals because of the account's state, FAILED_PRECONDITION `REFUSED`
/// (a container's fixed policy among them: the same request succeeds on a
/// container that does not exist yet).
impl From<MetaRefusal> for Error {
    fn from(refusal: MetaRefusal) -> Error {
        match refusal {
            MetaRefusal::UnknownRegion { .. } | MetaRefusal::BadPriorities { .. } => {
                Error::InvalidArgument(refusal.to_string())
            }
            MetaRefusal::NotFormed
            | MetaRefusal::TransitionUnderWay { .. }
            | MetaRefusal::AlreadyWriteRegion { .. }
            | MetaRefusal::NotOnline { .. }
            | MetaRefusal::NoTransition { .. }
            | MetaRefusal::WriteRegionStaysOnline { .. }
            | MetaRefusal::StateChanged { .. }
            | MetaRefusal::ContainerPolicyFixed { .. } => Error::Refused(refusal.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str) -> RegionId {
        RegionId::new(name)
    }

    #[test]
    fn an_unknown_region_is_invalid_input_and_a_state_refusal_is_refused() {
        let unknown = Error::from(MetaRefusal::UnknownRegion {
            region: r("mars"),
            known: vec![r("east"), r("west")],
        });
        assert_eq!(
            unknown,
            Error::InvalidArgument(
                "mars is not a region of the account (the regions are east, west)".into()
            )
        );
        let offline = Error::from(MetaRefusal::NotOnline {
            region: r("east"),
            state: RegionState::Offline,
        });
        assert_eq!(offline.code_name(), "REFUSED");
        assert_eq!(
            offline.to_string(),
            "east is offline: only an online region can take over writes"
        );
        let moving = Error::from(MetaRefusal::TransitionUnderWay {
            reason: ChangeReason::Switchover,
            from: r("west"),
            to: r("east"),
        });
        assert_eq!(
            moving.to_string(),
            "a switchover from west to east is already under way"
        );
        assert_eq!(moving.code_name(), "REFUSED");
    }

    #[test]
    fn bad_priorities_list_every_problem() {
        let bad = MetaRefusal::BadPriorities {
            problems: vec![
                PriorityProblem::NotARegion(r("mars")),
                PriorityProblem::ListedTwice(r("east")),
                PriorityProblem::Missing(r("west")),
            ],
            known: vec![r("east"), r("west")],
        };
        assert_eq!(
            bad.to_string(),
            "invalid priorities: mars is not a region of the account; east is listed twice; west is missing (the regions are east, west; name each exactly once)"
        );
        assert_eq!(Error::from(bad).code_name(), "INVALID_ARGUMENT");
    }

    #[test]
    fn a_policy_change_is_refused_naming_both_policies() {
        let fixed = Error::from(MetaRefusal::ContainerPolicyFixed {
            container: "orders".into(),
            existing: ContainerPolicy::default(),
            requested: ContainerPolicy::Counter,
        });
        assert_eq!(fixed.code_name(), "REFUSED");
        assert_eq!(
            fixed.to_string(),
            "container orders has policy lww; a policy cannot change (asked for counter)"
        );
    }
}
