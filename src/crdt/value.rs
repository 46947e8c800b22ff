//! A CRDT item's value ([`CrdtValue`]), one of the kinds, and the four
//! things done with it: the origin prepares an operation from its view
//! ([`CrdtValue::prepare`]), the hub and every replica apply it
//! ([`CrdtValue::apply`]), a read returns it sorted ([`CrdtValue::read`]),
//! and it is stored as canonical bytes ([`CrdtValue::encode`],
//! [`CrdtValue::decode`], [`CrdtValue::digest`]). Each method checks that
//! the value and the request or operation are of one kind and hands them
//! to that kind's file.

use crdts::{MVReg, Orswot, PNCounter};

use crate::crdt::CRDT_ENCODING_VERSION;
use crate::crdt::encoding::{Reader, TAG_COUNTER, TAG_REGISTER, TAG_SET};
use crate::crdt::error::CrdtError;
use crate::crdt::ops::{CrdtKind, CrdtOp, CrdtRead, CrdtRequest};
use crate::crdt::{counter, register, set};
use crate::ids::RegionId;
use crate::limits::VALUE_BYTES_MAX;

/// A CRDT item's value.
#[derive(Debug, Clone)]
pub enum CrdtValue {
    Counter(PNCounter<RegionId>),
    Set(Orswot<String, RegionId>),
    Register(MVReg<Vec<u8>, RegionId>),
}

impl PartialEq for CrdtValue {
    /// Equal when the canonical bytes are equal: the logical value.
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}

impl Eq for CrdtValue {}

impl CrdtValue {
    /// The value of an item that has had no operation yet.
    pub fn new(kind: CrdtKind) -> Self {
        match kind {
            CrdtKind::Counter => Self::Counter(PNCounter::new()),
            CrdtKind::Set => Self::Set(Orswot::new()),
            CrdtKind::Register => Self::Register(MVReg::new()),
        }
    }

    pub fn kind(&self) -> CrdtKind {
        match self {
            Self::Counter(_) => CrdtKind::Counter,
            Self::Set(_) => CrdtKind::Set,
            Self::Register(_) => CrdtKind::Register,
        }
    }

    /// The origin side: the operation `region` sends for `request`, given
    /// its view of the item (its confirmed state and its own tentative
    /// writes). The resulting value must fit the value limit.
    pub fn prepare(&self, region: &RegionId, request: &CrdtRequest) -> Result<CrdtOp, CrdtError> {
        let op = self.prepare_op(region, request)?;
        let mut after = self.clone();
        after.apply(&op)?;
        let bytes = after.encode().len();
        if bytes > VALUE_BYTES_MAX {
            return Err(CrdtError::InvalidRequest(format!(
                "the {} would be {bytes} bytes; the limit is {VALUE_BYTES_MAX} bytes (2 MiB)",
                self.kind()
            )));
        }
        Ok(op)
    }

    /// The operation for `request` from this view, before the size check.
    fn prepare_op(&self, region: &RegionId, request: &CrdtRequest) -> Result<CrdtOp, CrdtError> {
        match (self, request) {
            (Self::Counter(c), CrdtRequest::Incr { by }) => counter::prepare_incr(c, region, *by),
            (Self::Set(s), CrdtRequest::Add { member }) => set::prepare_add(s, region, member),
            (Self::Set(s), CrdtRequest::Remove { member }) => set::prepare_remove(s, member),
            (Self::Register(r), CrdtRequest::Write { value }) => {
                register::prepare_write(r, region, value)
            }
            (value, request) => Err(CrdtError::WrongType {
                value: value.kind(),
                op: request.kind(),
            }),
        }
    }

