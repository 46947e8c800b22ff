//! Containers and their conflict policies (DESIGN.md "Containers"), pure.
//!
//! A container's policy is fixed when it is created (`meridian container
//! create NAME --policy lww|lww:/path|custom|counter|set|register`, and
//! `--no-feed-for-lww`); [`check_create`] refuses a change. A write to a
//! container that does not exist creates it with [`ContainerPolicy::default`]
//! (`lww`). The validation helpers here are what the origin region runs
//! before it takes a client's write: a plain put or delete to a CRDT
//! container, a CRDT operation to a policy container or to a CRDT of another
//! type, and a non-JSON value in an `lww:/path` container are refused with a
//! message naming the container.
//!
//! Invariants: the text form of a policy round-trips (`Display` then
//! `FromStr` gives the same policy); a [`JsonPointer`] is always a valid RFC
//! 6901 pointer of at most [`POLICY_PATH_BYTES_MAX`] bytes, without spaces, so
//! the `--no-feed-for-lww` suffix of the text form is unambiguous.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::crdt::{CrdtKind, CrdtRequest};

/// Longest JSON pointer a `lww:/path` policy may name.
pub const POLICY_PATH_BYTES_MAX: usize = 256;
/// The suffix that turns the conflict feed off for an `lww` container, as
/// the command line spells it.
const NO_FEED_FLAG: &str = " --no-feed-for-lww";
const POLICY_NAMES: &str = "lww, lww:/path, custom, counter, set, register";

/// A JSON pointer (RFC 6901) to a number inside a value, e.g. `/priority`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JsonPointer(String);

