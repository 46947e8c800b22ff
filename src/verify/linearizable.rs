//! Linearizability of per-key registers (read, write, cas), for STRONG.
//!
//! The search is Wing & Gong's, with Lowe's memoisation as in Porcupine:
//! walk the events in real-time order, tentatively linearize any operation
//! whose call is reached, and backtrack when a return is reached whose
//! operation is not yet linearized. A configuration (set of linearized
//! operations, register value) is explored at most once.
//!
//! Model: a key starts absent; `write v` sets it; `cas(expected, v)` sets
//! it when it equals `expected` (no `expected` means "absent", a create);
//! an ok `read` must return the current value (no value means absent).
//!
//! What counts: ok operations must take effect between invocation and
//! completion. Unknown-outcome (`info`) writes and cas may take effect at
//! any time after invocation, or never: their return is at infinity.
//! Failed operations and reads without an ok are dropped (a failed cas is
//! taken at its word that it did not apply).
//!
//! Guarantees: a `Valid` verdict means every key has a linearization. A
//! violation names the operation the longest linearizable prefix could not
//! extend. The search is bounded by `states_max` per key and answers
//! `TooComplex` instead of running on; keys are independent, so one complex
//! key does not hide a violation on another. Does not check multi-key
//! transactions (meridian has none).

use std::collections::{HashMap, HashSet};

use super::history::{Function, History, Operation, Outcome};
use super::verdict::{Anomaly, OFFENDING_OPS_MAX, TooComplex, Verdict, Violation};

/// Default bound on configurations explored per key. At a few hundred
/// bytes each this keeps a search well under a gigabyte.
pub const LINEARIZABLE_STATES_MAX: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub states_max: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            states_max: LINEARIZABLE_STATES_MAX,
        }
    }
}

pub fn check(history: &History, params: &Params) -> Verdict {
    let mut verdict = Verdict::default();
    for key in history.keys() {
        let ops: Vec<&Operation> = history.on_key(key).filter(|op| is_candidate(op)).collect();
        match search(&ops, params.states_max) {
            Search::Linearizable => {}
            Search::Stuck(stuck) => verdict.violations.push(stuck.violation(key, &ops)),
            Search::TooComplex { states_explored } => verdict.too_complex.push(TooComplex {
                key: key.to_string(),
                states_explored,
            }),
        }
    }
    verdict
}

/// Which operations constrain the register; see the module header.
fn is_candidate(op: &Operation) -> bool {
    match (op.function(), op.outcome()) {
        (_, Outcome::Fail) => false,
        (Function::Read, outcome) => outcome == Outcome::Ok,
        (Function::Write | Function::Cas, _) => true,
        _ => false,
    }
}

/// Register values interned to small numbers; 0 is "absent".
type Value = u32;
const ABSENT: Value = 0;

#[derive(Debug, Clone, Copy)]
enum Step {
    Read(Value),
    Write(Value),
    Cas { expected: Value, new: Value },
}

/// The register model: the value after `step`, or `None` if `step` cannot
/// take effect in `state`.
fn apply(state: Value, step: Step) -> Option<Value> {
    match step {
        Step::Read(seen) => (seen == state).then_some(state),
        Step::Write(new) => Some(new),
        Step::Cas { expected, new } => (expected == state).then_some(new),
    }
}

#[derive(Default)]
struct Interner(HashMap<String, Value>);

impl Interner {
    fn intern(&mut self, value: Option<&str>) -> Value {
        let Some(text) = value else { return ABSENT };
        let next = self.0.len() as Value + 1;
        *self.0.entry(text.to_string()).or_insert(next)
    }

    fn name(&self, value: Value) -> String {
        self.0
            .iter()
            .find(|(_, v)| **v == value)
            .map_or_else(|| "absent".to_string(), |(k, _)| format!("{k:?}"))
    }
}

