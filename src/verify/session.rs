//! Session guarantees for SESSION, per process (one process is one
//! session), stated over GLSNs: a write is dated by the GLSN it committed
//! at, a read by the GLSN of the version it returned (an absent key is
//! version zero). A process's operations are sequential, so each one
//! follows every earlier one of the same process.
//!
//! The checks and the Azure Cosmos DB TLA+ properties they mirror
//! (`simple-model/CosmosDBProps.tla`, `general-model/cosmos_client.tla` in
//! Azure/azure-cosmos-tla):
//! - read-your-writes: a read of a key returns a version no older than the
//!   session's own acknowledged writes to it
//!   (`SessionConsistencyReadMyWritesPerTokenSequence`, `ReadYourWrite`);
//! - monotonic reads: a read of a key returns a version no older than one
//!   the session read before (`SessionConsistencyReadsMonotonicPerTokenSequence`,
//!   `MonotonicReadPerClient`);
//! - monotonic writes: the session's acknowledged writes commit in the
//!   order it issued them (`MonotonicWritePerRegion`, per session here);
//! - writes-follow-reads: a write commits after every version the session
//!   read before it. The specs have no separate property: it follows from
//!   a write's token exceeding every token the session held.
//!
//! A SESSION_LOST failure ends a session: the server says its token lies
//! past a failover's fork, so its writes there were lost (and published to
//! the conflict feed). The process goes on as a new session.
//!
//! Does not judge: reads whose version cannot be dated (no GLSN reported
//! and a value no acknowledged write sent), writes of unknown outcome
//! (their GLSN is unknown), scans, or multi-write mode, where a session
//! token is a vector and GLSNs do not order writes totally.

use std::collections::HashMap;

use crate::glsn::Glsn;

use super::history::{Function, History, Operation, ProcessId, Versions};
use super::verdict::{Anomaly, Verdict, Violation};

pub fn check(history: &History) -> Verdict {
    let versions = Versions::of(history);
    let mut sessions: HashMap<ProcessId, Session> = HashMap::new();
    let mut verdict = Verdict::default();
    for op in history.operations() {
        if lost_its_session(op) {
            // The server said the session's writes were lost to a
            // failover (they are in the conflict feed): what the session
            // saw before no longer binds it, and a new one begins.
            sessions.remove(&op.process());
            continue;
        }
        let session = sessions.entry(op.process()).or_default();
        let found = match op.function() {
            Function::Read | Function::ReadSet => versions
                .of_read(op)
                .map(|v| session.read(op, v))
                .unwrap_or_default(),
            f if f.is_write() => op
                .ok_glsn()
                .map(|g| session.wrote(op, g))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        verdict.violations.extend(found);
    }
    verdict
}

/// The operation failed with SESSION_LOST.
fn lost_its_session(op: &Operation) -> bool {
    op.completion
        .as_ref()
        .is_some_and(|(_, c)| c.error.as_deref() == Some("SESSION_LOST"))
}

/// What one session has observed so far: the newest version per key it
/// wrote and read, and the newest it wrote and read of any key.
#[derive(Default)]
struct Session<'a> {
    written: HashMap<&'a str, (Glsn, &'a Operation)>,
    read: HashMap<&'a str, (Glsn, &'a Operation)>,
    written_max: Option<(Glsn, &'a Operation)>,
    read_max: Option<(Glsn, &'a Operation)>,
}

impl<'a> Session<'a> {
    fn read(&mut self, op: &'a Operation, version: Glsn) -> Vec<Violation> {
        let key = op.key();
        let mut found = Vec::new();
        if let Some(&(wrote, write)) = self.written.get(key)
            && version < wrote
        {
            found.push(older(Anomaly::ReadYourWrites, write, op, version, wrote));
        }
        if let Some(&(seen, earlier)) = self.read.get(key)
            && version < seen
        {
            found.push(older(Anomaly::MonotonicReads, earlier, op, version, seen));
        }
        raise(self.read.entry(key).or_insert((version, op)), version, op);
        raise_max(&mut self.read_max, version, op);
        found
    }

    fn wrote(&mut self, op: &'a Operation, glsn: Glsn) -> Vec<Violation> {
        let mut found = Vec::new();
        if let Some((last, write)) = self.written_max
            && glsn <= last
        {
            found.push(older(Anomaly::MonotonicWrites, write, op, glsn, last));
        }
        if let Some((seen, read)) = self.read_max
            && glsn <= seen
        {
            found.push(older(Anomaly::WritesFollowReads, read, op, glsn, seen));
        }
        raise(self.written.entry(op.key()).or_insert((glsn, op)), glsn, op);
        raise_max(&mut self.written_max, glsn, op);
        found
    }
}

fn raise<'a>(slot: &mut (Glsn, &'a Operation), glsn: Glsn, op: &'a Operation) {
    if glsn > slot.0 {
        *slot = (glsn, op);
    }
}

fn raise_max<'a>(slot: &mut Option<(Glsn, &'a Operation)>, glsn: Glsn, op: &'a Operation) {
    if slot.is_none_or(|(max, _)| glsn > max) {
        *slot = Some((glsn, op));
    }
}

