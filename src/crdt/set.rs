//! The set: `Orswot<String, RegionId>`; `add` wins over a concurrent
//! `remove` (a remove takes away only the adds its origin had seen); reads
//! as the members, sorted. Adds and removes commute when delivered
//! causally, which the hub guarantees; an operation that would need state
//! not applied yet is refused instead of deferred by the crate, so the
//! crate's hidden deferred-remove state is always empty.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crdts::{CmRDT, Dot as CrdtDot, Orswot};

use crate::crdt::clock::{clock_of, next_step, vclock};
use crate::crdt::encoding::{Reader, put_bytes, put_clock, put_len};
use crate::crdt::error::CrdtError;
use crate::crdt::ops::{Clock, CrdtOp, CrdtRead};
use crate::ids::RegionId;
use crate::limits::KEY_BYTES_MAX;

/// A set member is bounded like a key.
pub const SET_MEMBER_BYTES_MAX: usize = KEY_BYTES_MAX;

type Set = Orswot<String, RegionId>;

/// The operation `region` sends to add `member`: the next add step of
/// `region` on this set.
pub(super) fn prepare_add(set: &Set, region: &RegionId, member: &str) -> Result<CrdtOp, CrdtError> {
    check_member(member)?;
    next_step(&set.clock(), region)?;
    let ctx = set.read_ctx().derive_add_ctx(region.clone());
    Ok(CrdtOp::SetAdd {
        region: region.clone(),
        step: ctx.dot.counter,
        members: vec![member.to_string()],
    })
}

/// The operation that removes `member` as far as this view has seen it.
pub(super) fn prepare_remove(set: &Set, member: &str) -> Result<CrdtOp, CrdtError> {
    check_member(member)?;
    let ctx = set.contains(&member.to_string()).derive_rm_ctx();
    Ok(CrdtOp::SetRemove {
        seen: clock_of(&ctx.clock),
        members: vec![member.to_string()],
    })
}

fn check_member(member: &str) -> Result<(), CrdtError> {
    if member.is_empty() || member.len() > SET_MEMBER_BYTES_MAX {
        return Err(CrdtError::InvalidRequest(format!(
            "a set member is 1 to {SET_MEMBER_BYTES_MAX} bytes of UTF-8; this one is {}",
            member.len()
        )));
    }
    Ok(())
}

/// Applies the `step`-th add of `region`, refused when it is past the next
/// step this set has seen of `region`.
pub(super) fn apply_add(
    set: &mut Set,
    region: &RegionId,
    step: u64,
    members: &[String],
) -> Result<(), CrdtError> {
    let known = set.clock().get(region);
    if step > known.saturating_add(1) {
        return Err(CrdtError::NotCausal(format!(
            "add step {step} of region {region} on a set that has seen {known}"
        )));
    }
    set.apply(crdts::orswot::Op::Add {
        dot: CrdtDot::new(region.clone(), step),
        members: members.to_vec(),
    });
    Ok(())
}

/// Applies a remove, refused when its origin had seen more than this set.
pub(super) fn apply_remove(
    set: &mut Set,
    seen: &Clock,
    members: &[String],
) -> Result<(), CrdtError> {
    let seen = vclock(seen);
    if !matches!(
        seen.partial_cmp(&set.clock()),
        Some(Ordering::Less | Ordering::Equal)
    ) {
        return Err(CrdtError::NotCausal(format!(
            "remove that has seen {seen} on a set that has seen {}",
            set.clock()
        )));
    }
    set.apply(crdts::orswot::Op::Rm {
        clock: seen,
        members: members.to_vec(),
    });
    Ok(())
}

/// The members, sorted.
pub(super) fn read(set: &Set) -> CrdtRead {
    let mut members: Vec<String> = set.read().val.into_iter().collect();
    members.sort();
    CrdtRead::Set(members)
}

/// Writes the set's clock, then each member (sorted) with the clock of
/// its adds.
pub(super) fn encode(set: &Set, out: &mut Vec<u8>) {
    put_clock(out, &clock_of(&set.clock()));
    let mut members: Vec<(&String, Clock)> = set
        .iter()
        .map(|ctx| (ctx.val, clock_of(&ctx.rm_clock)))
        .collect();
    members.sort();
    put_len(out, members.len());
    for (member, clock) in members {
        put_bytes(out, member.as_bytes());
        put_clock(out, &clock);
    }
}

