//! Recorded histories: one JSON line per event, and the pairing of each
//! invocation with its completion.
//!
//! A workload runner appends an [`Op`] with kind `invoke` when a client
//! sends a request and one with kind `ok`, `fail` or `info` when it learns
//! the outcome. `info` means the outcome is unknown (a timeout, a broken
//! connection): the operation may take effect at any later time, or never.
//!
//! Invariants of a well-formed history, checked by [`History::from_ops`]
//! and reported as a [`HistoryError`] naming the line, never a panic:
//! - a process has at most one outstanding operation;
//! - a completion follows an invocation by the same process, of the same
//!   function and key.
//!
//! An invocation still outstanding when the history ends is treated as
//! `info`, like an explicit unknown outcome.
//!
//! Field meanings: on an invocation `value` is what a write, cas or append
//! sends and `expected` what a cas compares against; on a completion of a
//! read `value` is what it returned (absent: the key did not exist) and
//! `glsn` is the GLSN of the version returned; on a completion of a write
//! `glsn` is the GLSN the write committed at; on a `fail` or `info`
//! completion `error` says why. GLSNs and session tokens are
//! written as text (`e1:42`) so a history reads like the logs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use crate::consistency::Consistency;
use crate::glsn::{Glsn, SessionToken};
use crate::ids::{NodeId, RegionId};

/// The longest history line accepted, so a corrupt file cannot make the
/// reader hold an unbounded line. A read of a large append set is the
/// biggest legitimate line.
pub const HISTORY_LINE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One client of the workload; also the session of the session checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProcessId(pub u64);

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Invoke,
    Ok,
    Fail,
    /// Unknown outcome: the operation may or may not have taken effect.
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    Read,
    Write,
    /// Compare-and-set: write `value` if the current value is `expected`.
    Cas,
    /// Add `value` to the set stored under `key`.
    Append,
    /// Read the whole set stored under `key` into `values`.
    ReadSet,
    /// Read every key starting with `key` into `entries`.
    Scan,
}

impl Function {
    /// Functions that may change the value of their key.
    pub fn is_write(self) -> bool {
        matches!(self, Function::Write | Function::Cas | Function::Append)
    }
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub process: ProcessId,
    pub kind: OpKind,
    pub function: Function,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "token_text")]
    pub session_token: Option<SessionToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<RegionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "glsn_text")]
    pub glsn: Option<Glsn>,
    /// On a `fail` or `info` completion: why, as the server named it
    /// (`THROTTLED`, `ETAG_MISMATCH`, ...) or the gRPC code. For people
    /// reading a history; no checker uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub wall_ms: u64,
    pub mono_ns: u64,
}

impl Op {
    /// A bare event; tests and the runner fill in the rest.
    pub fn new(process: u64, kind: OpKind, function: Function, key: &str) -> Self {
        Self {
            process: ProcessId(process),
            kind,
            function,
            key: key.to_string(),
            value: None,
            expected: None,
            values: None,
            entries: None,
            consistency: None,
            session_token: None,
            region: None,
            node: None,
            glsn: None,
            error: None,
            wall_ms: 0,
            mono_ns: 0,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            OpKind::Invoke => "invoke",
            OpKind::Ok => "ok",
            OpKind::Fail => "fail",
            OpKind::Info => "info",
        };
        write!(
            f,
            "{} {kind} {:?} {}",
            self.process, self.function, self.key
        )?;
        if let Some(expected) = &self.expected {
            write!(f, " if={expected}")?;
        }
        if let Some(value) = &self.value {
            write!(f, " ={value}")?;
        }
        if let Some(glsn) = self.glsn {
            write!(f, " @{glsn}")?;
        }
        if let Some(error) = &self.error {
            write!(f, " ({error})")?;
        }
        Ok(())
    }
}

