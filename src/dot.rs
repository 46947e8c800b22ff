//! Dots and version vectors: the identities of multi-write writes and what a
//! region has seen of them (DESIGN.md "Multi-write mode").
//!
//! A [`Dot`] `(origin, lsn)` names one write. Each origin region numbers its
//! own writes densely from 1, and every region receives each origin's writes
//! in that origin order. So a [`VersionVector`] (per origin, the highest LSN
//! seen) describes a set of writes exactly: seeing `(R, n)` means having seen
//! every `(R, m)` with `m <= n`. That is what makes `covers` a plain
//! comparison and `merge` a per-origin maximum.
//!
//! Invariants: a vector never stores a zero entry (zero means "nothing seen",
//! which is the absent entry), so equal sets of writes give equal vectors,
//! equal bytes and one text form. The text form, a multi-write session token,
//! is `v1:` followed by `region=lsn` pairs sorted by region and separated by
//! commas (`v1:east=12,west=40`); parsing refuses anything else with a
//! message saying what is wrong, and refuses input longer than
//! [`VECTOR_TOKEN_BYTES_MAX`] before looking at it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::RegionId;

/// Longest session token text accepted: room for dozens of regions with
/// 20-digit LSNs, and a bound on what a client can make a node parse.
pub const VECTOR_TOKEN_BYTES_MAX: usize = 4 * 1024;
/// Longest region name inside a token. Region names in the configuration
/// are `[A-Za-z0-9_-]`; a token naming a longer one cannot be ours.
pub const TOKEN_REGION_CHARS_MAX: usize = 64;
/// The prefix of the one token version this code writes and reads.
const TOKEN_PREFIX: &str = "v1:";

/// The identity of one write: its origin region and its origin LSN.
/// Printed `east:42`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub origin: RegionId,
    pub lsn: u64,
}

impl Dot {
    pub fn new(origin: RegionId, lsn: u64) -> Self {
        Self { origin, lsn }
    }
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.origin, self.lsn)
    }
}

/// Per origin region, the highest origin LSN seen. Absent means zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionVector(BTreeMap<RegionId, u64>);

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest LSN of `origin` seen, zero when none.
    pub fn get(&self, origin: &RegionId) -> u64 {
        self.0.get(origin).copied().unwrap_or(0)
    }

    /// Whether the write `dot` is among those seen.
    pub fn covers(&self, dot: &Dot) -> bool {
        self.get(&dot.origin) >= dot.lsn
    }

    /// Whether every write `other` has seen is seen here too.
    pub fn covers_vector(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(origin, lsn)| self.get(origin) >= *lsn)
    }

    /// Adds everything `other` has seen (per-origin maximum).
    pub fn merge(&mut self, other: &VersionVector) {
        for (origin, lsn) in &other.0 {
            self.raise(origin, *lsn);
        }
    }

    /// Records `dot` as seen, with every earlier write of its origin.
    pub fn observe(&mut self, dot: &Dot) {
        self.raise(&dot.origin, dot.lsn);
    }

    fn raise(&mut self, origin: &RegionId, lsn: u64) {
        if lsn > self.get(origin) {
            self.0.insert(origin.clone(), lsn);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, sorted by region.
    pub fn iter(&self) -> impl Iterator<Item = (&RegionId, u64)> {
        self.0.iter().map(|(r, l)| (r, *l))
    }
}

impl FromIterator<Dot> for VersionVector {
    fn from_iter<I: IntoIterator<Item = Dot>>(dots: I) -> Self {
        let mut vector = VersionVector::new();
        for dot in dots {
            vector.observe(&dot);
        }
        vector
    }
}

impl fmt::Display for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TOKEN_PREFIX)?;
        for (i, (origin, lsn)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{origin}={lsn}")?;
        }
        Ok(())
    }
}

/// Why a vector session token was refused. The message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed multi-write session token: {0}")]
pub struct TokenError(pub String);

impl FromStr for VersionVector {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<Self, TokenError> {
        let bad = |why: String| Err(TokenError(why));
        if text.len() > VECTOR_TOKEN_BYTES_MAX {
            return bad(format!(
                "it is {} bytes; the limit is {VECTOR_TOKEN_BYTES_MAX}",
                text.len()
            ));
        }
        if text.is_empty() {
            return bad("it is empty; an empty vector is written `v1:`".into());
        }
        let Some(body) = text.strip_prefix(TOKEN_PREFIX) else {
            return bad(format!(
                "it must start with `{TOKEN_PREFIX}` (the only token version this node knows)"
            ));
        };
        let mut vector = VersionVector::new();
        if body.is_empty() {
            return Ok(vector);
        }
        let mut previous: Option<&str> = None;
        for pair in body.split(',') {
            let (region, lsn) = parse_pair(pair)?;
            if let Some(prev) = previous {
                if region == prev {
                    return bad(format!("region {region} appears twice"));
                }
                if region < prev {
                    return bad(format!(
                        "regions must be sorted: {region} comes after {prev}"
                    ));
                }
            }
            previous = Some(region);
            vector.0.insert(RegionId::new(region), lsn);
        }
        Ok(vector)
    }
}

