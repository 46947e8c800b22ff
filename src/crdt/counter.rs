//! The counter: `PNCounter<RegionId>`; `incr(by)`, negative allowed; reads
//! as the sum. An operation carries the origin's new total for its own
//! share in one direction, and applying one is a per-region maximum, so
//! the order of confirmation does not matter.

use crdts::{CmRDT, Dot as CrdtDot, PNCounter};

use crate::crdt::encoding::{Reader, put_clock};
use crate::crdt::error::CrdtError;
use crate::crdt::mirror::{MIRROR_HOLDS, counter_shares};
use crate::crdt::ops::{Clock, CrdtOp, CrdtRead, Direction};
use crate::ids::RegionId;

/// The operation `region` sends to add `by` to `counter`: its share in
/// that direction, grown by `by`, refused past `u64`.
pub(super) fn prepare_incr(
    counter: &PNCounter<RegionId>,
    region: &RegionId,
    by: i64,
) -> Result<CrdtOp, CrdtError> {
    let direction = if by < 0 {
        Direction::Down
    } else {
        Direction::Up
    };
    let (up, down) = counter_shares(counter)?;
    let share = match direction {
        Direction::Up => up.get(region),
        Direction::Down => down.get(region),
    };
    let total = share
        .copied()
        .unwrap_or(0)
        .checked_add(by.unsigned_abs())
        .ok_or_else(|| CrdtError::Overflow {
            region: region.clone(),
        })?;
    Ok(CrdtOp::Counter {
        region: region.clone(),
        direction,
        total,
    })
}

/// Raises `region`'s share in `direction` to at least `total`.
pub(super) fn apply(
    counter: &mut PNCounter<RegionId>,
    region: &RegionId,
    direction: Direction,
    total: u64,
) {
    let dir = match direction {
        Direction::Up => crdts::pncounter::Dir::Pos,
        Direction::Down => crdts::pncounter::Dir::Neg,
    };
    counter.apply(crdts::pncounter::Op {
        dot: CrdtDot::new(region.clone(), total),
        dir,
    });
}

/// The sum of the up shares less the down shares.
pub(super) fn read(counter: &PNCounter<RegionId>) -> Result<CrdtRead, CrdtError> {
    let (up, down) = counter_shares(counter)?;
    let sum = |shares: &Clock| -> Option<i128> {
        shares
            .values()
            .try_fold(0i128, |acc, n| acc.checked_add(i128::from(*n)))
    };
    sum(&up)
        .zip(sum(&down))
        .and_then(|(up, down)| up.checked_sub(down))
        .map(CrdtRead::Counter)
        .ok_or_else(|| CrdtError::Malformed("counter sum beyond 128 bits".into()))
}

/// Writes the up shares, then the down shares.
pub(super) fn encode(counter: &PNCounter<RegionId>, out: &mut Vec<u8>) {
    // The crate's fields are private; serde_json is used only to read them
    // into sorted maps, never for the bytes.
    let (up, down) = counter_shares(counter).expect(MIRROR_HOLDS);
    put_clock(out, &up);
    put_clock(out, &down);
}

/// Rebuilds a counter from its up and down shares.
pub(super) fn decode(input: &mut Reader<'_>) -> Result<PNCounter<RegionId>, CrdtError> {
    let mut counter = PNCounter::new();
    for direction in [Direction::Up, Direction::Down] {
        for (region, total) in input.clock()? {
            apply(&mut counter, &region, direction, total);
        }
    }
    Ok(counter)
}

#[cfg(test)]
mod tests {
    use crate::crdt::testing::{apply_all, r, step};
    use crate::crdt::{CrdtError, CrdtKind, CrdtOp, CrdtRead, CrdtRequest, CrdtValue, Direction};

    #[test]
    fn a_counter_sums_increments_from_every_region_in_any_order() {
        let mut east = CrdtValue::new(CrdtKind::Counter);
        let mut west = CrdtValue::new(CrdtKind::Counter);
        let e1 = step(&mut east, "east", CrdtRequest::Incr { by: 5 });
        let e2 = step(&mut east, "east", CrdtRequest::Incr { by: -2 });
        let w1 = step(&mut west, "west", CrdtRequest::Incr { by: 10 });
        let w2 = step(&mut west, "west", CrdtRequest::Incr { by: 0 });
        let a = apply_all(CrdtKind::Counter, &[&e1, &e2, &w1, &w2]);
        let b = apply_all(CrdtKind::Counter, &[&w1, &e1, &w2, &e2, &e1]);
        assert_eq!(a.read(), Ok(CrdtRead::Counter(13)));
        assert_eq!(
            a.encode(),
            b.encode(),
            "order and duplicates change nothing"
        );
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn a_counter_share_refuses_to_overflow() {
        let mut value = CrdtValue::new(CrdtKind::Counter);
        step(&mut value, "east", CrdtRequest::Incr { by: i64::MAX });
        step(&mut value, "east", CrdtRequest::Incr { by: i64::MAX });
        let err = value
            .prepare(&r("east"), &CrdtRequest::Incr { by: 2 })
            .unwrap_err();
        assert_eq!(err, CrdtError::Overflow { region: r("east") });
        let ok = step(&mut value, "east", CrdtRequest::Incr { by: i64::MIN });
        assert!(
            matches!(ok, CrdtOp::Counter { direction: Direction::Down, total, .. } if total == 1 << 63)
        );
    }
}
