//! The register: `MVReg<Vec<u8>, RegionId>`; concurrent writes are kept as
//! siblings, a write that saw them replaces them; reads as the siblings,
//! sorted. MVReg's clocks express exactly the hub's "base covers" relation
//! for one key: an origin's write clock is the merge of the clocks of the
//! siblings in its view plus one step of its own, so `c1 < c2` holds iff
//! the origin of write 2 had seen write 1 when it wrote, which is iff
//! write 2's base covers write 1's dot. So the crate's type is used and the
//! hub's frontier is not needed for registers.

use crdts::{CmRDT, MVReg};

use crate::crdt::clock::{clock_of, next_step, vclock};
use crate::crdt::encoding::{Reader, put_bytes, put_clock, put_len};
use crate::crdt::error::CrdtError;
use crate::crdt::mirror::{MIRROR_HOLDS, register_siblings};
use crate::crdt::ops::{Clock, CrdtOp, CrdtRead};
use crate::ids::RegionId;
use crate::limits::VALUE_BYTES_MAX;

type Register = MVReg<Vec<u8>, RegionId>;

/// The operation `region` sends to write `value`: its clock covers every
/// sibling in this view, plus one step of `region`.
pub(super) fn prepare_write(
    register: &Register,
    region: &RegionId,
    value: &[u8],
) -> Result<CrdtOp, CrdtError> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(CrdtError::InvalidRequest(format!(
            "value is {} bytes; the limit is {VALUE_BYTES_MAX} bytes (2 MiB)",
            value.len()
        )));
    }
    let ctx = register.read_ctx();
    next_step(&ctx.add_clock, region)?;
    let ctx = ctx.derive_add_ctx(region.clone());
    Ok(CrdtOp::RegisterWrite {
        clock: clock_of(&ctx.clock),
        value: value.to_vec(),
    })
}

/// Applies a write, replacing the siblings its clock covers; a write with
/// an empty clock is refused.
pub(super) fn apply_write(
    register: &mut Register,
    clock: &Clock,
    value: &[u8],
) -> Result<(), CrdtError> {
    if clock.values().all(|n| *n == 0) {
        return Err(CrdtError::NotCausal(
            "register write with an empty clock".into(),
        ));
    }
    register.apply(crdts::mvreg::Op::Put {
        clock: vclock(clock),
        val: value.to_vec(),
    });
    Ok(())
}

/// The siblings, sorted.
pub(super) fn read(register: &Register) -> CrdtRead {
    let mut siblings = register.read().val;
    siblings.sort();
    CrdtRead::Register(siblings)
}

/// Writes the siblings, each as its clock and its value, sorted by those
/// bytes.
pub(super) fn encode(register: &Register, out: &mut Vec<u8>) {
    let mut siblings: Vec<Vec<u8>> = register_siblings(register)
        .expect(MIRROR_HOLDS)
        .into_iter()
        .map(|(clock, value)| {
            let mut sibling = Vec::new();
            put_clock(&mut sibling, &clock);
            put_bytes(&mut sibling, &value);
            sibling
        })
        .collect();
    siblings.sort();
    put_len(out, siblings.len());
    for sibling in siblings {
        out.extend_from_slice(&sibling);
    }
}

/// Rebuilds a register by writing each sibling with its clock.
pub(super) fn decode(input: &mut Reader<'_>) -> Result<Register, CrdtError> {
    let count = input.len()?;
    let mut register = MVReg::new();
    for _ in 0..count {
        let clock = input.clock()?;
        let sibling = input.bytes()?;
        apply_write(&mut register, &clock, sibling)?;
    }
    Ok(register)
}

#[cfg(test)]
mod tests {
    use crate::crdt::testing::{apply_all, step};
    use crate::crdt::{CrdtKind, CrdtRead, CrdtRequest, CrdtValue};

    #[test]
    fn a_register_keeps_concurrent_writes_and_a_write_that_saw_them_replaces_them() {
        let base = CrdtValue::new(CrdtKind::Register);
        let mut east = base.clone();
        let mut west = base.clone();
        let e = step(
            &mut east,
            "east",
            CrdtRequest::Write {
                value: b"b".to_vec(),
            },
        );
        let w = step(
            &mut west,
            "west",
            CrdtRequest::Write {
                value: b"a".to_vec(),
            },
        );
        let both = apply_all(CrdtKind::Register, &[&e, &w]);
        let both_again = apply_all(CrdtKind::Register, &[&w, &e]);
        assert_eq!(
            both.read(),
            Ok(CrdtRead::Register(vec![b"a".to_vec(), b"b".to_vec()]))
        );
        assert_eq!(both.encode(), both_again.encode());
        let mut north = both.clone();
        let n = step(
            &mut north,
            "north",
            CrdtRequest::Write {
                value: b"c".to_vec(),
            },
        );
        let after = apply_all(CrdtKind::Register, &[&w, &e, &n]);
        assert_eq!(after.read(), Ok(CrdtRead::Register(vec![b"c".to_vec()])));
        assert_eq!(CrdtValue::decode(&both.encode()), Ok(both));
    }
}
