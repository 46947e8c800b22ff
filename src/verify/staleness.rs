//! Bounded staleness: no ok read returns a version more than K versions,
//! or missing a write acknowledged more than T ms, behind the writes
//! acknowledged before the read was invoked.
//!
//! Per key, versions are ordered by GLSN. A read dated `v` "misses" every
//! write to its key acknowledged before the read was invoked with a GLSN
//! above `v`. Its lag in versions is the number of known versions in
//! `(v, newest missed]`; its lag in time is from the acknowledgement of
//! the oldest write it missed to its own invocation (monotonic clock).
//! Known versions are those of acknowledged writes plus any a read
//! revealed (an unknown-outcome write that did land).
//!
//! Guarantees: any reported read really is that far behind. Does not
//! judge: reads that cannot be dated, unknown-outcome writes that no read
//! revealed (so the version lag is a lower bound), or the writer side of
//! the bound (throttling). Cost is reads × writes per key.
//!
//! Besides the verdict, [`judge`] reports per serving region how many
//! reads it judged, how many of them missed a write, and the largest lag
//! it saw: a run across regions uses these figures to show that the bound
//! was judged on reads that really trailed the write region, not passed
//! vacuously.

use std::collections::{BTreeMap, BTreeSet};

use crate::glsn::Glsn;
use crate::ids::RegionId;

use super::history::{Function, History, Operation, Versions};
use super::verdict::{Anomaly, Verdict, Violation};

const NANOS_PER_MS: u64 = 1_000_000;

/// K and T of the account's bounded-staleness setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub versions_max: u64,
    pub lag_ms_max: u64,
}

/// What the checker measured on the reads one region served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegionFigures {
    /// Ok reads that could be dated, hence judged.
    pub reads_judged: usize,
    /// Judged reads that missed at least one write acknowledged before
    /// they were invoked.
    pub reads_behind: usize,
    pub versions_behind_max: u64,
    pub lag_ms_max: u64,
}

/// The verdict and the figures behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// By the region that served the read; reads recorded without one are
    /// under [`REGION_UNRECORDED`].
    pub regions: BTreeMap<RegionId, RegionFigures>,
}

/// Reads judged that a region other than `write_region` served.
pub fn reads_judged_outside(
    regions: &BTreeMap<RegionId, RegionFigures>,
    write_region: &RegionId,
) -> usize {
    regions
        .iter()
        .filter(|(r, _)| *r != write_region)
        .map(|(_, f)| f.reads_judged)
        .sum()
}

/// The region name under which reads without `served_by` are counted.
pub const REGION_UNRECORDED: &str = "?";

pub fn check(history: &History, params: &Params) -> Verdict {
    judge(history, params).verdict
}

pub fn judge(history: &History, params: &Params) -> Judgement {
    let versions = Versions::of(history);
    let mut judgement = Judgement::default();
    for key in history.keys() {
        let ops: Vec<&Operation> = history.on_key(key).collect();
        let writes: Vec<(&Operation, Glsn)> = ops
            .iter()
            .filter(|op| op.function().is_write())
            .filter_map(|op| op.ok_glsn().map(|g| (*op, g)))
            .collect();
        let reads: Vec<(&Operation, Glsn)> = ops
            .iter()
            .filter(|op| op.function() == Function::Read)
            .filter_map(|op| versions.of_read(op).map(|v| (*op, v)))
            .collect();
        let known: BTreeSet<Glsn> = writes.iter().chain(&reads).map(|(_, g)| *g).collect();
        for &(read, version) in &reads {
            let lag = lag_of(read, version, &writes, &known);
            judgement
                .regions
                .entry(served_by(read))
                .or_default()
                .add(lag.as_ref());
            if let Some(lag) = lag {
                judgement
                    .verdict
                    .violations
                    .extend(judge_read(read, version, &lag, params));
            }
        }
    }
    judgement
}

impl RegionFigures {
    fn add(&mut self, lag: Option<&ReadLag>) {
        self.reads_judged += 1;
        if let Some(lag) = lag {
            self.reads_behind += 1;
            self.versions_behind_max = self.versions_behind_max.max(lag.versions);
            self.lag_ms_max = self.lag_ms_max.max(lag.ms);
        }
    }
}

