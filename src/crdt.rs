//! CRDT items of multi-write's CRDT containers (DESIGN.md "Multi-write
//! mode"), over the `crdts` crate, pure.
//!
//! - `counter`: `PNCounter<RegionId>`; `incr(by)`, negative allowed; reads as
//!   the sum.
//! - `set`: `Orswot<String, RegionId>`; `add` wins over a concurrent `remove`
//!   (a remove takes away only the adds its origin had seen); reads as the
//!   members, sorted.
//! - `register`: `MVReg<Vec<u8>, RegionId>`; concurrent writes are kept as
//!   siblings, a write that saw them replaces them; reads as the siblings,
//!   sorted. MVReg's clocks express exactly the hub's "base covers" relation
//!   for one key: an origin's write clock is the merge of the clocks of the
//!   siblings in its view plus one step of its own, so `c1 < c2` holds iff
//!   the origin of write 2 had seen write 1 when it wrote, which is iff
//!   write 2's base covers write 1's dot. So the crate's type is used and the
//!   hub's frontier is not needed for registers.
//!
//! Clients send requests ([`CrdtRequest`]); the origin region turns one into
//! an operation ([`CrdtOp`]) from its own view of the item
//! ([`CrdtValue::prepare`]), and the hub and every replica apply that
//! operation ([`CrdtValue::apply`]). Operations are meridian's own types
//! (sorted maps), not the crate's, so the geo log carries stable bytes.
//!
//! Why the result does not depend on the order of confirmation: counter
//! operations carry the origin's new total for its own share, and applying
//! one is a per-region maximum. Set and register operations commute when
//! delivered causally, which the hub guarantees (a write is confirmed only
//! after every write its base covers). `apply` refuses an operation that
//! would need state not applied yet (a set add past the next step of its
//! region, a remove whose context is ahead of the set) instead of letting the
//! crate defer it; so the crate's hidden deferred-remove state is always
//! empty and the public accessors see the whole value.
//!
//! The crate's serde bytes are not canonical (hash maps) and are never hashed
//! or compared. [`CrdtValue::encode`] writes meridian's canonical, versioned
//! encoding instead: a version byte, a type byte, then every map sorted; the
//! same logical value always gives the same bytes. [`CrdtValue::decode`]
//! refuses unknown versions, malformed bytes and any non-canonical form
//! (it rebuilds the value and checks that it encodes back to the same bytes),
//! with an error, never a panic. [`CrdtValue::digest`] hashes the canonical
//! bytes.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crdts::{CmRDT, Dot as CrdtDot, MVReg, Orswot, PNCounter, VClock};
use serde::{Deserialize, Serialize};

use crate::ids::RegionId;
use crate::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// The version byte of the canonical encoding this code writes.
pub const CRDT_ENCODING_VERSION: u8 = 1;
const TAG_COUNTER: u8 = 1;
const TAG_SET: u8 = 2;
const TAG_REGISTER: u8 = 3;
/// A set member is bounded like a key.
pub const SET_MEMBER_BYTES_MAX: usize = KEY_BYTES_MAX;

/// Per region, a count of that region's steps: the crate's vector clocks
/// and counter shares, as a sorted map without zero entries.
pub type Clock = BTreeMap<RegionId, u64>;

/// The CRDT types a container can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrdtKind {
    Counter,
    Set,
    Register,
}

impl CrdtKind {
    /// The client operations of this type, for error messages.
    pub fn operations(self) -> &'static str {
        match self {
            Self::Counter => "incr",
            Self::Set => "add or remove",
            Self::Register => "write",
        }
    }
}

impl fmt::Display for CrdtKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Counter => "counter",
            Self::Set => "set",
            Self::Register => "register",
        })
    }
}

/// What a client asks of a CRDT item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrdtRequest {
    Incr { by: i64 },
    Add { member: String },
    Remove { member: String },
    Write { value: Vec<u8> },
}

impl CrdtRequest {
    pub fn kind(&self) -> CrdtKind {
        match self {
            Self::Incr { .. } => CrdtKind::Counter,
            Self::Add { .. } | Self::Remove { .. } => CrdtKind::Set,
            Self::Write { .. } => CrdtKind::Register,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Incr { .. } => "incr",
            Self::Add { .. } => "add",
            Self::Remove { .. } => "remove",
            Self::Write { .. } => "write",
        }
    }
}

/// The direction of a counter operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Up,
    Down,
}

