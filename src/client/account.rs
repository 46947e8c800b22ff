//! The account's configuration as the meta group holds it
//! (`Admin.Account`), in domain types: what `meridian account` and
//! `priorities` print and what `--region` resolves through. Regions come
//! first choice first. `Serialize` gives `meridian account --json`.

use serde::{Serialize, Serializer};

use crate::consistency::Consistency;
use crate::ids::{NodeId, RegionId};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Account {
    pub account: String,
    pub write_mode: String,
    /// `None` when the server left it unspecified or sent a level this
    /// client does not know.
    #[serde(serialize_with = "level_as_name")]
    pub default_consistency: Option<Consistency>,
    pub max_staleness_ops: u64,
    pub max_staleness_ms: u64,
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
    pub write_region: RegionId,
    pub epoch: u64,
    /// First choice first.
    pub regions: Vec<AccountRegion>,
    /// Meta voters holding no items.
    pub witnesses: Vec<AccountNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountRegion {
    pub name: RegionId,
    pub priority: u32,
    pub nodes: Vec<AccountNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountNode {
    pub node_id: NodeId,
    /// `host:port`; empty when the node has none.
    pub client_addr: String,
    pub meta_voter: bool,
}

impl Account {
    /// Region names, first choice first.
    pub fn priority_order(&self) -> Vec<String> {
        self.regions.iter().map(|r| r.name.to_string()).collect()
    }

    /// The client endpoints of the `preferred` regions' nodes, first
    /// region first; a region the account does not have is an error
    /// naming those it has.
    pub fn region_endpoints(&self, preferred: &[String]) -> Result<Vec<String>, String> {
        let mut endpoints = Vec::new();
        for name in preferred {
            let region = self
                .regions
                .iter()
                .find(|r| r.name.as_str() == name)
                .ok_or_else(|| {
                    format!(
                        "{name} is not a region of the account (the regions are {})",
                        self.priority_order().join(", ")
                    )
                })?;
            endpoints.extend(
                region
                    .nodes
                    .iter()
                    .filter(|n| !n.client_addr.is_empty())
                    .map(|n| format!("http://{}", n.client_addr)),
            );
        }
        Ok(endpoints)
    }

    pub(crate) fn sort(&mut self) {
        self.regions
            .sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    }
}

fn level_as_name<S: Serializer>(level: &Option<Consistency>, s: S) -> Result<S::Ok, S::Error> {
    match level {
        Some(level) => s.serialize_some(&level.to_string()),
        None => s.serialize_none(),
    }
}
