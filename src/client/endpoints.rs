//! Choosing a node of a preferred region from the account status: the
//! leader of the first preferred region that has a running node.

use std::collections::BTreeSet;

use crate::client::errors::ClientError;
use crate::client::status::{AccountStatus, NODE_STATE_RUNNING, NodeStatus};

/// Picks the endpoint of a running node of the first region in
/// `preferred` that has one. Within a region the leader comes first (a
/// write or a strong read then needs no extra hop), then the lowest node id,
/// so the choice is the same on every run. Pure, for testing.
pub(crate) fn choose_endpoint(
    status: &AccountStatus,
    preferred: &[String],
) -> Result<String, ClientError> {
    let known = account_regions(status);
    if let Some(unknown) = preferred.iter().find(|r| !known.contains(r.as_str())) {
        return Err(ClientError::UnknownRegion {
            region: unknown.clone(),
            known: known.iter().map(|r| r.to_string()).collect(),
        });
    }
    for region in preferred {
        let mut running: Vec<&NodeStatus> = status
            .nodes
            .iter()
            .filter(|n| n.region.as_str() == region && n.state == NODE_STATE_RUNNING)
            .filter(|n| !n.client_addr.is_empty())
            .collect();
        running.sort_by_key(|n| (n.leader_id != Some(n.node_id), n.node_id));
        if let Some(node) = running.first() {
            return Ok(with_scheme(&node.client_addr));
        }
    }
    Err(ClientError::NoRunningNode {
        regions: preferred.to_vec(),
    })
}

/// Every region the status names, from its region rows and its nodes: a
/// server that fills in only one of them still answers the question.
pub(crate) fn account_regions(status: &AccountStatus) -> BTreeSet<&str> {
    let from_rows = status.regions.iter().map(|r| r.name.as_str());
    let from_nodes = status.nodes.iter().map(|n| n.region.as_str());
    from_rows.chain(from_nodes).collect()
}

/// Status reports client addresses as `host:port`; tonic needs a URI.
pub(crate) fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{names, three_region_status};
    use crate::wire::pb::v1 as pb;
    use tonic::Code;

    #[test]
    fn the_first_preferred_region_with_a_running_node_is_chosen() {
        let mut raw = three_region_status("10.0.0.1:7070");
        raw.nodes[2].client_addr = "10.0.0.5:7070".to_string();
        let mut status = AccountStatus::from(raw.clone());
        // north has no running node, so east is next; its address gets a scheme.
        assert_eq!(
            choose_endpoint(&status, &names(&["north", "east"])),
            Ok("http://10.0.0.5:7070".to_string())
        );
        // Within west the leader (n1) comes before n2, whatever the order.
        raw.nodes[1].client_addr = "10.0.0.11:7070".to_string();
        status = AccountStatus::from(raw);
        assert_eq!(
            choose_endpoint(&status, &names(&["west"])),
            Ok("http://10.0.0.11:7070".to_string())
        );
        let none = choose_endpoint(&status, &names(&["north"])).unwrap_err();
        assert_eq!(
            none,
            ClientError::NoRunningNode {
                regions: names(&["north"])
            }
        );
        assert!(none.is_retryable());
    }

    #[test]
    fn an_unknown_region_names_the_known_ones() {
        let raw = three_region_status("10.0.0.1:7070");
        let status = AccountStatus::from(raw.clone());
        let err = choose_endpoint(&status, &names(&["east", "south"])).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "region \"south\" is not in the account; its regions are: east, north, west"
        );
        // A server that reports only nodes still names its regions.
        let nodes_only = AccountStatus::from(pb::StatusResponse {
            nodes: raw.nodes.clone(),
            ..Default::default()
        });
        assert!(choose_endpoint(&nodes_only, &names(&["east"])).is_ok());
    }
}