/// One `region=lsn` pair of a token.
fn parse_pair(pair: &str) -> Result<(&str, u64), TokenError> {
    let bad = |why: String| Err(TokenError(why));
    let Some((region, lsn)) = pair.split_once('=') else {
        return bad(format!("{pair:?} is not `region=lsn`"));
    };
    if region.is_empty()
        || region.chars().count() > TOKEN_REGION_CHARS_MAX
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad(format!(
            "region name {region:?} must be 1 to {TOKEN_REGION_CHARS_MAX} characters of [A-Za-z0-9_-]"
        ));
    }
    // `u64::from_str` accepts a leading `+`; a token never has one.
    if lsn.is_empty() || !lsn.bytes().all(|b| b.is_ascii_digit()) {
        return bad(format!("LSN {lsn:?} of region {region} is not a number"));
    }
    let Ok(lsn) = lsn.parse::<u64>() else {
        return bad(format!(
            "LSN {lsn} of region {region} does not fit in 64 bits"
        ));
    };
    if lsn == 0 {
        return bad(format!(
            "LSN 0 of region {region}: LSNs start at 1, and a region with none is left out"
        ));
    }
    Ok((region, lsn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str) -> RegionId {
        RegionId::new(name)
    }

    fn vv(pairs: &[(&str, u64)]) -> VersionVector {
        pairs
            .iter()
            .map(|(region, lsn)| Dot::new(r(region), *lsn))
            .collect()
    }

    #[test]
    fn covers_means_every_earlier_write_of_that_origin() {
        let v = vv(&[("east", 3), ("west", 1)]);
        assert!(v.covers(&Dot::new(r("east"), 1)));
        assert!(v.covers(&Dot::new(r("east"), 3)));
        assert!(!v.covers(&Dot::new(r("east"), 4)));
        assert!(!v.covers(&Dot::new(r("north"), 1)));
        assert!(v.covers_vector(&vv(&[("east", 2)])));
        assert!(v.covers_vector(&VersionVector::new()));
        assert!(!v.covers_vector(&vv(&[("east", 2), ("north", 1)])));
    }

    #[test]
    fn merge_is_a_per_origin_maximum_in_any_order() {
        let a = vv(&[("east", 3), ("west", 1)]);
        let b = vv(&[("east", 1), ("north", 2)]);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab, vv(&[("east", 3), ("west", 1), ("north", 2)]));
        let mut again = ab.clone();
        again.merge(&a);
        assert_eq!(again, ab, "merge is idempotent");
    }

    #[test]
    fn observing_an_older_dot_changes_nothing() {
        let mut v = vv(&[("east", 5)]);
        v.observe(&Dot::new(r("east"), 2));
        assert_eq!(v.get(&r("east")), 5);
        v.observe(&Dot::new(r("east"), 0));
        assert_eq!(v, vv(&[("east", 5)]), "a zero entry is never stored");
    }

    #[test]
    fn token_text_round_trips_sorted_by_region() {
        let v = vv(&[("west", 40), ("east", 12)]);
        assert_eq!(v.to_string(), "v1:east=12,west=40");
        assert_eq!("v1:east=12,west=40".parse::<VersionVector>(), Ok(v));
        let empty = VersionVector::new();
        assert_eq!(empty.to_string(), "v1:");
        assert_eq!("v1:".parse::<VersionVector>(), Ok(empty));
        assert_eq!(Dot::new(r("east"), 42).to_string(), "east:42");
    }

    #[test]
    fn every_malformed_token_is_refused_with_its_reason() {
        let long = format!("v1:east={}", "1".repeat(VECTOR_TOKEN_BYTES_MAX));
        let long_region = format!("v1:{}=1", "a".repeat(TOKEN_REGION_CHARS_MAX + 1));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("east=1", "must start with `v1:`"),
            ("v2:east=1", "must start with `v1:`"),
            ("v1:east", "is not `region=lsn`"),
            ("v1:east=1,", "is not `region=lsn`"),
            ("v1:east=1,east=2", "appears twice"),
            ("v1:west=1,east=2", "must be sorted"),
            ("v1:=1", "region name"),
            ("v1:ea st=1", "region name"),
            ("v1:east=x", "is not a number"),
            ("v1:east=+1", "is not a number"),
            ("v1:east=-1", "is not a number"),
            ("v1:east=", "is not a number"),
            ("v1:east=99999999999999999999", "does not fit"),
            ("v1:east=0", "LSN 0"),
            (&long, "the limit is"),
            (&long_region, "region name"),
        ];
        for (text, why) in cases {
            let err = text
                .parse::<VersionVector>()
                .expect_err(&format!("{text:?} must be refused"));
            assert!(
                err.to_string().contains(why),
                "{text:?}: {err} should say {why:?}"
            );
        }
    }
}