/// Session tokens as their text form, `e1:42`.
mod token_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::glsn::SessionToken;

    pub fn serialize<S: Serializer>(t: &Option<SessionToken>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(token) => s.collect_str(token),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SessionToken>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// GLSNs as text, the same form as a session token.
mod glsn_text {
    use serde::{Deserializer, Serializer};

    use crate::glsn::{Glsn, SessionToken};

    pub fn serialize<S: Serializer>(g: &Option<Glsn>, s: S) -> Result<S::Ok, S::Error> {
        super::token_text::serialize(&g.map(SessionToken), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Glsn>, D::Error> {
        Ok(super::token_text::deserialize(d)?.map(|t| t.0))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the history: {0}")]
    Io(#[from] io::Error),
    #[error("history line {line}: {source}")]
    Parse {
        line: usize,
        source: serde_json::Error,
    },
    #[error("history line {line} is longer than {HISTORY_LINE_BYTES_MAX} bytes")]
    LineTooLong { line: usize },
    #[error(
        "history line {line}: {process} invokes while its operation of line {outstanding_line} is outstanding"
    )]
    DoubleInvoke {
        line: usize,
        process: ProcessId,
        outstanding_line: usize,
    },
    #[error("history line {line}: {process} completes an operation it never invoked")]
    CompletionWithoutInvoke { line: usize, process: ProcessId },
    #[error(
        "history line {line}: {process} completes a different function or key than it invoked on line {invoke_line}"
    )]
    CompletionMismatch {
        line: usize,
        process: ProcessId,
        invoke_line: usize,
    },
}

/// Appends one event as a JSON line.
pub fn write_op(writer: &mut impl Write, op: &Op) -> io::Result<()> {
    serde_json::to_writer(&mut *writer, op)?;
    writer.write_all(b"\n")
}

/// Reads a JSON-lines history and pairs its events. Blank lines are
/// skipped, so a file cut mid-write by a crash still reads up to the cut.
pub fn read_history(reader: impl BufRead) -> Result<History, HistoryError> {
    History::from_ops(read_ops(reader)?)
}

fn read_ops(mut reader: impl BufRead) -> Result<Vec<Op>, HistoryError> {
    let mut ops = Vec::new();
    let mut buf = Vec::new();
    for line in 1.. {
        buf.clear();
        let limit = HISTORY_LINE_BYTES_MAX as u64 + 1;
        let read = (&mut reader).take(limit).read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        if buf.len() > HISTORY_LINE_BYTES_MAX {
            return Err(HistoryError::LineTooLong { line });
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let op =
            serde_json::from_slice(&buf).map_err(|source| HistoryError::Parse { line, source })?;
        ops.push(op);
    }
    Ok(ops)
}

/// The outcome of an operation as the checkers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    /// An `info` completion, or none before the history ended.
    Unknown,
}

/// An invocation paired with its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Index in [`History::operations`], which is in invocation order.
    pub id: usize,
    /// Position of the invocation among the history's events: the clock of
    /// real-time order, since the recorder appends events as they happen.
    pub invoke_at: usize,
    pub invoke: Op,
    pub completion: Option<(usize, Op)>,
}

impl Operation {
    pub fn process(&self) -> ProcessId {
        self.invoke.process
    }

    pub fn function(&self) -> Function {
        self.invoke.function
    }

    pub fn key(&self) -> &str {
        &self.invoke.key
    }

    pub fn outcome(&self) -> Outcome {
        match self.completion.as_ref().map(|(_, op)| op.kind) {
            Some(OpKind::Ok) => Outcome::Ok,
            Some(OpKind::Fail) => Outcome::Fail,
            _ => Outcome::Unknown,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome() == Outcome::Ok
    }

    /// Position of a definite completion; `None` (infinity) when the
    /// outcome is unknown, because the operation may still take effect.
    pub fn returned_at(&self) -> Option<usize> {
        match (self.outcome(), &self.completion) {
            (Outcome::Ok | Outcome::Fail, Some((at, _))) => Some(*at),
            _ => None,
        }
    }

    /// Did this operation complete before `other` was invoked?
    pub fn precedes(&self, other: &Operation) -> bool {
        self.returned_at().is_some_and(|at| at < other.invoke_at)
    }

    /// The completion event, if the operation ended with a definite `ok`.
    pub fn ok_completion(&self) -> Option<&Op> {
        match &self.completion {
            Some((_, op)) if op.kind == OpKind::Ok => Some(op),
            _ => None,
        }
    }

    /// What a write, cas or append sent.
    pub fn written_value(&self) -> Option<&str> {
        self.invoke.value.as_deref()
    }

    /// GLSN of an acknowledged write, or of the version an ok read returned.
    pub fn ok_glsn(&self) -> Option<Glsn> {
        self.ok_completion().and_then(|op| op.glsn)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.completion {
            Some((at, op)) => write!(f, "[#{} {} -> #{at} {op}]", self.invoke_at, self.invoke),
            None => write!(
                f,
                "[#{} {} -> never completed]",
                self.invoke_at, self.invoke
            ),
        }
    }
}

/// A well-formed history: operations in invocation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    operations: Vec<Operation>,
}