fn steps(ops: &[&Operation], interner: &mut Interner) -> Vec<Step> {
    ops.iter()
        .map(|op| match op.function() {
            Function::Read => {
                let seen = op.ok_completion().and_then(|c| c.value.as_deref());
                Step::Read(interner.intern(seen))
            }
            Function::Cas => Step::Cas {
                expected: interner.intern(op.invoke.expected.as_deref()),
                new: interner.intern(op.written_value()),
            },
            _ => Step::Write(interner.intern(op.written_value())),
        })
        .collect()
}

enum Search {
    Linearizable,
    Stuck(Stuck),
    TooComplex { states_explored: usize },
}

/// The deepest point the search reached: `linearized` ops in order, then
/// `op` could not be placed with the register holding `state`.
struct Stuck {
    depth: usize,
    op: usize,
    state_name: String,
    last_linearized: Vec<usize>,
}

impl Stuck {
    fn violation(&self, key: &str, ops: &[&Operation]) -> Violation {
        let mut offending = vec![ops[self.op]];
        offending.extend(self.last_linearized.iter().rev().map(|i| ops[*i]));
        let state = &self.state_name;
        let detail = format!(
            "{} of {} operations linearize, leaving the value {state}; the first operation below \
             cannot follow them (then the last ones linearized, newest first)",
            self.depth,
            ops.len()
        );
        Violation::on_key(Anomaly::NotLinearizable, key, &offending, detail)
    }
}

/// The events in real-time order as a doubly linked list over arrays, so
/// lifting and unlifting an operation's call and return are O(1).
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each event node: (operation, is its return, return is at infinity).
    node: Vec<(usize, bool, bool)>,
    /// For each operation: its call node and its return node.
    nodes_of: Vec<(usize, usize)>,
}

const HEAD: usize = 0;

impl Events {
    fn new(ops: &[&Operation]) -> Self {
        let mut order: Vec<(usize, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke_at, false, i));
            order.push((op.returned_at().unwrap_or(usize::MAX), true, i));
        }
        order.sort_unstable();
        let tail = order.len() + 1;
        let mut node = vec![(0, false, false); tail + 1];
        let mut nodes_of = vec![(0, 0); ops.len()];
        for (slot, (time, is_return, op)) in order.into_iter().enumerate() {
            let n = slot + 1;
            node[n] = (op, is_return, time == usize::MAX);
            if is_return {
                nodes_of[op].1 = n;
            } else {
                nodes_of[op].0 = n;
            }
        }
        Self {
            next: (1..=tail + 1).collect(),
            prev: (0..=tail).map(|n| n.saturating_sub(1)).collect(),
            node,
            nodes_of,
        }
    }

    fn is_tail(&self, n: usize) -> bool {
        n == self.node.len() - 1
    }

    fn unlink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = x;
        self.prev[x] = p;
    }

    fn relink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = n;
        self.prev[x] = n;
    }

    fn lift(&mut self, op: usize) {
        let (call, ret) = self.nodes_of[op];
        self.unlink(call);
        self.unlink(ret);
    }

    /// Undoes the matching `lift`; lifts are undone in reverse order.
    fn unlift(&mut self, op: usize) {
        let (call, ret) = self.nodes_of[op];
        self.relink(ret);
        self.relink(call);
    }
}