/// Rebuilds a set from its clock and its members' clocks: every add, per
/// region in step order, then the set clock's own last steps (adds whose
/// members were removed since) as adds of nothing.
pub(super) fn decode(input: &mut Reader<'_>) -> Result<Set, CrdtError> {
    let clock = input.clock()?;
    let count = input.len()?;
    let mut adds: BTreeMap<(RegionId, u64), Vec<String>> = BTreeMap::new();
    for _ in 0..count {
        let member = input.string()?;
        for (region, step) in input.clock()? {
            adds.entry((region, step)).or_default().push(member.clone());
        }
    }
    let mut set = Orswot::new();
    for ((region, step), members) in adds {
        set.apply(crdts::orswot::Op::Add {
            dot: CrdtDot::new(region, step),
            members,
        });
    }
    for (region, step) in clock {
        set.apply(crdts::orswot::Op::Add {
            dot: CrdtDot::new(region, step),
            members: Vec::new(),
        });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use crate::crdt::testing::{add, apply_all, remove, step};
    use crate::crdt::{CrdtError, CrdtKind, CrdtRead, CrdtValue};

    #[test]
    fn in_a_set_add_wins_over_a_concurrent_remove() {
        let mut east = CrdtValue::new(CrdtKind::Set);
        let a1 = step(&mut east, "east", add("x"));
        let mut west = east.clone();
        // Concurrently: west removes the x it saw, east adds x again.
        let w_rm = step(&mut west, "west", remove("x"));
        let e_add = step(&mut east, "east", add("x"));
        let one = apply_all(CrdtKind::Set, &[&a1, &w_rm, &e_add]);
        let two = apply_all(CrdtKind::Set, &[&a1, &e_add, &w_rm]);
        assert_eq!(one.read(), Ok(CrdtRead::Set(vec!["x".into()])));
        assert_eq!(one.encode(), two.encode());
        // A remove that saw both adds removes x.
        let mut seen_all = two.clone();
        let rm_all = step(&mut seen_all, "west", remove("x"));
        let mut after = one.clone();
        after.apply(&rm_all).unwrap();
        assert_eq!(after.read(), Ok(CrdtRead::Set(vec![])));
    }

    #[test]
    fn a_set_reads_its_members_sorted_and_encodes_stably_across_insertion_orders() {
        // Two regions add many members concurrently (enough that two hash
        // maps iterate them in different orders), then one removes some.
        let mut east = CrdtValue::new(CrdtKind::Set);
        let mut west = CrdtValue::new(CrdtKind::Set);
        let mut east_ops = vec![];
        let mut west_ops = vec![];
        for i in 0..40 {
            east_ops.push(step(&mut east, "east", add(&format!("m{i:02}"))));
            west_ops.push(step(&mut west, "west", add(&format!("m{:02}", 79 - i))));
        }
        east_ops.push(step(&mut east, "east", remove("m00")));
        east_ops.push(step(&mut east, "east", remove("m79")));
        let mut one = CrdtValue::new(CrdtKind::Set);
        let mut two = CrdtValue::new(CrdtKind::Set);
        for op in east_ops.iter().chain(&west_ops) {
            one.apply(op).unwrap();
        }
        for (w, e) in west_ops.iter().zip(&east_ops) {
            two.apply(w).unwrap();
            two.apply(e).unwrap();
        }
        for e in &east_ops[west_ops.len()..] {
            two.apply(e).unwrap();
        }
        let members: Vec<String> = (1..80).map(|i| format!("m{i:02}")).collect();
        assert_eq!(
            one.read(),
            Ok(CrdtRead::Set(members.clone())),
            "m79 was never seen by east"
        );
        assert_eq!(two.read(), Ok(CrdtRead::Set(members)));
        assert_eq!(one.encode(), two.encode());
        assert_eq!(one.digest(), two.digest());
        assert_eq!(CrdtValue::decode(&one.encode()), Ok(one.clone()));
    }

    #[test]
    fn a_set_refuses_operations_out_of_causal_order() {
        let mut east = CrdtValue::new(CrdtKind::Set);
        let _first = step(&mut east, "east", add("x"));
        let second = step(&mut east, "east", add("y"));
        let remove_y = step(&mut east, "east", remove("y"));
        let mut fresh = CrdtValue::new(CrdtKind::Set);
        assert!(matches!(fresh.apply(&second), Err(CrdtError::NotCausal(_))));
        assert!(matches!(
            fresh.apply(&remove_y),
            Err(CrdtError::NotCausal(_))
        ));
        assert_eq!(
            fresh,
            CrdtValue::new(CrdtKind::Set),
            "a refusal changes nothing"
        );
    }
}