    /// The hub and replica side: applies an operation. Applying one twice
    /// changes nothing; one that needs writes not applied yet is refused and
    /// leaves the value as it was.
    pub fn apply(&mut self, op: &CrdtOp) -> Result<(), CrdtError> {
        match (self, op) {
            (
                Self::Counter(c),
                CrdtOp::Counter {
                    region,
                    direction,
                    total,
                },
            ) => {
                counter::apply(c, region, *direction, *total);
                Ok(())
            }
            (
                Self::Set(s),
                CrdtOp::SetAdd {
                    region,
                    step,
                    members,
                },
            ) => set::apply_add(s, region, *step, members),
            (Self::Set(s), CrdtOp::SetRemove { seen, members }) => {
                set::apply_remove(s, seen, members)
            }
            (Self::Register(r), CrdtOp::RegisterWrite { clock, value }) => {
                register::apply_write(r, clock, value)
            }
            (value, op) => Err(CrdtError::WrongType {
                value: value.kind(),
                op: op.kind(),
            }),
        }
    }

    /// The read side: the sum, the members sorted, the siblings sorted.
    pub fn read(&self) -> Result<CrdtRead, CrdtError> {
        match self {
            Self::Counter(c) => counter::read(c),
            Self::Set(s) => Ok(set::read(s)),
            Self::Register(r) => Ok(register::read(r)),
        }
    }