impl JsonPointer {
    pub fn parse(path: &str) -> Result<Self, ContainerError> {
        let bad = |why: &str| {
            Err(ContainerError::BadPath {
                path: path.to_string(),
                why: why.to_string(),
            })
        };
        if path.len() > POLICY_PATH_BYTES_MAX {
            return bad("it is longer than 256 bytes");
        }
        if !path.starts_with('/') {
            return bad("a path must start with `/`, e.g. `/priority`");
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("a path may not contain spaces or control characters");
        }
        // RFC 6901: `~` only as the escapes `~0` (for `~`) and `~1` (for `/`).
        let mut chars = path.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return bad("`~` must be followed by 0 or 1 (RFC 6901 escapes)");
            }
        }
        Ok(Self(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number at this path of a JSON value, if there is one there.
    pub fn number_in(&self, value: &serde_json::Value) -> Option<f64> {
        value.pointer(&self.0).and_then(serde_json::Value::as_f64)
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a container's concurrent writes are reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContainerPolicy {
    /// Last writer wins by `(ts, region, lsn)`, or first by the number at
    /// `path`. Losers go to the conflict feed when `feed` is on.
    Lww {
        path: Option<JsonPointer>,
        feed: bool,
    },
    /// Nothing is resolved: the confirmed version stays and the others wait
    /// in the conflict feed for a client to resolve them.
    Custom,
    /// A PN-counter: clients send `incr`.
    Counter,
    /// An add-wins set of strings: clients send `add` and `remove`.
    Set,
    /// A multi-value register: concurrent writes are kept as siblings.
    Register,
}

impl Default for ContainerPolicy {
    /// What a write to a container that does not exist creates.
    fn default() -> Self {
        Self::Lww {
            path: None,
            feed: true,
        }
    }
}

impl ContainerPolicy {
    /// The CRDT type of a CRDT container, `None` for a policy container.
    pub fn crdt_kind(&self) -> Option<CrdtKind> {
        match self {
            Self::Counter => Some(CrdtKind::Counter),
            Self::Set => Some(CrdtKind::Set),
            Self::Register => Some(CrdtKind::Register),
            Self::Lww { .. } | Self::Custom => None,
        }
    }
}

impl ContainerPolicy {
    /// Whether a lost lww write goes to the conflict feed: false only
    /// for an `lww` container created with `--no-feed-for-lww`.
    pub fn feed_for_lww(&self) -> bool {
        !matches!(self, Self::Lww { feed: false, .. })
    }

    /// This policy with `--no-feed-for-lww`, which only an `lww` policy
    /// takes.
    pub fn without_feed_for_lww(self) -> Result<Self, ContainerError> {
        match self {
            Self::Lww { path, .. } => Ok(Self::Lww { path, feed: false }),
            policy => Err(ContainerError::NoFeedNeedsLww { policy }),
        }
    }

    /// The text form without the `--no-feed-for-lww` flag, which
    /// [`Self::feed_for_lww`] carries.
    pub fn name(&self) -> String {
        match self {
            Self::Lww { path, .. } => Self::Lww {
                path: path.clone(),
                feed: true,
            }
            .to_string(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for ContainerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lww { path, feed } => {
                f.write_str("lww")?;
                if let Some(path) = path {
                    write!(f, ":{path}")?;
                }
                if !feed {
                    f.write_str(NO_FEED_FLAG)?;
                }
                Ok(())
            }
            Self::Custom => f.write_str("custom"),
            Self::Counter => f.write_str("counter"),
            Self::Set => f.write_str("set"),
            Self::Register => f.write_str("register"),
        }
    }
}

impl FromStr for ContainerPolicy {
    type Err = ContainerError;

    fn from_str(text: &str) -> Result<Self, ContainerError> {
        let (text, feed) = match text.strip_suffix(NO_FEED_FLAG) {
            Some(rest) => (rest, false),
            None => (text, true),
        };
        let policy = match text {
            "lww" => Self::Lww { path: None, feed },
            "custom" => Self::Custom,
            "counter" => Self::Counter,
            "set" => Self::Set,
            "register" => Self::Register,
            _ => match text.strip_prefix("lww:") {
                Some(path) => Self::Lww {
                    path: Some(JsonPointer::parse(path)?),
                    feed,
                },
                None => {
                    return Err(ContainerError::UnknownPolicy {
                        text: text.to_string(),
                    });
                }
            },
        };
        if !feed && !matches!(policy, Self::Lww { .. }) {
            return Err(ContainerError::NoFeedNeedsLww { policy });
        }
        Ok(policy)
    }
}

/// A container as the account knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub policy: ContainerPolicy,
}

/// What a `container create` that passed [`check_create`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateDecision {
    Create,
    /// The container exists with the requested policy: nothing to do.
    AlreadyExists,
}

/// Refuses a change of policy; creating again with the same one is a no-op.
pub fn check_create(
    existing: Option<&ContainerSpec>,
    requested: &ContainerSpec,
) -> Result<CreateDecision, ContainerError> {
    match existing {
        None => Ok(CreateDecision::Create),
        Some(spec) if spec.policy == requested.policy => Ok(CreateDecision::AlreadyExists),
        Some(spec) => Err(ContainerError::PolicyFixed {
            container: spec.name.clone(),
            existing: spec.policy.clone(),
            requested: requested.policy.clone(),
        }),
    }
}

/// A plain put: refused in a CRDT container, and in an `lww:/path` one
/// unless the value is JSON.
pub fn check_put(spec: &ContainerSpec, value: &[u8]) -> Result<(), ContainerError> {
    if let Some(kind) = spec.policy.crdt_kind() {
        return Err(ContainerError::PlainWriteToCrdt {
            container: spec.name.clone(),
            kind,
            op: "put",
        });
    }
    if let ContainerPolicy::Lww {
        path: Some(path), ..
    } = &spec.policy
        && let Err(e) = serde_json::from_slice::<serde_json::Value>(value)
    {
        return Err(ContainerError::NotJson {
            container: spec.name.clone(),
            path: path.clone(),
            why: e.to_string(),
        });
    }
    Ok(())
}

/// A plain delete: refused in a CRDT container, whose items change only by
/// their operations.
pub fn check_delete(spec: &ContainerSpec) -> Result<(), ContainerError> {
    match spec.policy.crdt_kind() {
        Some(kind) => Err(ContainerError::PlainWriteToCrdt {
            container: spec.name.clone(),
            kind,
            op: "delete",
        }),
        None => Ok(()),
    }
}

/// A CRDT operation: only to a CRDT container of the operation's type.
pub fn check_crdt(spec: &ContainerSpec, request: &CrdtRequest) -> Result<(), ContainerError> {
    match spec.policy.crdt_kind() {
        Some(kind) if kind == request.kind() => Ok(()),
        Some(kind) => Err(ContainerError::WrongCrdt {
            container: spec.name.clone(),
            kind,
            op: request.name(),
            op_kind: request.kind(),
        }),
        None => Err(ContainerError::CrdtOpToPolicy {
            container: spec.name.clone(),
            policy: spec.policy.clone(),
            op: request.name(),
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    #[error("unknown conflict policy {text:?}; the policies are {POLICY_NAMES}")]
    UnknownPolicy { text: String },
    #[error("conflict policy path {path:?} is not valid: {why}")]
    BadPath { path: String, why: String },
    #[error("--no-feed-for-lww applies to lww containers only, not to {policy}")]
    NoFeedNeedsLww { policy: ContainerPolicy },
    #[error(
        "container {container} has policy {existing}; a policy cannot change (asked for {requested})"
    )]
    PolicyFixed {
        container: String,
        existing: ContainerPolicy,
        requested: ContainerPolicy,
    },
    #[error("container {container} is a {kind}: send {}, not {op}", kind.operations())]
    PlainWriteToCrdt {
        container: String,
        kind: CrdtKind,
        op: &'static str,
    },
    #[error("container {container} is a {kind}: {op} is an operation of a {op_kind}; send {}", kind.operations())]
    WrongCrdt {
        container: String,
        kind: CrdtKind,
        op: &'static str,
        op_kind: CrdtKind,
    },
    #[error("container {container} has policy {policy}: send put or delete, not {op}")]
    CrdtOpToPolicy {
        container: String,
        policy: ContainerPolicy,
        op: &'static str,
    },
    #[error(
        "container {container} resolves conflicts by the number at {path}, so values must be JSON: {why}"
    )]
    NotJson {
        container: String,
        path: JsonPointer,
        why: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, policy: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            policy: policy.parse().expect("a valid policy"),
        }
    }

    #[test]
    fn every_policy_parses_and_round_trips() {
        for text in [
            "lww",
            "lww:/priority",
            "lww:/a/b~1c/~0d",
            "lww --no-feed-for-lww",
            "lww:/priority --no-feed-for-lww",
            "custom",
            "counter",
            "set",
            "register",
        ] {
            let policy: ContainerPolicy = text.parse().expect(text);
            assert_eq!(policy.to_string(), text);
            assert_eq!(policy.to_string().parse::<ContainerPolicy>(), Ok(policy));
        }
        assert_eq!(
            "lww:/p".parse::<ContainerPolicy>(),
            Ok(ContainerPolicy::Lww {
                path: Some(JsonPointer("/p".into())),
                feed: true
            })
        );
        assert_eq!(ContainerPolicy::default().to_string(), "lww");
    }

    #[test]
    fn the_feed_flag_is_its_own_field() {
        let lww: ContainerPolicy = "lww:/p".parse().unwrap();
        assert!(lww.feed_for_lww());
        let quiet = lww.without_feed_for_lww().unwrap();
        assert_eq!(quiet.to_string(), "lww:/p --no-feed-for-lww");
        assert!(!quiet.feed_for_lww());
        assert_eq!(quiet.name(), "lww:/p");
        assert_eq!(quiet.clone().without_feed_for_lww(), Ok(quiet));
        let err = ContainerPolicy::Set.without_feed_for_lww().unwrap_err();
        assert!(err.to_string().contains("lww containers only"), "{err}");
    }

    #[test]
    fn bad_policies_are_refused_with_their_reason() {
        let long = format!("lww:/{}", "a".repeat(POLICY_PATH_BYTES_MAX));
        let cases: &[(&str, &str)] = &[
            ("", "the policies are lww, lww:/path, custom"),
            ("LWW", "the policies are"),
            ("crdt", "the policies are"),
            ("lww:", "must start with `/`"),
            ("lww:priority", "must start with `/`"),
            ("lww:/a b", "spaces"),
            ("lww:/a~2", "RFC 6901"),
            ("lww:/a~", "RFC 6901"),
            (&long, "longer than 256"),
            ("counter --no-feed-for-lww", "lww containers only"),
        ];
        for (text, why) in cases {
            let err = text
                .parse::<ContainerPolicy>()
                .expect_err(&format!("{text:?} must be refused"));
            assert!(err.to_string().contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_policy_cannot_change() {
        let lww = spec("orders", "lww");
        assert_eq!(check_create(None, &lww), Ok(CreateDecision::Create));
        assert_eq!(
            check_create(Some(&lww), &lww),
            Ok(CreateDecision::AlreadyExists)
        );
        let err = check_create(Some(&lww), &spec("orders", "counter")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container orders has policy lww; a policy cannot change (asked for counter)"
        );
        assert!(check_create(Some(&lww), &spec("orders", "lww --no-feed-for-lww")).is_err());
    }

    #[test]
    fn writes_are_checked_against_the_container_type() {
        let counter = spec("hits", "counter");
        let err = check_put(&counter, b"1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "container hits is a counter: send incr, not put"
        );
        let err = check_delete(&spec("tags", "set")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container tags is a set: send add or remove, not delete"
        );
        let incr = CrdtRequest::Incr { by: 1 };
        let err = check_crdt(&spec("c", "lww"), &incr).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container c has policy lww: send put or delete, not incr"
        );
        let err = check_crdt(&spec("tags", "set"), &incr).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container tags is a set: incr is an operation of a counter; send add or remove"
        );
        assert_eq!(check_crdt(&counter, &incr), Ok(()));
        let add = CrdtRequest::Add { member: "x".into() };
        assert_eq!(check_crdt(&spec("tags", "set"), &add), Ok(()));
        assert_eq!(check_put(&spec("c", "custom"), b"\xff not json"), Ok(()));
        assert_eq!(check_delete(&spec("c", "custom")), Ok(()));
    }

    #[test]
    fn a_path_container_wants_json() {
        let c = spec("jobs", "lww:/priority");
        let err = check_put(&c, b"not json").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("container jobs resolves conflicts by the number at /priority, so values must be JSON"),
            "{err}"
        );
        assert_eq!(check_put(&c, br#"{"priority": 3}"#), Ok(()));
        assert_eq!(
            check_put(&c, br#"{"other": 1}"#),
            Ok(()),
            "a missing path is allowed: it ranks below every number"
        );
        let p = JsonPointer::parse("/a/b~1c").unwrap();
        let v: serde_json::Value = serde_json::from_str(r#"{"a":{"b/c":7.5}}"#).unwrap();
        assert_eq!(p.number_in(&v), Some(7.5));
        let v: serde_json::Value = serde_json::from_str(r#"{"a":{"b/c":"7"}}"#).unwrap();
        assert_eq!(p.number_in(&v), None, "a string is not a number");
    }
}