/// `later` is dated `got`, older than (or, for writes, not newer than) the
/// `bound` the session had already reached through `earlier`.
fn older(
    anomaly: Anomaly,
    earlier: &Operation,
    later: &Operation,
    got: Glsn,
    bound: Glsn,
) -> Violation {
    let detail = format!(
        "{} got version {got}, but the session had already reached {bound}",
        later.process()
    );
    Violation::on_key(anomaly, later.key(), &[earlier, later], detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::history::build::*;
    use crate::verify::history::{Op, OpKind};

    fn write(p: u64, key: &str, value: &str, lsn: u64) -> Vec<Op> {
        vec![
            invoke(p, Function::Write, key, Some(value)),
            with_glsn(complete(p, OpKind::Ok, Function::Write, key), lsn),
        ]
    }

    fn read(p: u64, key: &str, value: &str, lsn: u64) -> Vec<Op> {
        let done = with_value(complete(p, OpKind::Ok, Function::Read, key), value);
        vec![invoke(p, Function::Read, key, None), with_glsn(done, lsn)]
    }

    fn check_ops(parts: Vec<Vec<Op>>) -> Verdict {
        check(&history(parts.into_iter().flatten().collect()))
    }

    #[test]
    fn session_lost_ends_the_session_and_what_it_saw() {
        let mut lost = complete(1, OpKind::Fail, Function::Read, "a");
        lost.error = Some("SESSION_LOST".into());
        let after_fork = check_ops(vec![
            write(1, "a", "a1", 5),
            write(1, "a", "a2", 9),
            vec![invoke(1, Function::Read, "a", None), lost],
            // a2 was lost to the fork at 8: a1 is the key's version now.
            read(1, "a", "a1", 5),
        ]);
        assert!(after_fork.is_valid(), "{after_fork:?}");
        // Without the SESSION_LOST the same read is a violation.
        let silent = check_ops(vec![
            write(1, "a", "a1", 5),
            write(1, "a", "a2", 9),
            read(1, "a", "a1", 5),
        ]);
        assert!(!silent.is_valid());
    }

    #[test]
    fn a_well_behaved_session_passes() {
        let verdict = check_ops(vec![
            write(1, "a", "a1", 1),
            read(1, "a", "a1", 1),
            write(2, "a", "a2", 2),
            read(1, "a", "a2", 2),
            read(1, "b", "b0", 0),
            write(1, "b", "b1", 3),
            read(1, "b", "b1", 3),
        ]);
        assert!(verdict.is_valid(), "{verdict:?}");
    }

    #[test]
    fn another_sessions_older_view_is_not_a_violation() {
        let verdict = check_ops(vec![write(1, "a", "a1", 1), read(2, "a", "", 0)]);
        assert!(verdict.is_valid(), "{verdict:?}");
    }

    #[test]
    fn a_read_below_the_sessions_own_write_is_caught() {
        let verdict = check_ops(vec![
            write(1, "a", "a1", 5),
            write(1, "a", "a2", 6),
            read(1, "a", "a1", 5),
        ]);
        assert!(verdict.has(Anomaly::ReadYourWrites), "{verdict:?}");
        assert_eq!(verdict.violations[0].ops.len(), 2);
    }

    #[test]
    fn a_read_of_the_absent_key_after_writing_it_is_caught() {
        let mut ops: Vec<Op> = write(1, "a", "a1", 5);
        ops.push(invoke(1, Function::Read, "a", None));
        ops.push(complete(1, OpKind::Ok, Function::Read, "a"));
        assert!(check(&history(ops)).has(Anomaly::ReadYourWrites));
    }

    #[test]
    fn a_session_going_back_in_time_is_caught() {
        let verdict = check_ops(vec![
            write(2, "a", "a1", 1),
            write(2, "a", "a2", 2),
            read(1, "a", "a2", 2),
            read(1, "a", "a1", 1),
        ]);
        assert!(verdict.has(Anomaly::MonotonicReads), "{verdict:?}");
        assert!(!verdict.has(Anomaly::ReadYourWrites));
    }

    #[test]
    fn a_read_without_its_version_is_dated_by_its_value() {
        let mut ops: Vec<Op> = [write(2, "a", "a1", 1), write(2, "a", "a2", 2)].concat();
        ops.extend(read(1, "a", "a2", 2));
        ops.push(invoke(1, Function::Read, "a", None));
        ops.push(with_value(
            complete(1, OpKind::Ok, Function::Read, "a"),
            "a1",
        ));
        assert!(check(&history(ops)).has(Anomaly::MonotonicReads));
    }

    #[test]
    fn writes_committed_out_of_order_are_caught() {
        let verdict = check_ops(vec![write(1, "a", "a1", 7), write(1, "b", "b1", 4)]);
        assert!(verdict.has(Anomaly::MonotonicWrites), "{verdict:?}");
    }

    #[test]
    fn a_write_ordered_before_what_the_session_read_is_caught() {
        let verdict = check_ops(vec![
            write(2, "a", "a1", 9),
            read(1, "a", "a1", 9),
            write(1, "b", "b1", 3),
        ]);
        assert!(verdict.has(Anomaly::WritesFollowReads), "{verdict:?}");
    }

    #[test]
    fn unknown_outcomes_are_not_judged() {
        let verdict = check_ops(vec![
            write(1, "a", "a1", 5),
            vec![
                invoke(1, Function::Write, "a", Some("a2")),
                complete(1, OpKind::Info, Function::Write, "a"),
            ],
            read(1, "a", "a1", 5),
        ]);
        assert!(verdict.is_valid(), "{verdict:?}");
    }
}
