//! Helpers for the unit tests of the CRDT files: prepare an operation at a
//! region and apply it, as origin and hub do.

use crate::crdt::ops::{CrdtKind, CrdtOp, CrdtRequest};
use crate::crdt::value::CrdtValue;
use crate::ids::RegionId;

pub(super) fn r(name: &str) -> RegionId {
    RegionId::new(name)
}

/// Prepares at `region` from `view` and applies there.
pub(super) fn step(view: &mut CrdtValue, region: &str, request: CrdtRequest) -> CrdtOp {
    let op = view.prepare(&r(region), &request).expect("prepare");
    view.apply(&op).expect("apply at the origin");
    op
}

pub(super) fn add(member: &str) -> CrdtRequest {
    CrdtRequest::Add {
        member: member.into(),
    }
}

pub(super) fn remove(member: &str) -> CrdtRequest {
    CrdtRequest::Remove {
        member: member.into(),
    }
}

pub(super) fn apply_all(kind: CrdtKind, ops: &[&CrdtOp]) -> CrdtValue {
    let mut value = CrdtValue::new(kind);
    for op in ops {
        value.apply(op).expect("apply");
    }
    value
}