impl History {
    /// Pairs events into operations; see the module header for the rules.
    pub fn from_ops(ops: Vec<Op>) -> Result<History, HistoryError> {
        let mut operations: Vec<Operation> = Vec::new();
        // process -> index of its outstanding operation
        let mut outstanding: HashMap<ProcessId, usize> = HashMap::new();
        for (at, op) in ops.into_iter().enumerate() {
            let line = at + 1;
            let process = op.process;
            if op.kind == OpKind::Invoke {
                if let Some(&open) = outstanding.get(&process) {
                    let outstanding_line = operations[open].invoke_at + 1;
                    return Err(HistoryError::DoubleInvoke {
                        line,
                        process,
                        outstanding_line,
                    });
                }
                outstanding.insert(process, operations.len());
                let id = operations.len();
                operations.push(Operation {
                    id,
                    invoke_at: at,
                    invoke: op,
                    completion: None,
                });
                continue;
            }
            let open = outstanding
                .remove(&process)
                .ok_or(HistoryError::CompletionWithoutInvoke { line, process })?;
            let operation = &mut operations[open];
            if operation.invoke.function != op.function || operation.invoke.key != op.key {
                let invoke_line = operation.invoke_at + 1;
                return Err(HistoryError::CompletionMismatch {
                    line,
                    process,
                    invoke_line,
                });
            }
            operation.completion = Some((at, op));
        }
        Ok(History { operations })
    }

    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Operations on one key, in invocation order.
    pub fn on_key<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Operation> + 'a {
        self.operations.iter().filter(move |op| op.key() == key)
    }

    /// Every key an operation named, each once, in order.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.operations.iter().map(Operation::key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// The GLSN of every acknowledged write by key and value, to date a read
/// that returned a value without the version's GLSN. Values of one key are
/// unique in meridian's workloads; if one repeats, the newest GLSN counts.
#[derive(Debug, Default)]
pub struct Versions<'a> {
    by_value: HashMap<(&'a str, &'a str), Glsn>,
}

impl<'a> Versions<'a> {
    pub fn of(history: &'a History) -> Self {
        let mut by_value: HashMap<(&str, &str), Glsn> = HashMap::new();
        for op in history.operations() {
            let (Some(value), Some(glsn)) = (op.written_value(), op.ok_glsn()) else {
                continue;
            };
            if op.function().is_write() {
                let slot = by_value.entry((op.key(), value)).or_insert(glsn);
                *slot = (*slot).max(glsn);
            }
        }
        Self { by_value }
    }

    /// The version an ok read returned: its reported GLSN, else the GLSN
    /// of the write of the value it saw; an absent key is version zero.
    /// `None` when the read did not succeed or cannot be dated.
    pub fn of_read(&self, op: &Operation) -> Option<Glsn> {
        let done = op.ok_completion()?;
        if let Some(glsn) = done.glsn {
            return Some(glsn);
        }
        match (op.function(), done.value.as_deref()) {
            (Function::Read, None) => Some(Glsn::ZERO),
            (Function::Read, Some(value)) => self.by_value.get(&(op.key(), value)).copied(),
            _ => None,
        }
    }
}

