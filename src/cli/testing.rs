//! Fixtures for the CLI's rendering tests: wire messages as a server would
//! send them, so each test renders what the client converts from them.

use crate::wire::pb::v1 as pb;

pub fn glsn(epoch: u64, lsn: u64) -> Option<pb::Glsn> {
    Some(pb::Glsn { epoch, lsn })
}

pub fn served_by() -> Option<pb::ServedBy> {
    Some(pb::ServedBy {
        region: "west".to_string(),
        node_id: 2,
    })
}

/// An item of container `c` written in `west` at e1:42.
pub fn item(key: &str, value: &[u8]) -> pb::Item {
    pb::Item {
        container: "c".to_string(),
        key: key.to_string(),
        value: value.to_vec(),
        etag: "t1".to_string(),
        glsn: glsn(1, 42),
        ts: 7,
        origin_region: "west".to_string(),
    }
}