fn search(ops: &[&Operation], states_max: usize) -> Search {
    let mut interner = Interner::default();
    let steps = steps(ops, &mut interner);
    let mut events = Events::new(ops);
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, Value)> = HashSet::new();
    // (operation linearized, register value before it)
    let mut stack: Vec<(usize, Value)> = Vec::new();
    let mut state = ABSENT;
    let mut deepest: Option<Stuck> = None;
    let mut entry = events.next[HEAD];
    loop {
        if events.is_tail(entry) {
            return Search::Linearizable;
        }
        let (op, is_return, at_infinity) = events.node[entry];
        if !is_return {
            if let Some(after) = apply(state, steps[op]) {
                let mut bits = linearized.clone();
                bits[op / 64] |= 1 << (op % 64);
                if !seen.contains(&(bits.clone(), after)) {
                    if seen.len() >= states_max {
                        return Search::TooComplex {
                            states_explored: seen.len(),
                        };
                    }
                    seen.insert((bits.clone(), after));
                    stack.push((op, state));
                    state = after;
                    linearized = bits;
                    events.lift(op);
                    entry = events.next[HEAD];
                    continue;
                }
            }
            entry = events.next[entry];
            continue;
        }
        // Every definite return comes before the first one at infinity, so
        // reaching it means every ok operation is linearized; the remaining
        // unknown-outcome operations simply never took effect.
        if at_infinity {
            return Search::Linearizable;
        }
        if deepest.as_ref().is_none_or(|d| stack.len() > d.depth) {
            deepest = Some(stuck_at(&stack, op, state, &interner));
        }
        let Some((undo, before)) = stack.pop() else {
            return match deepest {
                Some(stuck) => Search::Stuck(stuck),
                None => Search::Linearizable,
            };
        };
        state = before;
        linearized[undo / 64] &= !(1 << (undo % 64));
        events.unlift(undo);
        entry = events.next[events.nodes_of[undo].0];
    }
}