/// Builders for hand-written histories in the checkers' tests.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    pub fn invoke(p: u64, function: Function, key: &str, value: Option<&str>) -> Op {
        let mut op = Op::new(p, OpKind::Invoke, function, key);
        op.value = value.map(str::to_string);
        op
    }

    pub fn complete(p: u64, kind: OpKind, function: Function, key: &str) -> Op {
        Op::new(p, kind, function, key)
    }

    pub fn with_glsn(mut op: Op, lsn: u64) -> Op {
        op.glsn = Some(Glsn::new(1, lsn));
        op
    }

    pub fn with_value(mut op: Op, value: &str) -> Op {
        op.value = Some(value.to_string());
        op
    }

    pub fn at_ms(mut op: Op, ms: u64) -> Op {
        op.mono_ns = ms * 1_000_000;
        op.wall_ms = ms;
        op
    }

    pub fn history(ops: Vec<Op>) -> History {
        History::from_ops(ops).expect("hand-written history is well formed")
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn sample() -> Vec<Op> {
        let mut write = invoke(1, Function::Write, "k", Some("v1"));
        write.consistency = Some(Consistency::Strong);
        write.mono_ns = 5;
        write.wall_ms = 1_700_000_000_000;
        let mut ok = complete(1, OpKind::Ok, Function::Write, "k");
        ok.glsn = Some(Glsn::new(1, 42));
        ok.session_token = Some(SessionToken(Glsn::new(1, 42)));
        ok.region = Some(RegionId::new("west"));
        ok.node = Some(NodeId(2));
        let read = invoke(2, Function::ReadSet, "s", None);
        let mut read_ok = complete(2, OpKind::Ok, Function::ReadSet, "s");
        read_ok.values = Some(vec!["a".into(), "b".into()]);
        vec![write, ok, read, read_ok]
    }

    #[test]
    fn json_lines_round_trip() {
        let ops = sample();
        let mut text = Vec::new();
        for op in &ops {
            write_op(&mut text, op).unwrap();
        }
        let line = String::from_utf8(text.clone()).unwrap();
        assert!(line.contains("\"glsn\":\"e1:42\""), "{line}");
        assert!(line.contains("\"session_token\":\"e1:42\""), "{line}");
        let history = read_history(&text[..]).unwrap();
        assert_eq!(history, History::from_ops(ops).unwrap());
        assert_eq!(history.operations().len(), 2);
        assert!(history.operations()[0].is_ok());
        assert_eq!(history.operations()[0].ok_glsn(), Some(Glsn::new(1, 42)));
    }

    #[test]
    fn outstanding_at_the_end_is_unknown() {
        let history = history(vec![invoke(1, Function::Write, "k", Some("v"))]);
        let op = &history.operations()[0];
        assert_eq!(op.outcome(), Outcome::Unknown);
        assert_eq!(op.returned_at(), None);
    }

    #[test]
    fn malformed_histories_are_errors_not_panics() {
        let double = vec![
            invoke(1, Function::Read, "k", None),
            invoke(1, Function::Read, "k", None),
        ];
        assert!(matches!(
            History::from_ops(double),
            Err(HistoryError::DoubleInvoke { line: 2, .. })
        ));
        let orphan = vec![complete(1, OpKind::Ok, Function::Read, "k")];
        assert!(matches!(
            History::from_ops(orphan),
            Err(HistoryError::CompletionWithoutInvoke { line: 1, .. })
        ));
        let mismatch = vec![
            invoke(1, Function::Read, "k", None),
            complete(1, OpKind::Ok, Function::Read, "other"),
        ];
        assert!(matches!(
            History::from_ops(mismatch),
            Err(HistoryError::CompletionMismatch { line: 2, .. })
        ));
        let garbage = b"{\"process\":1}\n";
        assert!(matches!(
            read_history(&garbage[..]),
            Err(HistoryError::Parse { line: 1, .. })
        ));
        let bad_token = br#"{"process":1,"kind":"invoke","function":"read","key":"k","glsn":"x","wall_ms":0,"mono_ns":0}"#;
        assert!(read_history(&bad_token[..]).is_err());
    }
}
