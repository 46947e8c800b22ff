//! Conversions between `pb::` messages and domain types, in one place.

use crate::consistency::Consistency;
use crate::glsn::Glsn;
use crate::wire::pb::v1 as pb;

impl From<Glsn> for pb::Glsn {
    fn from(g: Glsn) -> Self {
        pb::Glsn {
            epoch: g.epoch,
            lsn: g.lsn,
        }
    }
}

impl From<pb::Glsn> for Glsn {
    fn from(g: pb::Glsn) -> Self {
        Glsn::new(g.epoch, g.lsn)
    }
}

impl From<Consistency> for pb::Consistency {
    fn from(c: Consistency) -> Self {
        match c {
            Consistency::Strong => pb::Consistency::Strong,
            Consistency::BoundedStaleness => pb::Consistency::BoundedStaleness,
            Consistency::Session => pb::Consistency::Session,
            Consistency::ConsistentPrefix => pb::Consistency::ConsistentPrefix,
            Consistency::Eventual => pb::Consistency::Eventual,
        }
    }
}

/// Decodes the wire's consistency field: `None` means "the account default".
/// An unknown number is an error rather than a silent default.
pub fn consistency_from_wire(raw: i32) -> Result<Option<Consistency>, String> {
    match pb::Consistency::try_from(raw) {
        Ok(pb::Consistency::Unspecified) => Ok(None),
        Ok(pb::Consistency::Strong) => Ok(Some(Consistency::Strong)),
        Ok(pb::Consistency::BoundedStaleness) => Ok(Some(Consistency::BoundedStaleness)),
        Ok(pb::Consistency::Session) => Ok(Some(Consistency::Session)),
        Ok(pb::Consistency::ConsistentPrefix) => Ok(Some(Consistency::ConsistentPrefix)),
        Ok(pb::Consistency::Eventual) => Ok(Some(Consistency::Eventual)),
        Err(_) => Err(format!("unknown consistency value {raw}")),
    }
}

/// A consistency level as the wire enum's number.
pub fn consistency_to_wire(level: Consistency) -> i32 {
    (match level {
        Consistency::Strong => pb::Consistency::Strong,
        Consistency::BoundedStaleness => pb::Consistency::BoundedStaleness,
        Consistency::Session => pb::Consistency::Session,
        Consistency::ConsistentPrefix => pb::Consistency::ConsistentPrefix,
        Consistency::Eventual => pb::Consistency::Eventual,
    }) as i32
}
