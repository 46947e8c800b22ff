//! The retry policy, pure: after a failed attempt, whether the operation
//! may go on, where to, and how long it waits first. Reads go on after any
//! failure that says nothing about the data; a write goes on only when it
//! was refused before it could apply (NOT_WRITE_REGION, THROTTLED,
//! UNAVAILABLE or SHUTTING_DOWN named by the server, or a connection that
//! never opened). A write whose outcome is unknown always ends the
//! operation: the caller decides (Jepsen found jetcd retrying those).

use std::time::Duration;

use tonic::Code;

use crate::client::errors::{CallKind, ClientError, names};
use crate::client::topology::Route;

/// How long one operation may keep trying by default: longer than a write
/// region's lease TTL (3 s by default) plus a failover, so a caller does
/// not see the failover, and short enough for an interactive command.
pub const DEADLINE_DEFAULT: Duration = Duration::from_secs(10);
/// The backoff ceiling of the first round; it doubles every round.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(50);
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A server's retry-after hint is honoured up to this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(5);
/// A retry is started only with at least this much of the deadline left:
/// a write cut short by the deadline would turn a clean refusal into an
/// unknown outcome.
pub const ATTEMPT_TIME_MIN: Duration = Duration::from_millis(250);
/// Attempts of one operation, whatever the deadline: a bound on the work
/// a caller's single request can cause.
pub const ATTEMPTS_MAX: u32 = 64;

/// Where the next attempt goes after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// THROTTLED: the same request after the server's retry-after.
    Again { after: Duration },
    /// This node did not answer; another one, at once. `down`: it refused
    /// the connection or is stopping, so later requests skip it for a while.
    OtherNode { down: bool },
    /// This region cannot serve the read now (no read lease, no leader):
    /// the next region, at once.
    OtherRegion,
    /// Not the write region (NOT_WRITE_REGION names the one that is, as of
    /// `epoch`), or a session read not available here: the write region,
    /// at once.
    WriteRegion {
        named: Option<String>,
        epoch: Option<u64>,
    },
    /// The write region cannot take the write now (no lease, no leader, a
    /// failover under way): refresh the topology and try after a backoff.
    Later,
}

/// What follows `error`, or `None` when it ends the operation.
pub fn action_after(error: &ClientError, kind: CallKind, route: Route) -> Option<Action> {
    match error {
        ClientError::Unavailable { code, detail, .. } => Some(after_unavailable(
            *code,
            detail.name.as_deref(),
            kind,
            route,
        )),
        ClientError::Server { detail, .. } => match detail.name.as_deref() {
            // Under `Route::Reads` a write was pinned by the caller
            // (`no_forward`): the refusal is the answer they asked for.
            Some(names::NOT_WRITE_REGION) if route == Route::WriteRegion => {
                Some(Action::WriteRegion {
                    named: detail.write_region.clone(),
                    epoch: detail.epoch,
                })
            }
            Some(names::THROTTLED) => Some(Action::Again {
                after: retry_after(detail.retry_after_ms),
            }),
            _ => None,
        },
        ClientError::NoRunningNode { .. } => Some(Action::Later),
        ClientError::OutcomeUnknown { .. }
        | ClientError::SessionLost { .. }
        | ClientError::InvalidEndpoint { .. }
        | ClientError::UnknownRegion { .. } => None,
    }
}

/// `classify` made a write `Unavailable` only when nothing was done, so
/// every case here is safe for writes too.
fn after_unavailable(code: Code, name: Option<&str>, kind: CallKind, route: Route) -> Action {
    match name {
        // The transport's: the node did not answer. A refused connection
        // marks it down; a read that timed out does not.
        None => Action::OtherNode {
            down: code == Code::Unavailable,
        },
        Some(names::SHUTTING_DOWN) => Action::OtherNode { down: true },
        Some(names::READ_SESSION_NOT_AVAILABLE) => Action::WriteRegion {
            named: None,
            epoch: None,
        },
        Some(_) => match (kind, route) {
            (CallKind::Read, Route::Reads) => Action::OtherRegion,
            _ => Action::Later,
        },
    }
}

/// The server's hint, bounded both ways; a missing hint waits the first
/// backoff.
fn retry_after(hint_ms: Option<u64>) -> Duration {
    hint_ms
        .map_or(BACKOFF_FIRST, Duration::from_millis)
        .clamp(BACKOFF_FIRST, RETRY_AFTER_MAX)
}