    /// The canonical bytes: the same logical value always gives the same
    /// bytes, whatever order it was built in.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CRDT_ENCODING_VERSION];
        match self {
            Self::Counter(c) => {
                out.push(TAG_COUNTER);
                counter::encode(c, &mut out);
            }
            Self::Set(s) => {
                out.push(TAG_SET);
                set::encode(s, &mut out);
            }
            Self::Register(r) => {
                out.push(TAG_REGISTER);
                register::encode(r, &mut out);
            }
        }
        out
    }

    /// Reads canonical bytes back. Anything but the exact bytes `encode`
    /// writes for some value is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, CrdtError> {
        let mut input = Reader::new(bytes);
        let version = input.u8()?;
        if version != CRDT_ENCODING_VERSION {
            return Err(CrdtError::UnknownVersion(version));
        }
        let value = match input.u8()? {
            TAG_COUNTER => Self::Counter(counter::decode(&mut input)?),
            TAG_SET => Self::Set(set::decode(&mut input)?),
            TAG_REGISTER => Self::Register(register::decode(&mut input)?),
            tag => return Err(CrdtError::Malformed(format!("unknown CRDT type {tag}"))),
        };
        if input.left() > 0 {
            return Err(CrdtError::Malformed(format!(
                "{} bytes after the value",
                input.left()
            )));
        }
        if value.encode() != bytes {
            return Err(CrdtError::Malformed(
                "not in canonical form (unsorted, zero, duplicate or dominated entries)".into(),
            ));
        }
        Ok(value)
    }

    /// A digest of the canonical bytes (FNV-1a 64, as `items_digest`),
    /// printed `len:hash`: equal digests mean equal values.
    pub fn digest(&self) -> String {
        const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
        let bytes = self.encode();
        let hash = bytes.iter().fold(FNV_OFFSET, |hash, b| {
            (hash ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
        });
        format!("{}:{hash:016x}", bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use crate::crdt::encoding::{TAG_COUNTER, TAG_REGISTER, put_bytes, put_clock, put_len};
    use crate::crdt::testing::{add, r, remove, step};
    use crate::crdt::{
        CRDT_ENCODING_VERSION, Clock, CrdtError, CrdtKind, CrdtRequest, CrdtValue,
        SET_MEMBER_BYTES_MAX,
    };

    #[test]
    fn operations_of_another_type_are_refused() {
        let mut counter = CrdtValue::new(CrdtKind::Counter);
        let err = counter.prepare(&r("east"), &add("x")).unwrap_err();
        assert_eq!(err.to_string(), "a set operation cannot apply to a counter");
        let mut set = CrdtValue::new(CrdtKind::Set);
        let op = step(&mut set, "east", add("x"));
        assert!(matches!(
            counter.apply(&op),
            Err(CrdtError::WrongType { .. })
        ));
        assert!(set.prepare(&r("east"), &add("")).is_err(), "empty member");
        let long = "m".repeat(SET_MEMBER_BYTES_MAX + 1);
        assert!(
            set.prepare(&r("east"), &add(&long)).is_err(),
            "member too long"
        );
    }

    #[test]
    fn every_kind_round_trips_through_its_canonical_bytes() {
        let mut values = vec![];
        for kind in [CrdtKind::Counter, CrdtKind::Set, CrdtKind::Register] {
            values.push(CrdtValue::new(kind));
        }
        let mut c = CrdtValue::new(CrdtKind::Counter);
        step(&mut c, "west", CrdtRequest::Incr { by: 3 });
        step(&mut c, "east", CrdtRequest::Incr { by: -7 });
        values.push(c);
        let mut s = CrdtValue::new(CrdtKind::Set);
        step(&mut s, "west", add("a"));
        step(&mut s, "east", add("b"));
        step(&mut s, "east", remove("a"));
        values.push(s);
        for value in values {
            let bytes = value.encode();
            assert_eq!(bytes[0], CRDT_ENCODING_VERSION);
            assert_eq!(CrdtValue::decode(&bytes), Ok(value.clone()));
            assert_eq!(CrdtValue::decode(&bytes).unwrap().encode(), bytes);
        }
    }

    #[test]
    fn decode_refuses_unknown_versions_and_non_canonical_bytes() {
        let mut s = CrdtValue::new(CrdtKind::Set);
        step(&mut s, "east", add("a"));
        let mut bytes = s.encode();
        bytes[0] = 2;
        assert_eq!(CrdtValue::decode(&bytes), Err(CrdtError::UnknownVersion(2)));
        assert!(CrdtValue::decode(&[CRDT_ENCODING_VERSION, 9]).is_err());
        let mut trailing = s.encode();
        trailing.push(0);
        assert!(CrdtValue::decode(&trailing).is_err());
        // A counter share of zero is not canonical (the crate never stores one).
        let mut zero = vec![CRDT_ENCODING_VERSION, TAG_COUNTER];
        put_clock(&mut zero, &Clock::from([(r("east"), 0)]));
        put_clock(&mut zero, &Clock::new());
        assert!(matches!(
            CrdtValue::decode(&zero),
            Err(CrdtError::Malformed(_))
        ));
        // Register siblings where one covers the other are not canonical.
        let mut dominated = vec![CRDT_ENCODING_VERSION, TAG_REGISTER];
        put_len(&mut dominated, 2);
        put_clock(&mut dominated, &Clock::from([(r("east"), 1)]));
        put_bytes(&mut dominated, b"old");
        put_clock(&mut dominated, &Clock::from([(r("east"), 2)]));
        put_bytes(&mut dominated, b"new");
        assert!(CrdtValue::decode(&dominated).is_err());
    }

    #[test]
    fn decode_of_garbage_never_panics() {
        // Every prefix and every single-byte change of real encodings, and a
        // deterministic stream of pseudo-random inputs.
        let mut s = CrdtValue::new(CrdtKind::Set);
        step(&mut s, "east", add("a"));
        step(&mut s, "west", add("b"));
        let mut reg = CrdtValue::new(CrdtKind::Register);
        step(
            &mut reg,
            "east",
            CrdtRequest::Write {
                value: b"v".to_vec(),
            },
        );
        let mut c = CrdtValue::new(CrdtKind::Counter);
        step(&mut c, "east", CrdtRequest::Incr { by: -4 });
        for value in [s, reg, c] {
            let bytes = value.encode();
            for end in 0..bytes.len() {
                assert!(CrdtValue::decode(&bytes[..end]).is_err(), "prefix {end}");
            }
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut changed = bytes.clone();
                    changed[i] ^= flip;
                    let _ = CrdtValue::decode(&changed);
                }
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let garbage: Vec<u8> = (0..len % 64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x.is_multiple_of(3) {
                        x as u8 % 4
                    } else {
                        x as u8
                    }
                })
                .collect();
            let mut input = vec![CRDT_ENCODING_VERSION];
            input.extend(garbage);
            let _ = CrdtValue::decode(&input);
        }
    }
}