/// What a write to a CRDT item carries: an operation made by the origin
/// from its view of the item, applied as is everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrdtOp {
    /// `region`'s share in direction `direction` becomes at least `total`.
    Counter {
        region: RegionId,
        direction: Direction,
        total: u64,
    },
    /// Adds `members` with the `step`-th add of `region` on this set.
    SetAdd {
        region: RegionId,
        step: u64,
        members: Vec<String>,
    },
    /// Removes the adds of `members` that `seen` covers.
    SetRemove { seen: Clock, members: Vec<String> },
    /// Writes `value`, replacing the siblings `clock` covers.
    RegisterWrite { clock: Clock, value: Vec<u8> },
}

impl CrdtOp {
    /// The client operation this came from, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Counter { .. } => "incr",
            Self::SetAdd { .. } => "add",
            Self::SetRemove { .. } => "remove",
            Self::RegisterWrite { .. } => "write",
        }
    }

    pub fn kind(&self) -> CrdtKind {
        match self {
            Self::Counter { .. } => CrdtKind::Counter,
            Self::SetAdd { .. } | Self::SetRemove { .. } => CrdtKind::Set,
            Self::RegisterWrite { .. } => CrdtKind::Register,
        }
    }
}

/// What a read of a CRDT item returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrdtRead {
    Counter(i128),
    Set(Vec<String>),
    Register(Vec<Vec<u8>>),
}

/// A CRDT item's value.
#[derive(Debug, Clone)]
pub enum CrdtValue {
    Counter(PNCounter<RegionId>),
    Set(Orswot<String, RegionId>),
    Register(MVReg<Vec<u8>, RegionId>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrdtError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("a {op} operation cannot apply to a {value}")]
    WrongType { value: CrdtKind, op: CrdtKind },
    #[error("the counter share of region {region} would pass 2^64-1")]
    Overflow { region: RegionId },
    /// The operation depends on writes not applied here yet: the hub
    /// confirms causally, so this is a bug or a corrupted log.
    #[error("operation out of causal order: {0}")]
    NotCausal(String),
    #[error("malformed CRDT value: {0}")]
    Malformed(String),
    #[error(
        "CRDT value encoding version {0} is not one this node knows (it knows {CRDT_ENCODING_VERSION})"
    )]
    UnknownVersion(u8),
}

impl PartialEq for CrdtValue {
    /// Equal when the canonical bytes are equal: the logical value.
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}

impl Eq for CrdtValue {}

fn vclock(clock: &Clock) -> VClock<RegionId> {
    clock
        .iter()
        .map(|(region, n)| CrdtDot::new(region.clone(), *n))
        .collect()
}