fn served_by(read: &Operation) -> RegionId {
    read.completion
        .as_ref()
        .and_then(|(_, op)| op.region.clone())
        .unwrap_or_else(|| RegionId::new(REGION_UNRECORDED))
}

/// How far one read trailed: the writes it missed that show it.
struct ReadLag<'a> {
    versions: u64,
    ms: u64,
    /// The newest write it missed (by GLSN) and the first acknowledged.
    newest: (&'a Operation, Glsn),
    oldest: (&'a Operation, Glsn),
}

/// `None` when the read missed no write acknowledged before it began.
fn lag_of<'a>(
    read: &Operation,
    version: Glsn,
    writes: &[(&'a Operation, Glsn)],
    known: &BTreeSet<Glsn>,
) -> Option<ReadLag<'a>> {
    let missed: Vec<&(&Operation, Glsn)> = writes
        .iter()
        .filter(|(w, g)| w.precedes(read) && *g > version)
        .collect();
    let newest = **missed.iter().max_by_key(|(_, g)| *g)?;
    let oldest = **missed.iter().min_by_key(|(w, _)| acked_ns(w))?;
    let versions = known
        .range(version..=newest.1)
        .filter(|g| **g > version)
        .count() as u64;
    let ms = read.invoke.mono_ns.saturating_sub(acked_ns(oldest.0)) / NANOS_PER_MS;
    Some(ReadLag {
        versions,
        ms,
        newest,
        oldest,
    })
}

fn judge_read(read: &Operation, version: Glsn, lag: &ReadLag, params: &Params) -> Vec<Violation> {
    let (newest, oldest) = (lag.newest, lag.oldest);
    let mut found = Vec::new();
    if lag.versions > params.versions_max {
        let detail = format!(
            "read version {version} is {} versions behind {} (K = {})",
            lag.versions, newest.1, params.versions_max
        );
        found.push(Violation::on_key(
            Anomaly::StaleVersions,
            read.key(),
            &[read, newest.0],
            detail,
        ));
    }
    if lag.ms > params.lag_ms_max {
        let detail = format!(
            "read version {version} misses {}, acknowledged {} ms before the read (T = {} ms)",
            oldest.1, lag.ms, params.lag_ms_max
        );
        found.push(Violation::on_key(
            Anomaly::StaleTime,
            read.key(),
            &[read, oldest.0],
            detail,
        ));
    }
    found
}

/// Monotonic time of a write's acknowledgement; only called on ok writes.
fn acked_ns(write: &Operation) -> u64 {
    write.ok_completion().map_or(u64::MAX, |done| done.mono_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::history::build::*;
    use crate::verify::history::{Op, OpKind};

    const BOUNDS: Params = Params {
        versions_max: 2,
        lag_ms_max: 100,
    };

    fn write(p: u64, value: &str, lsn: u64, ms: u64) -> Vec<Op> {
        let done = with_glsn(complete(p, OpKind::Ok, Function::Write, "k"), lsn);
        vec![
            at_ms(invoke(p, Function::Write, "k", Some(value)), ms),
            at_ms(done, ms),
        ]
    }

    fn read(p: u64, value: &str, lsn: u64, ms: u64) -> Vec<Op> {
        let done = with_glsn(
            with_value(complete(p, OpKind::Ok, Function::Read, "k"), value),
            lsn,
        );
        vec![
            at_ms(invoke(p, Function::Read, "k", None), ms),
            at_ms(done, ms),
        ]
    }

    fn verdict(parts: Vec<Vec<Op>>) -> Verdict {
        check(&history(parts.concat()), &BOUNDS)
    }

    #[test]
    fn reads_within_k_and_t_pass() {
        let v = verdict(vec![
            write(1, "1", 1, 0),
            write(1, "2", 2, 10),
            write(1, "3", 3, 20),
            // Two versions and 20 ms behind: within K = 2, T = 100 ms.
            read(2, "1", 1, 30),
            read(2, "3", 3, 500),
        ]);
        assert!(v.is_valid(), "{v:?}");
    }

    #[test]
    fn a_read_staler_than_k_is_caught() {
        let v = verdict(vec![
            write(1, "1", 1, 0),
            write(1, "2", 2, 1),
            write(1, "3", 3, 2),
            write(1, "4", 4, 3),
            read(2, "1", 1, 4),
        ]);
        assert!(v.has(Anomaly::StaleVersions), "{v:?}");
        assert!(!v.has(Anomaly::StaleTime));
        assert!(v.violations[0].detail.contains("3 versions"));
    }

    #[test]
    fn a_read_staler_than_t_is_caught() {
        let v = verdict(vec![
            write(1, "1", 1, 0),
            write(1, "2", 2, 10),
            read(2, "1", 1, 500),
        ]);
        assert!(v.has(Anomaly::StaleTime), "{v:?}");
        assert!(!v.has(Anomaly::StaleVersions));
    }

    #[test]
    fn writes_acknowledged_after_the_read_began_do_not_count() {
        let mut ops = vec![at_ms(invoke(2, Function::Read, "k", None), 0)];
        ops.extend(write(1, "1", 1, 1));
        ops.extend(write(1, "2", 2, 2));
        ops.extend(write(1, "3", 3, 3));
        ops.push(at_ms(complete(2, OpKind::Ok, Function::Read, "k"), 900));
        assert!(check(&history(ops), &BOUNDS).is_valid());
    }

    #[test]
    fn an_info_write_revealed_by_a_read_counts_as_a_version() {
        let v = verdict(vec![
            write(1, "1", 1, 0),
            vec![
                at_ms(invoke(3, Function::Write, "k", Some("x")), 1),
                complete(3, OpKind::Info, Function::Write, "k"),
            ],
            read(4, "x", 2, 2),
            write(1, "2", 3, 3),
            // Behind version 1: misses x (e1:2, revealed) and 2 (e1:3).
            read(2, "1", 1, 4),
        ]);
        assert!(v.is_valid(), "{v:?}");
        let strict = check(
            &history(
                [
                    write(1, "1", 1, 0),
                    read(4, "x", 2, 2),
                    write(1, "2", 3, 3),
                    read(2, "1", 1, 4),
                ]
                .concat(),
            ),
            &Params {
                versions_max: 1,
                lag_ms_max: 100,
            },
        );
        assert!(strict.has(Anomaly::StaleVersions), "{strict:?}");
    }

    /// A read as the runner records it across regions: served by `region`.
    fn read_in(region: &str, p: u64, value: &str, lsn: u64, ms: u64) -> Vec<Op> {
        let mut ops = read(p, value, lsn, ms);
        ops[1].region = Some(RegionId::new(region));
        ops[1].node = Some(crate::ids::NodeId(p));
        ops
    }

    #[test]
    fn a_stale_read_in_a_read_region_is_caught_and_counted_there() {
        let judgement = judge(
            &history(
                [
                    write(1, "1", 1, 0),
                    write(1, "2", 2, 10),
                    write(1, "3", 3, 20),
                    write(1, "4", 4, 30),
                    // The write region is current; north trails by one
                    // version and 10 ms, within K = 2 and T = 100 ms.
                    read_in("west", 2, "4", 4, 40),
                    read_in("north", 3, "3", 3, 40),
                    // East still serves version 1 half a second later.
                    read_in("east", 4, "1", 1, 500),
                ]
                .concat(),
            ),
            &BOUNDS,
        );
        let v = &judgement.verdict;
        assert!(
            v.has(Anomaly::StaleVersions) && v.has(Anomaly::StaleTime),
            "{v:?}"
        );
        assert!(
            v.violations
                .iter()
                .all(|x| x.ops[0].completion.as_ref().unwrap().1.region
                    == Some(RegionId::new("east"))),
            "only east's read is stale: {v:?}"
        );
        let figures = |r: &str| judgement.regions[&RegionId::new(r)];
        assert_eq!(figures("west").reads_behind, 0);
        assert_eq!(
            figures("north"),
            RegionFigures {
                reads_judged: 1,
                reads_behind: 1,
                versions_behind_max: 1,
                lag_ms_max: 10,
            }
        );
        assert_eq!(figures("east").versions_behind_max, 3);
        assert_eq!(figures("east").lag_ms_max, 490);
        assert_eq!(
            reads_judged_outside(&judgement.regions, &RegionId::new("west")),
            2
        );
    }
}
