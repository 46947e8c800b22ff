//! Replication lag per read region, from the account status: what the
//! bench samples while it runs.

use crate::client::endpoints::account_regions;
use crate::client::status::{AccountStatus, REGION_ROLE_WRITE};

/// One read region's replication lag behind the write region, as the
/// write region measures it; `None` where it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRegionLag {
    pub region: String,
    pub lag_ops: Option<u64>,
    pub lag_ms: Option<u64>,
}

/// The lag part of `Admin.Status`: how many regions the account has and
/// the lag of each read region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationLag {
    pub regions: usize,
    pub read_regions: Vec<ReadRegionLag>,
}

impl ReplicationLag {
    pub(crate) fn from_status(status: &AccountStatus) -> ReplicationLag {
        let read_regions = status
            .regions
            .iter()
            .filter(|r| r.role != REGION_ROLE_WRITE)
            .map(|r| ReadRegionLag {
                region: r.name.to_string(),
                lag_ops: r.lag_ops,
                lag_ms: r.lag_ms,
            })
            .collect();
        ReplicationLag {
            regions: account_regions(status).len(),
            read_regions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{status_node, three_region_status};
    use crate::wire::pb::v1 as pb;

    #[test]
    fn replication_lag_lists_the_read_regions_of_the_status() {
        let lag = ReplicationLag::from_status(&three_region_status("a:1").into());
        assert_eq!(lag.regions, 3);
        let expected = [("east", Some(2), Some(5)), ("north", Some(40), Some(900))];
        let actual: Vec<_> = lag
            .read_regions
            .iter()
            .map(|r| (r.region.as_str(), r.lag_ops, r.lag_ms))
            .collect();
        assert_eq!(actual, expected);
        let single = pb::StatusResponse {
            nodes: vec![status_node("west", 1, "running", "a:1")],
            ..Default::default()
        };
        let lag = ReplicationLag::from_status(&single.into());
        assert_eq!((lag.regions, lag.read_regions.len()), (1, 0));
    }
}
