//! Durability: every acknowledged write is present at the end, or
//! accounted for, once, by the conflict feed.
//!
//! Input: the history, a final read-out (key -> the set of values there:
//! an append set's elements, or a register's one value), and the
//! conflict feed's UNREPLICATED_WRITE entries, which name writes a
//! failover left out of the new history.
//!
//! Rules:
//! - an acknowledged append must be an element of its key's final set;
//! - an acknowledged write or cas must be its key's final value, unless
//!   another write to the key that did not fail could have come after it
//!   (one that did not complete before this one was invoked);
//! - a missing write is excused by an entry naming its key and value; an
//!   entry may excuse one write only, and a second entry naming the same
//!   write is itself a violation (the feed reported a loss twice);
//! - unknown-outcome writes may be present or not.
//!
//! Does not judge: whether an entry names a write that is in fact present,
//! or values present at the end that no write sent (the prefix and
//! linearizability checkers catch those on reads).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::history::{Function, History, Operation, Outcome};
use super::verdict::{Anomaly, Verdict, Violation};

/// A conflict-feed entry of kind `unreplicated_write`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountedWrite {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    pub final_state: &'a BTreeMap<String, BTreeSet<String>>,
    pub accounted: &'a [AccountedWrite],
}

pub fn check(history: &History, params: &Params) -> Verdict {
    let mut verdict = Verdict::default();
    let accounted = count_entries(history, params.accounted, &mut verdict);
    for op in history.operations() {
        if op.is_ok() && op.function().is_write() && is_lost(op, history, params) {
            let (key, value) = (op.key(), op.written_value().unwrap_or_default());
            if !accounted.contains(&(key, value)) {
                let detail = format!("acknowledged {value:?} is not in the final state");
                verdict
                    .violations
                    .push(Violation::on_key(Anomaly::LostWrite, key, &[op], detail));
            }
        }
    }
    verdict
}

/// The writes the feed accounts for; reports every entry after the first
/// that names the same write.
fn count_entries<'a>(
    history: &History,
    entries: &'a [AccountedWrite],
    verdict: &mut Verdict,
) -> BTreeSet<(&'a str, &'a str)> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for entry in entries {
        let name = (entry.key.as_str(), entry.value.as_str());
        let times = seen.entry(name).or_default();
        *times += 1;
        if *times == 2 {
            let ops: Vec<&Operation> = history
                .on_key(&entry.key)
                .filter(|op| op.written_value() == Some(entry.value.as_str()))
                .collect();
            let detail = format!(
                "the conflict feed reports {:?} as lost more than once",
                entry.value
            );
            verdict.violations.push(Violation::on_key(
                Anomaly::AccountedTwice,
                &entry.key,
                &ops,
                detail,
            ));
        }
    }
    seen.into_keys().collect()
}

/// Is this acknowledged write missing from the final state, where the
/// rules say it must be?
fn is_lost(op: &Operation, history: &History, params: &Params) -> bool {
    let Some(value) = op.written_value() else {
        return false;
    };
    let present = params
        .final_state
        .get(op.key())
        .is_some_and(|values| values.contains(value));
    if present {
        return false;
    }
    match op.function() {
        Function::Append => true,
        _ => !overwritten(op, history),
    }
}

/// Could another register write to the key have replaced this one?
fn overwritten(op: &Operation, history: &History) -> bool {
    history.on_key(op.key()).any(|other| {
        other.id != op.id
            && matches!(other.function(), Function::Write | Function::Cas)
            && other.outcome() != Outcome::Fail
            && !other.precedes(op)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::history::build::*;
    use crate::verify::history::{Op, OpKind};

    fn op(p: u64, f: Function, key: &str, value: &str, kind: OpKind) -> Vec<Op> {
        vec![invoke(p, f, key, Some(value)), complete(p, kind, f, key)]
    }

    fn appends() -> History {
        history(
            [
                op(1, Function::Append, "s", "a", OpKind::Ok),
                op(2, Function::Append, "s", "b", OpKind::Ok),
                op(3, Function::Append, "s", "c", OpKind::Info),
                op(4, Function::Append, "s", "d", OpKind::Info),
                op(5, Function::Append, "s", "e", OpKind::Fail),
            ]
            .concat(),
        )
    }

    fn state(entries: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        entries
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    fn entry(key: &str, value: &str) -> AccountedWrite {
        AccountedWrite {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn acknowledged_writes_present_pass_and_unknown_ones_may_go_either_way() {
        let final_state = state(&[("s", &["a", "b", "c"])]);
        let params = Params {
            final_state: &final_state,
            accounted: &[],
        };
        let v = check(&appends(), &params);
        assert!(v.is_valid(), "{v:?}");
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let final_state = state(&[("s", &["a", "c"])]);
        let params = Params {
            final_state: &final_state,
            accounted: &[],
        };
        let v = check(&appends(), &params);
        assert!(v.has(Anomaly::LostWrite), "{v:?}");
        assert_eq!(v.violations.len(), 1);
        assert_eq!(v.violations[0].ops[0].written_value(), Some("b"));
    }

    #[test]
    fn a_write_accounted_for_by_the_feed_is_not_lost() {
        let final_state = state(&[("s", &["a"])]);
        let accounted = [entry("s", "b")];
        let params = Params {
            final_state: &final_state,
            accounted: &accounted,
        };
        assert!(check(&appends(), &params).is_valid());
    }

    #[test]
    fn a_write_accounted_twice_is_caught() {
        let final_state = state(&[("s", &["a"])]);
        let accounted = [entry("s", "b"), entry("s", "b")];
        let params = Params {
            final_state: &final_state,
            accounted: &accounted,
        };
        let v = check(&appends(), &params);
        assert!(v.has(Anomaly::AccountedTwice), "{v:?}");
        assert!(!v.has(Anomaly::LostWrite));
    }

    #[test]
    fn an_overwritten_register_write_is_not_lost_but_a_rollback_is() {
        let h = history(
            [
                op(1, Function::Write, "r", "1", OpKind::Ok),
                op(1, Function::Write, "r", "2", OpKind::Ok),
            ]
            .concat(),
        );
        let latest = state(&[("r", &["2"])]);
        let params = Params {
            final_state: &latest,
            accounted: &[],
        };
        assert!(check(&h, &params).is_valid());
        let rolled_back = state(&[("r", &["1"])]);
        let params = Params {
            final_state: &rolled_back,
            accounted: &[],
        };
        let v = check(&h, &params);
        assert!(v.has(Anomaly::LostWrite), "{v:?}");
        assert_eq!(v.violations[0].ops[0].written_value(), Some("2"));
    }
}