fn stuck_at(stack: &[(usize, Value)], op: usize, state: Value, interner: &Interner) -> Stuck {
    let tail_len = OFFENDING_OPS_MAX - 1;
    let from = stack.len().saturating_sub(tail_len);
    Stuck {
        depth: stack.len(),
        op,
        state_name: interner.name(state),
        last_linearized: stack[from..].iter().map(|(i, _)| *i).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::history::build::*;
    use crate::verify::history::{Op, OpKind};

    fn ok(p: u64, f: Function, key: &str) -> Op {
        complete(p, OpKind::Ok, f, key)
    }

    fn read_ok(p: u64, value: Option<&str>) -> Op {
        let mut op = ok(p, Function::Read, "k");
        op.value = value.map(str::to_string);
        op
    }

    fn cas(p: u64, expected: &str, new: &str) -> Op {
        let mut op = invoke(p, Function::Cas, "k", Some(new));
        op.expected = Some(expected.to_string());
        op
    }

    fn small() -> Params {
        Params { states_max: 50 }
    }

    #[test]
    fn sequential_and_concurrent_histories_pass() {
        let h = history(vec![
            invoke(1, Function::Read, "k", None),
            read_ok(1, None),
            invoke(1, Function::Write, "k", Some("1")),
            ok(1, Function::Write, "k"),
            // p2 writes 2 while p1 reads: either value is fine.
            invoke(2, Function::Write, "k", Some("2")),
            invoke(1, Function::Read, "k", None),
            read_ok(1, Some("2")),
            invoke(3, Function::Read, "k", None),
            read_ok(3, Some("2")),
            ok(2, Function::Write, "k"),
            cas(1, "2", "3"),
            ok(1, Function::Cas, "k"),
            invoke(3, Function::Read, "k", None),
            read_ok(3, Some("3")),
        ]);
        let verdict = check(&h, &Params::default());
        assert!(verdict.is_valid(), "{verdict:?}");
    }

    #[test]
    fn stale_read_after_an_acknowledged_write_is_caught() {
        let h = history(vec![
            invoke(1, Function::Write, "k", Some("1")),
            ok(1, Function::Write, "k"),
            invoke(1, Function::Write, "k", Some("2")),
            ok(1, Function::Write, "k"),
            invoke(2, Function::Read, "k", None),
            read_ok(2, Some("1")),
        ]);
        let verdict = check(&h, &Params::default());
        assert!(verdict.has(Anomaly::NotLinearizable), "{verdict:?}");
        let violation = &verdict.violations[0];
        assert_eq!(violation.ops[0].function(), Function::Read);
        assert!(violation.detail.contains("2 of 3"), "{}", violation.detail);
    }

    #[test]
    fn lost_update_via_cas_is_caught() {
        // Both cas from 0 succeed: one of them must have seen the other.
        let h = history(vec![
            invoke(1, Function::Write, "k", Some("0")),
            ok(1, Function::Write, "k"),
            cas(1, "0", "1"),
            cas(2, "0", "2"),
            ok(1, Function::Cas, "k"),
            ok(2, Function::Cas, "k"),
        ]);
        assert!(check(&h, &Params::default()).has(Anomaly::NotLinearizable));
    }

    #[test]
    fn failed_cas_is_not_an_update() {
        let h = history(vec![
            invoke(1, Function::Write, "k", Some("0")),
            ok(1, Function::Write, "k"),
            cas(1, "0", "1"),
            cas(2, "0", "2"),
            ok(1, Function::Cas, "k"),
            complete(2, OpKind::Fail, Function::Cas, "k"),
            invoke(2, Function::Read, "k", None),
            read_ok(2, Some("1")),
        ]);
        assert!(check(&h, &Params::default()).is_valid());
    }

    #[test]
    fn a_value_never_written_is_caught() {
        let h = history(vec![
            invoke(1, Function::Write, "k", Some("1")),
            ok(1, Function::Write, "k"),
            invoke(2, Function::Read, "k", None),
            read_ok(2, Some("ghost")),
        ]);
        assert!(check(&h, &Params::default()).has(Anomaly::NotLinearizable));
    }

    #[test]
    fn an_info_write_may_appear_later() {
        let h = history(vec![
            invoke(1, Function::Write, "k", Some("1")),
            ok(1, Function::Write, "k"),
            invoke(2, Function::Write, "k", Some("2")),
            complete(2, OpKind::Info, Function::Write, "k"),
            invoke(3, Function::Read, "k", None),
            read_ok(3, Some("1")),
            // Long after the timeout the write lands: still linearizable.
            invoke(3, Function::Read, "k", None),
            read_ok(3, Some("2")),
        ]);
        let verdict = check(&h, &Params::default());
        assert!(verdict.is_valid(), "{verdict:?}");
    }

    #[test]
    fn an_info_write_cannot_be_undone() {
        let h = history(vec![
            invoke(1, Function::Write, "k", Some("1")),
            ok(1, Function::Write, "k"),
            invoke(2, Function::Write, "k", Some("2")),
            complete(2, OpKind::Info, Function::Write, "k"),
            invoke(3, Function::Read, "k", None),
            read_ok(3, Some("2")),
            invoke(3, Function::Read, "k", None),
            read_ok(3, Some("1")),
        ]);
        assert!(check(&h, &Params::default()).has(Anomaly::NotLinearizable));
    }

    #[test]
    fn keys_are_checked_independently() {
        let h = history(vec![
            invoke(1, Function::Write, "a", Some("1")),
            ok(1, Function::Write, "a"),
            invoke(2, Function::Read, "b", None),
            with_value(ok(2, Function::Read, "b"), "1"),
        ]);
        let verdict = check(&h, &Params::default());
        assert_eq!(verdict.violations.len(), 1);
        assert_eq!(verdict.violations[0].key.as_deref(), Some("b"));
    }

    #[test]
    fn an_adversarial_history_is_too_complex_not_a_hang() {
        // Twelve unknown-outcome writes, then a read of a value none wrote:
        // refuting it means trying every subset and order of the writes.
        let mut ops = Vec::new();
        for p in 0..12 {
            ops.push(invoke(p, Function::Write, "k", Some(&p.to_string())));
        }
        ops.push(invoke(99, Function::Read, "k", None));
        ops.push(read_ok(99, Some("ghost")));
        let verdict = check(&history(ops), &small());
        assert!(verdict.violations.is_empty(), "{verdict:?}");
        assert_eq!(verdict.too_complex.len(), 1);
        assert_eq!(verdict.too_complex[0].states_explored, 50);
        assert!(!verdict.is_valid());
    }
}
