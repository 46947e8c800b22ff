//! Runs every checker of a verify run on its recorded history: each on the
//! sub-history of its workload's keys, and convergence on the replicas'
//! state digests. The checkers themselves are pure functions in their own
//! files; this file only cuts the history and collects the verdicts.
//!
//! A write a failover lost (the conflict feed accounts for it) was seen
//! before the fork and is gone after it: for the prefix and the staleness
//! of reads it counts as a write of unknown outcome, which may be visible
//! or not. Durability still judges it as acknowledged, and needs the feed
//! to excuse it.

use std::collections::{BTreeMap, BTreeSet};

use crate::consistency::Consistency;
use crate::ids::{RegionId, ReplicaId};
use crate::verify::durability::{self, AccountedWrite};
use crate::verify::history::{History, HistoryError, Op, OpKind};
use crate::verify::staleness::{self, RegionFigures};
use crate::verify::verdict::Verdict;
use crate::verify::{convergence, linearizable, prefix, session};

pub struct CheckResult {
    pub name: &'static str,
    pub operations: usize,
    /// Why the checker did not run (its workload needs a level stronger
    /// than the account default); its verdict is then empty.
    pub skipped: Option<String>,
    pub verdict: Verdict,
}

/// The sub-history each checker judges.
struct Histories {
    registers: History,
    sessions: History,
    /// With the writes a failover lost as unknown outcomes.
    prefixes: History,
    /// With the writes a failover lost as unknown outcomes.
    bounded: History,
    /// Exactly the keys the final read-out covers.
    read_out: History,
}

impl Histories {
    /// Cuts `ops` into the sub-history of each checker.
    fn cut(
        ops: &[Op],
        final_state: &BTreeMap<String, BTreeSet<String>>,
        lost: &[AccountedWrite],
    ) -> Result<Self, HistoryError> {
        let surviving = lost_as_unknown(ops, lost);
        Ok(Self {
            registers: on_keys(ops, "reg/")?,
            sessions: on_keys(ops, "sess/")?,
            prefixes: on_keys(&surviving, "pfx/")?,
            bounded: on_keys(&surviving, "bnd/")?,
            read_out: History::from_ops(
                ops.iter()
                    .filter(|o| final_state.contains_key(&o.key))
                    .cloned()
                    .collect(),
            )?,
        })
    }
}

/// Every checker's result, and what the staleness checker measured by
/// region. `skipped` says why a checker of a workload at a level did not
/// run, if it did not.
pub fn run_checkers(
    ops: &[Op],
    durability_params: durability::Params<'_>,
    digests: &[(ReplicaId, String)],
    staleness_params: &staleness::Params,
    skipped: impl Fn(Consistency) -> Option<String>,
) -> Result<(Vec<CheckResult>, BTreeMap<RegionId, RegionFigures>), HistoryError> {
    let h = Histories::cut(
        ops,
        durability_params.final_state,
        durability_params.accounted,
    )?;
    let staleness = staleness::judge(&h.bounded, staleness_params);
    let check = |name, history: &History, level, verdict| CheckResult {
        name,
        operations: history.operations().len(),
        skipped: skipped(level),
        verdict,
    };
    let checks = vec![
        check(
            "linearizable (strong registers)",
            &h.registers,
            Consistency::Strong,
            linearizable::check(&h.registers, &linearizable::Params::default()),
        ),
        check(
            "session guarantees",
            &h.sessions,
            Consistency::Session,
            session::check(&h.sessions),
        ),
        check(
            "consistent prefix",
            &h.prefixes,
            Consistency::Session,
            prefix::check(&h.prefixes),
        ),
        check(
            "bounded staleness (K, T)",
            &h.bounded,
            Consistency::BoundedStaleness,
            staleness.verdict,
        ),
        check(
            "durability (registers, set)",
            &h.read_out,
            Consistency::Eventual,
            durability::check(&h.read_out, &durability_params),
        ),
        CheckResult {
            name: "convergence",
            operations: digests.len(),
            skipped: None,
            verdict: convergence::check(digests),
        },
    ];
    Ok((checks, staleness.regions))
}

/// `ops` with the acknowledgement of every write `lost` names turned into
/// an unknown outcome (a completion carries its write's key and value).
fn lost_as_unknown(ops: &[Op], lost: &[AccountedWrite]) -> Vec<Op> {
    let lost: BTreeSet<(&str, &str)> = lost
        .iter()
        .map(|w| (w.key.as_str(), w.value.as_str()))
        .collect();
    ops.iter()
        .map(|o| {
            let mut o = o.clone();
            if o.kind == OpKind::Ok
                && o.function.is_write()
                && o.value
                    .as_deref()
                    .is_some_and(|v| lost.contains(&(o.key.as_str(), v)))
            {
                o.kind = OpKind::Info;
            }
            o
        })
        .collect()
}

/// The sub-history of operations on keys starting with `prefix`.
fn on_keys(ops: &[Op], prefix: &str) -> Result<History, HistoryError> {
    History::from_ops(
        ops.iter()
            .filter(|o| o.key.starts_with(prefix))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_lost_to_a_failover_count_as_unknown_outcomes_for_prefix_and_staleness() {
        use crate::verify::history::Function;
        use crate::verify::history::build::{complete, invoke, with_value};
        let write = |value: &str| {
            vec![
                invoke(1, Function::Write, "pfx/w1/a", Some(value)),
                with_value(complete(1, OpKind::Ok, Function::Write, "pfx/w1/a"), value),
            ]
        };
        let ops: Vec<Op> = [write("1"), write("2"), write("3")].concat();
        let lost = [AccountedWrite {
            key: "pfx/w1/a".into(),
            value: "2".into(),
        }];
        let kinds: Vec<(Option<String>, OpKind)> = lost_as_unknown(&ops, &lost)
            .into_iter()
            .map(|o| (o.value, o.kind))
            .collect();
        let v = |v: &str| Some(v.to_string());
        assert_eq!(
            kinds,
            vec![
                (v("1"), OpKind::Invoke),
                (v("1"), OpKind::Ok),
                (v("2"), OpKind::Invoke),
                (v("2"), OpKind::Info),
                (v("3"), OpKind::Invoke),
                (v("3"), OpKind::Ok),
            ]
        );
    }
}