fn clock_of(vclock: &VClock<RegionId>) -> Clock {
    vclock
        .iter()
        .map(|dot| (dot.actor.clone(), dot.counter))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// One step more of `region` on `vclock`, refused at the top of `u64`.
fn next_step(vclock: &VClock<RegionId>, region: &RegionId) -> Result<(), CrdtError> {
    match vclock.get(region) {
        u64::MAX => Err(CrdtError::Overflow {
            region: region.clone(),
        }),
        _ => Ok(()),
    }
}

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

    fn prepare_op(&self, region: &RegionId, request: &CrdtRequest) -> Result<CrdtOp, CrdtError> {
        match (self, request) {
            (Self::Counter(counter), CrdtRequest::Incr { by }) => {
                let direction = if *by < 0 {
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
            (Self::Set(set), CrdtRequest::Add { member }) => {
                check_member(member)?;
                next_step(&set.clock(), region)?;
                let ctx = set.read_ctx().derive_add_ctx(region.clone());
                Ok(CrdtOp::SetAdd {
                    region: region.clone(),
                    step: ctx.dot.counter,
                    members: vec![member.clone()],
                })
            }
            (Self::Set(set), CrdtRequest::Remove { member }) => {
                check_member(member)?;
                let ctx = set.contains(member).derive_rm_ctx();
                Ok(CrdtOp::SetRemove {
                    seen: clock_of(&ctx.clock),
                    members: vec![member.clone()],
                })
            }
            (Self::Register(register), CrdtRequest::Write { value }) => {
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
                    value: value.clone(),
                })
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
                Self::Counter(counter),
                CrdtOp::Counter {
                    region,
                    direction,
                    total,
                },
            ) => {
                let dir = match direction {
                    Direction::Up => crdts::pncounter::Dir::Pos,
                    Direction::Down => crdts::pncounter::Dir::Neg,
                };
                counter.apply(crdts::pncounter::Op {
                    dot: CrdtDot::new(region.clone(), *total),
                    dir,
                });
                Ok(())
            }
            (
                Self::Set(set),
                CrdtOp::SetAdd {
                    region,
                    step,
                    members,
                },
            ) => {
                let known = set.clock().get(region);
                if *step > known.saturating_add(1) {
                    return Err(CrdtError::NotCausal(format!(
                        "add step {step} of region {region} on a set that has seen {known}"
                    )));
                }
                set.apply(crdts::orswot::Op::Add {
                    dot: CrdtDot::new(region.clone(), *step),
                    members: members.clone(),
                });
                Ok(())
            }
            (Self::Set(set), CrdtOp::SetRemove { seen, members }) => {
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
                    members: members.clone(),
                });
                Ok(())
            }
            (Self::Register(register), CrdtOp::RegisterWrite { clock, value }) => {
                if clock.values().all(|n| *n == 0) {
                    return Err(CrdtError::NotCausal(
                        "register write with an empty clock".into(),
                    ));
                }
                register.apply(crdts::mvreg::Op::Put {
                    clock: vclock(clock),
                    val: value.clone(),
                });
                Ok(())
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
            Self::Counter(counter) => {
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
            Self::Set(set) => {
                let mut members: Vec<String> = set.read().val.into_iter().collect();
                members.sort();
                Ok(CrdtRead::Set(members))
            }
            Self::Register(register) => {
                let mut siblings = register.read().val;
                siblings.sort();
                Ok(CrdtRead::Register(siblings))
            }
        }
    }

    /// The canonical bytes: the same logical value always gives the same
    /// bytes, whatever order it was built in.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CRDT_ENCODING_VERSION];
        match self {
            Self::Counter(counter) => {
                out.push(TAG_COUNTER);
                // The crate's fields are private; serde_json is used only to
                // read them into sorted maps, never for the bytes.
                let (up, down) = counter_shares(counter).expect(MIRROR_HOLDS);
                put_clock(&mut out, &up);
                put_clock(&mut out, &down);
            }
            Self::Set(set) => {
                out.push(TAG_SET);
                put_clock(&mut out, &clock_of(&set.clock()));
                let mut members: Vec<(&String, Clock)> = set
                    .iter()
                    .map(|ctx| (ctx.val, clock_of(&ctx.rm_clock)))
                    .collect();
                members.sort();
                put_len(&mut out, members.len());
                for (member, clock) in members {
                    put_bytes(&mut out, member.as_bytes());
                    put_clock(&mut out, &clock);
                }
            }
            Self::Register(register) => {
                out.push(TAG_REGISTER);
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
                put_len(&mut out, siblings.len());
                for sibling in siblings {
                    out.extend_from_slice(&sibling);
                }
            }
        }
        out
    }

    /// Reads canonical bytes back. Anything but the exact bytes `encode`
    /// writes for some value is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, CrdtError> {
        let mut input = Reader(bytes);
        let version = input.u8()?;
        if version != CRDT_ENCODING_VERSION {
            return Err(CrdtError::UnknownVersion(version));
        }
        let value = match input.u8()? {
            TAG_COUNTER => decode_counter(&mut input)?,
            TAG_SET => decode_set(&mut input)?,
            TAG_REGISTER => decode_register(&mut input)?,
            tag => return Err(CrdtError::Malformed(format!("unknown CRDT type {tag}"))),
        };
        if !input.0.is_empty() {
            return Err(CrdtError::Malformed(format!(
                "{} bytes after the value",
                input.0.len()
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

fn check_member(member: &str) -> Result<(), CrdtError> {
    if member.is_empty() || member.len() > SET_MEMBER_BYTES_MAX {
        return Err(CrdtError::InvalidRequest(format!(
            "a set member is 1 to {SET_MEMBER_BYTES_MAX} bytes of UTF-8; this one is {}",
            member.len()
        )));
    }
    Ok(())
}

/// Why reading the crate's fields through serde_json cannot fail: every map
/// key is a `RegionId`, a string, and the mirrors below match crdts 7.3.2,
/// pinned exactly (the unit tests read every type through them).
const MIRROR_HOLDS: &str =
    "crdts 7.3.2 counters and registers serialise to JSON with string keys, as the mirrors expect";

/// The crate's private fields, read through its serde form into sorted maps.
/// Mirrors of `PNCounter { p: GCounter { inner: VClock { dots } }, n }` and
/// `MVReg { vals: Vec<(VClock, V)> }` of crdts 7.3.2 (pinned exactly).
#[derive(Deserialize)]
struct ClockMirror {
    dots: Clock,
}

#[derive(Deserialize)]
struct GCounterMirror {
    inner: ClockMirror,
}

#[derive(Deserialize)]
struct PnCounterMirror {
    p: GCounterMirror,
    n: GCounterMirror,
}

#[derive(Deserialize)]
struct MvRegMirror {
    vals: Vec<(ClockMirror, Vec<u8>)>,
}

fn counter_shares(counter: &PNCounter<RegionId>) -> Result<(Clock, Clock), CrdtError> {
    let mirror: PnCounterMirror = serde_json::to_value(counter)
        .and_then(serde_json::from_value)
        .map_err(|e| CrdtError::Malformed(format!("counter shares: {e}")))?;
    let strip = |c: Clock| c.into_iter().filter(|(_, n)| *n > 0).collect();
    Ok((strip(mirror.p.inner.dots), strip(mirror.n.inner.dots)))
}

fn register_siblings(
    register: &MVReg<Vec<u8>, RegionId>,
) -> Result<Vec<(Clock, Vec<u8>)>, CrdtError> {
    let mirror: MvRegMirror = serde_json::to_value(register)
        .and_then(serde_json::from_value)
        .map_err(|e| CrdtError::Malformed(format!("register siblings: {e}")))?;
    Ok(mirror
        .vals
        .into_iter()
        .map(|(clock, value)| {
            let clock = clock.dots.into_iter().filter(|(_, n)| *n > 0).collect();
            (clock, value)
        })
        .collect())
}

fn decode_counter(input: &mut Reader<'_>) -> Result<CrdtValue, CrdtError> {
    let mut value = CrdtValue::new(CrdtKind::Counter);
    for direction in [Direction::Up, Direction::Down] {
        for (region, total) in input.clock()? {
            value.apply(&CrdtOp::Counter {
                region,
                direction,
                total,
            })?;
        }
    }
    Ok(value)
}

/// Rebuilds a set from its clock and its members' clocks: every add, per
/// region in step order, then the set clock's own last steps (adds whose
/// members were removed since) as adds of nothing.
fn decode_set(input: &mut Reader<'_>) -> Result<CrdtValue, CrdtError> {
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
    Ok(CrdtValue::Set(set))
}

fn decode_register(input: &mut Reader<'_>) -> Result<CrdtValue, CrdtError> {
    let count = input.len()?;
    let mut value = CrdtValue::new(CrdtKind::Register);
    for _ in 0..count {
        let clock = input.clock()?;
        let sibling = input.bytes()?.to_vec();
        value.apply(&CrdtOp::RegisterWrite {
            clock,
            value: sibling,
        })?;
    }
    Ok(value)
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Lengths are bounded by the value limit, far below 2^32.
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_clock(out: &mut Vec<u8>, clock: &Clock) {
    put_len(out, clock.len());
    for (region, n) in clock {
        put_bytes(out, region.as_str().as_bytes());
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A cursor over untrusted bytes: every read checks what is left first.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CrdtError> {
        if self.0.len() < n {
            return Err(CrdtError::Malformed(format!(
                "truncated: {n} bytes wanted, {} left",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CrdtError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, CrdtError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    /// A count; each counted thing takes at least one byte, so a count past
    /// what is left is refused before anything is allocated for it.
    fn len(&mut self) -> Result<usize, CrdtError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        let len = u32::from_be_bytes(buf) as usize;
        if len > self.0.len() {
            return Err(CrdtError::Malformed(format!(
                "length {len} past the {} bytes left",
                self.0.len()
            )));
        }
        Ok(len)
    }

    fn bytes(&mut self) -> Result<&'a [u8], CrdtError> {
        let len = self.len()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, CrdtError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| CrdtError::Malformed("a name or member is not UTF-8".into()))
    }

    fn clock(&mut self) -> Result<Clock, CrdtError> {
        let count = self.len()?;
        let mut clock = Clock::new();
        for _ in 0..count {
            let region = RegionId::new(self.string()?);
            let n = self.u64()?;
            clock.insert(region, n);
        }
        Ok(clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str) -> RegionId {
        RegionId::new(name)
    }

    /// Prepares at `region` from `view` and applies there.
    fn step(view: &mut CrdtValue, region: &str, request: CrdtRequest) -> CrdtOp {
        let op = view.prepare(&r(region), &request).expect("prepare");
        view.apply(&op).expect("apply at the origin");
        op
    }

    fn add(member: &str) -> CrdtRequest {
        CrdtRequest::Add {
            member: member.into(),
        }
    }

    fn remove(member: &str) -> CrdtRequest {
        CrdtRequest::Remove {
            member: member.into(),
        }
    }

    fn apply_all(kind: CrdtKind, ops: &[&CrdtOp]) -> CrdtValue {
        let mut value = CrdtValue::new(kind);
        for op in ops {
            value.apply(op).expect("apply");
        }
        value
    }

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