/// The wait before retry round `round` (0 first): a ceiling doubling from
/// `BACKOFF_FIRST` up to `BACKOFF_MAX`, half of it fixed and half scaled by
/// `jitter` in 0..=1 ("equal jitter"), so clients that failed together do
/// not come back together, yet none comes back at once.
pub fn backoff(round: u32, jitter: f64) -> Duration {
    let ceiling = BACKOFF_FIRST
        .saturating_mul(1u32 << round.min(16))
        .min(BACKOFF_MAX);
    let half = ceiling / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// Whether waiting `wait` more still leaves an attempt `ATTEMPT_TIME_MIN`
/// before `deadline` (both measured from the operation's start).
pub fn fits(elapsed: Duration, wait: Duration, deadline: Duration) -> bool {
    elapsed
        .saturating_add(wait)
        .saturating_add(ATTEMPT_TIME_MIN)
        <= deadline
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::errors::ErrorDetail;

    fn named(name: &str) -> ErrorDetail {
        ErrorDetail {
            name: Some(name.to_string()),
            ..ErrorDetail::default()
        }
    }

    fn unavailable(name: Option<&str>, code: Code) -> ClientError {
        ClientError::Unavailable {
            code,
            message: String::new(),
            detail: ErrorDetail {
                name: name.map(str::to_string),
                ..ErrorDetail::default()
            },
        }
    }

    fn server(detail: ErrorDetail) -> ClientError {
        ClientError::Server {
            code: Code::FailedPrecondition,
            message: String::new(),
            detail,
        }
    }

    use CallKind::{Read, Write};
    use Route::{Reads, WriteRegion};

    #[test]
    fn a_write_goes_on_only_after_a_refusal_before_it_applied() {
        let not_write_region = server(ErrorDetail {
            write_region: Some("east".to_string()),
            epoch: Some(4),
            ..named(names::NOT_WRITE_REGION)
        });
        assert_eq!(
            action_after(&not_write_region, Write, WriteRegion),
            Some(Action::WriteRegion {
                named: Some("east".to_string()),
                epoch: Some(4),
            })
        );
        let throttled = server(ErrorDetail {
            retry_after_ms: Some(250),
            ..named(names::THROTTLED)
        });
        assert_eq!(
            action_after(&throttled, Write, WriteRegion),
            Some(Action::Again {
                after: Duration::from_millis(250)
            })
        );
        let no_lease = unavailable(Some(names::UNAVAILABLE), Code::Unavailable);
        assert_eq!(
            action_after(&no_lease, Write, WriteRegion),
            Some(Action::Later)
        );
        let refused = unavailable(None, Code::Unavailable);
        assert_eq!(
            action_after(&refused, Write, WriteRegion),
            Some(Action::OtherNode { down: true })
        );
        let stopping = unavailable(Some(names::SHUTTING_DOWN), Code::Unavailable);
        assert_eq!(
            action_after(&stopping, Write, WriteRegion),
            Some(Action::OtherNode { down: true })
        );
    }

    #[test]
    fn an_unknown_outcome_a_lost_session_or_a_real_answer_ends_the_operation() {
        let unknown = ClientError::OutcomeUnknown {
            code: Code::Cancelled,
            message: "late".to_string(),
            detail: ErrorDetail::default(),
        };
        let lost = ClientError::SessionLost {
            code: Code::FailedPrecondition,
            message: String::new(),
            detail: named(names::SESSION_LOST),
        };
        let exists = ClientError::Server {
            code: Code::AlreadyExists,
            message: String::new(),
            detail: ErrorDetail::default(),
        };
        for error in [unknown, lost, exists] {
            for (kind, route) in [(Write, WriteRegion), (Read, Reads), (Write, Reads)] {
                assert_eq!(action_after(&error, kind, route), None, "{error}");
            }
        }
        // A write the caller pinned with no_forward keeps its refusal.
        let pinned = server(named(names::NOT_WRITE_REGION));
        assert_eq!(action_after(&pinned, Write, Reads), None);
    }

    #[test]
    fn a_read_moves_to_another_node_region_or_the_write_region() {
        let no_lease = unavailable(Some(names::UNAVAILABLE), Code::Unavailable);
        assert_eq!(
            action_after(&no_lease, Read, Reads),
            Some(Action::OtherRegion)
        );
        let session = unavailable(Some(names::READ_SESSION_NOT_AVAILABLE), Code::Unavailable);
        assert_eq!(
            action_after(&session, Read, Reads),
            Some(Action::WriteRegion {
                named: None,
                epoch: None
            })
        );
        let timed_out = unavailable(None, Code::Cancelled);
        assert_eq!(
            action_after(&timed_out, Read, Reads),
            Some(Action::OtherNode { down: false })
        );
        // A write pinned by the caller that finds no lease waits, like any
        // write: another region would refuse it anyway.
        assert_eq!(action_after(&no_lease, Write, Reads), Some(Action::Later));
    }

    #[test]
    fn retry_after_hints_are_bounded() {
        assert_eq!(retry_after(None), BACKOFF_FIRST);
        assert_eq!(retry_after(Some(1)), BACKOFF_FIRST);
        assert_eq!(retry_after(Some(60_000)), RETRY_AFTER_MAX);
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_half_of_it_jittered() {
        assert_eq!(backoff(0, 0.0), BACKOFF_FIRST / 2);
        assert_eq!(backoff(0, 1.0), BACKOFF_FIRST);
        assert_eq!(backoff(1, 1.0), BACKOFF_FIRST * 2);
        assert_eq!(backoff(3, 0.5), BACKOFF_FIRST * 8 * 3 / 4);
        for round in [5, 16, 31, u32::MAX] {
            assert_eq!(backoff(round, 1.0), BACKOFF_MAX, "round {round}");
            assert_eq!(backoff(round, 0.0), BACKOFF_MAX / 2, "round {round}");
        }
        assert_eq!(backoff(0, 7.0), BACKOFF_FIRST, "jitter is clamped");
        let mut previous = Duration::ZERO;
        for round in 0..10 {
            let ceiling = backoff(round, 1.0);
            assert!(ceiling >= previous);
            previous = ceiling;
        }
    }

    #[test]
    fn a_wait_fits_only_when_time_for_an_attempt_is_left() {
        let second = Duration::from_secs(1);
        assert!(fits(second, second, second * 3));
        assert!(fits(second, second, second * 2 + ATTEMPT_TIME_MIN));
        assert!(!fits(second * 2, second, second * 3));
        assert!(!fits(Duration::MAX, second, second));
    }
}
