//! The pieces of the canonical encoding: the type bytes, lengths, byte
//! strings and clocks written big-endian, and a reader over untrusted
//! bytes that checks what is left before every read. Each kind's file
//! writes and reads its own value with these; `value.rs` adds the version
//! and type bytes and the canonical-form check.

use crate::crdt::error::CrdtError;
use crate::crdt::ops::Clock;
use crate::ids::RegionId;

/// The type byte of each kind.
pub(super) const TAG_COUNTER: u8 = 1;
pub(super) const TAG_SET: u8 = 2;
pub(super) const TAG_REGISTER: u8 = 3;

/// Writes a length (a count or a byte count) as 4 bytes.
pub(super) fn put_len(out: &mut Vec<u8>, len: usize) {
    // Lengths are bounded by the value limit, far below 2^32.
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// Writes `bytes` after their length.
pub(super) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Writes a clock: its length, then each region and count in order.
pub(super) fn put_clock(out: &mut Vec<u8>, clock: &Clock) {
    put_len(out, clock.len());
    for (region, n) in clock {
        put_bytes(out, region.as_str().as_bytes());
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A cursor over untrusted bytes: every read checks what is left first.
pub(super) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// How many bytes are left.
    pub(super) fn left(&self) -> usize {
        self.0.len()
    }

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

    pub(super) fn u8(&mut self) -> Result<u8, CrdtError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u64(&mut self) -> Result<u64, CrdtError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    /// A count; each counted thing takes at least one byte, so a count past
    /// what is left is refused before anything is allocated for it.
    pub(super) fn len(&mut self) -> Result<usize, CrdtError> {
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

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], CrdtError> {
        let len = self.len()?;
        self.take(len)
    }

    pub(super) fn string(&mut self) -> Result<String, CrdtError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| CrdtError::Malformed("a name or member is not UTF-8".into()))
    }

    pub(super) fn clock(&mut self) -> Result<Clock, CrdtError> {
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
