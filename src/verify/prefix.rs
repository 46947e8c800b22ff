//! Consistent prefix: no read sees write n+1 of a writer without write n.
//!
//! Each process is a writer; its writes (function `write`), in the order
//! it issued them, are its sequence 1, 2, 3 … Values are unique per key, so
//! the value a read saw names the write. A write is to its own key (one
//! key per position) or to a few keys in turn (ordered pairs: `x=n` then
//! `y=n`); reads are scans over a key prefix, or single-key reads.
//!
//! Rule: if a read saw write n of writer w, then for every key k the read
//! covers that w wrote with an acknowledged write m < n, the read's value
//! at k must be w's write m or a later one. An absent key, or an earlier
//! write of w, is a gap. A value no write sent, or one whose write failed,
//! is an unknown value.
//!
//! A write of unknown outcome may take effect at any later time, or never
//! (as in the linearizability checker): it may be missing, and a read that
//! shows it may show it over a later write of its writer, because it may
//! have landed after that one.
//!
//! Does not judge: writes of unknown outcome beyond that, keys
//! whose value at the read came from a different writer (the workload
//! gives each key one writer), or cross-writer order (the global order is
//! checked through GLSNs by the session and staleness checkers).

use std::collections::{BTreeMap, HashMap};

use super::history::{Function, History, Operation, Outcome};
use super::verdict::{Anomaly, Verdict, Violation};

/// One write of a writer's sequence.
#[derive(Clone, Copy)]
struct Position<'a> {
    seq: usize,
    op: &'a Operation,
}

/// The writers' sequences, indexed for the checks.
struct Writes<'a> {
    /// (key, value) -> the write that sent it.
    by_value: HashMap<(&'a str, &'a str), Position<'a>>,
    /// (writer, key) -> its acknowledged writes to the key, by seq.
    acked: HashMap<(u64, &'a str), Vec<Position<'a>>>,
    /// Every key some write named, to find the absent keys of a scan.
    keys: Vec<&'a str>,
}

impl<'a> Writes<'a> {
    fn of(history: &'a History) -> Self {
        let mut seqs: HashMap<u64, usize> = HashMap::new();
        let mut by_value = HashMap::new();
        let mut acked: HashMap<(u64, &str), Vec<Position>> = HashMap::new();
        for op in history.operations() {
            let (Function::Write, Some(value)) = (op.function(), op.written_value()) else {
                continue;
            };
            let seq = seqs.entry(op.process().0).or_default();
            *seq += 1;
            let position = Position { seq: *seq, op };
            by_value.insert((op.key(), value), position);
            if op.is_ok() {
                acked
                    .entry((op.process().0, op.key()))
                    .or_default()
                    .push(position);
            }
        }
        let mut keys: Vec<&str> = by_value.keys().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        Self {
            by_value,
            acked,
            keys,
        }
    }

    /// Writer `w`'s last acknowledged write to `key` before its write `n`.
    fn required(&self, w: u64, key: &str, n: usize) -> Option<Position<'a>> {
        let acked = self.acked.get(&(w, key))?;
        acked.iter().rev().find(|p| p.seq < n).copied()
    }
}

pub fn check(history: &History) -> Verdict {
    let writes = Writes::of(history);
    let mut verdict = Verdict::default();
    for op in history.operations() {
        if let Some(seen) = observed(op, &writes) {
            verdict.violations.extend(judge_read(op, &seen, &writes));
        }
    }
    verdict
}

/// What an ok read saw: key -> value, `None` for a key it covers that was
/// absent.
fn observed<'a>(
    op: &'a Operation,
    writes: &Writes<'a>,
) -> Option<BTreeMap<&'a str, Option<&'a str>>> {
    let done = op.ok_completion()?;
    match op.function() {
        Function::Read => Some(BTreeMap::from([(op.key(), done.value.as_deref())])),
        Function::Scan => {
            let entries = done.entries.as_ref()?;
            let covered = writes.keys.iter().filter(|k| k.starts_with(op.key()));
            let mut seen: BTreeMap<&str, Option<&str>> = covered.map(|k| (*k, None)).collect();
            seen.extend(entries.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))));
            Some(seen)
        }
        _ => None,
    }
}

/// At most one violation of each kind per read: the first shows the bug,
/// the rest would repeat it.
fn judge_read(
    read: &Operation,
    seen: &BTreeMap<&str, Option<&str>>,
    writes: &Writes,
) -> Vec<Violation> {
    let mut unknown = None;
    let mut gap = None;
    for (&key, &value) in seen {
        let Some(value) = value else { continue };
        match writes.by_value.get(&(key, value)) {
            Some(p) if p.op.outcome() != Outcome::Fail => {
                gap = gap.or_else(|| find_gap(read, *p, seen, writes));
            }
            found => {
                let detail = format!("{key:?} = {value:?}, which no successful write sent");
                let ops: Vec<&Operation> = [Some(read), found.map(|p| p.op)]
                    .into_iter()
                    .flatten()
                    .collect();
                unknown = unknown.or(Some(Violation::on_key(
                    Anomaly::UnknownValue,
                    key,
                    &ops,
                    detail,
                )));
            }
        }
    }
    unknown.into_iter().chain(gap).collect()
}

/// The first key where `read` misses an earlier write of the writer of
/// `write`, which it saw.
fn find_gap(
    read: &Operation,
    write: Position,
    seen: &BTreeMap<&str, Option<&str>>,
    writes: &Writes,
) -> Option<Violation> {
    let writer = write.op.process().0;
    seen.iter().find_map(|(&key, &value)| {
        let required = writes.required(writer, key, write.seq)?;
        let at_key = value.and_then(|v| writes.by_value.get(&(key, v)));
        let covered = match at_key {
            Some(p) if p.op.process().0 == writer => {
                p.seq >= required.seq || p.op.outcome() == Outcome::Unknown
            }
            Some(_) => true,
            None => false,
        };
        (!covered).then(|| {
            let detail = format!(
                "saw write {} of {} but not its write {} (to {key:?})",
                write.seq,
                write.op.process(),
                required.seq
            );
            Violation::on_key(
                Anomaly::PrefixGap,
                key,
                &[read, write.op, required.op],
                detail,
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::history::build::*;
    use crate::verify::history::{Op, OpKind};

    fn write(p: u64, key: &str, value: &str, kind: OpKind) -> Vec<Op> {
        vec![
            invoke(p, Function::Write, key, Some(value)),
            complete(p, kind, Function::Write, key),
        ]
    }

    fn scan(p: u64, prefix: &str, entries: &[(&str, &str)]) -> Vec<Op> {
        let mut done = complete(p, OpKind::Ok, Function::Scan, prefix);
        done.entries = Some(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        vec![invoke(p, Function::Scan, prefix, None), done]
    }

    /// Writer 1 writes the ordered pairs x=1, y=1, x=2, y=2.
    fn pairs() -> Vec<Vec<Op>> {
        vec![
            write(1, "x", "1", OpKind::Ok),
            write(1, "y", "1", OpKind::Ok),
            write(1, "x", "2", OpKind::Ok),
            write(1, "y", "2", OpKind::Ok),
        ]
    }

    fn verdict(mut parts: Vec<Vec<Op>>, reads: Vec<Vec<Op>>) -> Verdict {
        parts.extend(reads);
        check(&history(parts.concat()))
    }

    #[test]
    fn prefixes_of_ordered_pairs_pass() {
        let reads = vec![
            scan(2, "", &[]),
            scan(2, "", &[("x", "1")]),
            scan(2, "", &[("x", "1"), ("y", "1")]),
            scan(2, "", &[("x", "2"), ("y", "1")]),
            scan(2, "", &[("x", "2"), ("y", "2")]),
        ];
        let v = verdict(pairs(), reads);
        assert!(v.is_valid(), "{v:?}");
    }

    #[test]
    fn a_pair_read_out_of_order_is_a_gap() {
        let v = verdict(pairs(), vec![scan(2, "", &[("x", "1"), ("y", "2")])]);
        assert!(v.has(Anomaly::PrefixGap), "{v:?}");
        let v = verdict(pairs(), vec![scan(2, "", &[("y", "1")])]);
        assert!(v.has(Anomaly::PrefixGap), "{v:?}");
    }

    #[test]
    fn a_gap_in_positions_is_caught() {
        let writes = vec![
            write(1, "w1-1", "a", OpKind::Ok),
            write(1, "w1-2", "b", OpKind::Ok),
            write(1, "w1-3", "c", OpKind::Ok),
        ];
        let v = verdict(
            writes,
            vec![scan(2, "w1-", &[("w1-1", "a"), ("w1-3", "c")])],
        );
        assert!(v.has(Anomaly::PrefixGap), "{v:?}");
        assert_eq!(v.violations[0].key.as_deref(), Some("w1-2"));
    }

    #[test]
    fn failed_and_unknown_writes_may_be_missing() {
        let writes = vec![
            write(1, "w1-1", "a", OpKind::Fail),
            write(1, "w1-2", "b", OpKind::Info),
            write(1, "w1-3", "c", OpKind::Ok),
        ];
        let v = verdict(writes, vec![scan(2, "w1-", &[("w1-3", "c")])]);
        assert!(v.is_valid(), "{v:?}");
    }

    #[test]
    fn an_unknown_write_that_lands_late_is_not_a_gap() {
        // x=1 timed out; x=2 and y=2 were acknowledged after it. A read of
        // x=1 with y=2 is a prefix of an order in which x=1 landed last.
        let writes = vec![
            write(1, "x", "1", OpKind::Info),
            write(1, "y", "1", OpKind::Ok),
            write(1, "x", "2", OpKind::Ok),
            write(1, "y", "2", OpKind::Ok),
        ];
        let v = verdict(writes, vec![scan(2, "", &[("x", "1"), ("y", "2")])]);
        assert!(v.is_valid(), "{v:?}");
        // Acknowledged, the same x=1 could not have landed after x=2.
        let v = verdict(pairs(), vec![scan(2, "", &[("x", "1"), ("y", "2")])]);
        assert!(v.has(Anomaly::PrefixGap), "{v:?}");
    }

    #[test]
    fn a_failed_write_seen_is_an_unknown_value() {
        let writes = vec![write(1, "w1-1", "a", OpKind::Fail)];
        let v = verdict(writes, vec![scan(2, "w1-", &[("w1-1", "a")])]);
        assert!(v.has(Anomaly::UnknownValue), "{v:?}");
        let v = verdict(pairs(), vec![scan(2, "", &[("x", "ghost")])]);
        assert!(v.has(Anomaly::UnknownValue), "{v:?}");
    }
}
