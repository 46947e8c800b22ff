//! `meridian account` (the configuration as the meta group holds it) and
//! `meridian priorities` (show or set the failover order; a new first
//! region is a switchover to it, reported as such). Text for people, JSON
//! for scripts; rendering is pure and tested here.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::cli::options::{Output, connect_admin};
use crate::cli::print;
use crate::cli::render::{non_empty_or_dash, or_dash};
use crate::client::account::{Account, AccountNode};
use crate::client::{ADMIN_CALL_TIMEOUT, SWITCHOVER_CALL_TIMEOUT};
use crate::ids::RegionId;

/// Region names in failover order, checked to be non-empty and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityList(pub Vec<String>);

/// Parses `east,west,north`: names are trimmed; an empty name or a name
/// given twice is refused with the offending name in the message.
pub fn parse_priority_list(text: &str) -> Result<PriorityList, String> {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for (position, raw) in text.split(',').enumerate() {
        let name = raw.trim();
        if name.is_empty() {
            return Err(format!(
                "region {} of {text:?} is empty; give names separated by commas, e.g. east,west",
                position + 1
            ));
        }
        if !seen.insert(name) {
            return Err(format!("region {name:?} is listed twice"));
        }
        names.push(name.to_string());
    }
    Ok(PriorityList(names))
}

pub async fn account(output: &Output) -> anyhow::Result<ExitCode> {
    let client = connect_admin(output, ADMIN_CALL_TIMEOUT).await?;
    let account = client.account().await.context("account")?;
    if output.json {
        print::json_pretty(&account)?;
    } else {
        print::out(account_text(&account))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show_priorities(output: &Output) -> anyhow::Result<ExitCode> {
    let client = connect_admin(output, ADMIN_CALL_TIMEOUT).await?;
    let account = client.account().await.context("account")?;
    print_priorities(output.json, &account.priority_order())?;
    Ok(ExitCode::SUCCESS)
}

/// Sets the order; a new first region is a switchover to it, which the
/// server completes before it answers, so the account read afterwards
/// names the new write region and epoch.
pub async fn set_priorities(output: &Output, order: PriorityList) -> anyhow::Result<ExitCode> {
    let client = connect_admin(output, SWITCHOVER_CALL_TIMEOUT).await?;
    let wanted = order.0.join(",");
    let before = client.account().await.context("account")?;
    let committed = client
        .set_priorities(order.0)
        .await
        .with_context(|| format!("set priorities {wanted}"))?;
    let after = client.account().await.context("account")?;
    let switchover = WriteRegionChange::between(&before, &after);
    if output.json {
        let view = serde_json::json!({ "regions": committed, "switchover": switchover });
        print::json_pretty(&view)?;
    } else {
        print::out(priorities_text(&committed))?;
        if let Some(change) = &switchover {
            print::line(change.to_text())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_priorities(json: bool, regions: &[String]) -> anyhow::Result<()> {
    if json {
        print::json_pretty(&serde_json::json!({ "regions": regions }))
    } else {
        print::out(priorities_text(regions))
    }
}

// ---- Pure rendering below.

pub fn priorities_text(regions: &[String]) -> String {
    let mut out = String::from("failover priorities, first choice first:\n");
    for (index, name) in regions.iter().enumerate() {
        let _ = writeln!(out, "  {}  {name}", index + 1);
    }
    out
}

/// A change of write region seen between two reads of the account: what
/// `priorities set` reports when its new first region took over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteRegionChange {
    pub from: RegionId,
    pub to: RegionId,
    pub epoch: u64,
}

impl WriteRegionChange {
    pub fn between(before: &Account, after: &Account) -> Option<WriteRegionChange> {
        (after.epoch > before.epoch && after.write_region != before.write_region).then(|| {
            WriteRegionChange {
                from: before.write_region.clone(),
                to: after.write_region.clone(),
                epoch: after.epoch,
            }
        })
    }

    pub fn to_text(&self) -> String {
        format!(
            "switchover: {} is the write region now (was {}), epoch {}",
            self.to, self.from, self.epoch
        )
    }
}

fn account_node_line(node: &AccountNode) -> String {
    let voter = if node.meta_voter { "  meta voter" } else { "" };
    format!(
        "    {}  {}{voter}",
        node.node_id,
        non_empty_or_dash(&node.client_addr)
    )
}

/// The whole `account` text: settings first, then the regions in priority
/// order with their nodes, then the witnesses.
pub fn account_text(r: &Account) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "account: {}", r.account);
    let _ = writeln!(out, "write mode: {}", non_empty_or_dash(&r.write_mode));
    let _ = writeln!(
        out,
        "default consistency: {}",
        or_dash(r.default_consistency)
    );
    let _ = writeln!(
        out,
        "bounded staleness: K = {} ops, T = {} ms",
        r.max_staleness_ops, r.max_staleness_ms
    );
    let _ = writeln!(
        out,
        "lease: ttl {} ms, renewed every {} ms",
        r.lease_ttl_ms, r.lease_renew_ms
    );
    let _ = writeln!(
        out,
        "write region: {} (epoch {})",
        non_empty_or_dash(r.write_region.as_str()),
        r.epoch
    );
    out.push_str("regions, first choice first:\n");
    for region in &r.regions {
        let role = if region.name == r.write_region {
            "  (write region)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {}  {}{role}", region.priority, region.name);
        for node in &region.nodes {
            let _ = writeln!(out, "{}", account_node_line(node));
        }
    }
    if !r.witnesses.is_empty() {
        out.push_str("witnesses (meta voters holding no items):\n");
        for node in &r.witnesses {
            let _ = writeln!(out, "{}", account_node_line(node));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pb::v1 as pb;

    #[test]
    fn a_new_first_priority_that_took_over_is_reported_as_a_switchover() {
        let before = account_response();
        let mut after = account_response();
        assert_eq!(WriteRegionChange::between(&before, &after), None);
        after.write_region = "east".into();
        after.epoch = 5;
        let change = WriteRegionChange::between(&before, &after).unwrap();
        assert_eq!(
            change.to_text(),
            "switchover: east is the write region now (was west), epoch 5"
        );
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "from": "west", "to": "east", "epoch": 5 })
        );
    }

    fn account_node(node_id: u64, meta_voter: bool) -> pb::AccountNode {
        pb::AccountNode {
            node_id,
            client_addr: format!("10.0.0.{node_id}:7070"),
            meta_voter,
        }
    }

    /// As the client hands it over: converted, regions in priority order.
    fn account_response() -> Account {
        Account::from(pb::AccountResponse {
            account: "acct".to_string(),
            write_mode: "single_write".to_string(),
            default_consistency: pb::Consistency::Session as i32,
            max_staleness_ops: 100_000,
            max_staleness_ms: 5000,
            lease_ttl_ms: 10_000,
            lease_renew_ms: 2000,
            regions: vec![
                pb::AccountRegion {
                    name: "east".to_string(),
                    priority: 2,
                    nodes: vec![account_node(5, true), account_node(6, false)],
                },
                pb::AccountRegion {
                    name: "west".to_string(),
                    priority: 1,
                    nodes: vec![account_node(1, true)],
                },
            ],
            witnesses: vec![account_node(9, true)],
            write_region: "west".to_string(),
            epoch: 4,
        })
    }

    #[test]
    fn account_text_lists_settings_then_regions_in_priority_order() {
        let text = account_text(&account_response());
        let expected = "\
account: acct
write mode: single_write
default consistency: session
bounded staleness: K = 100000 ops, T = 5000 ms
lease: ttl 10000 ms, renewed every 2000 ms
write region: west (epoch 4)
regions, first choice first:
  1  west  (write region)
    n1  10.0.0.1:7070  meta voter
  2  east
    n5  10.0.0.5:7070  meta voter
    n6  10.0.0.6:7070
witnesses (meta voters holding no items):
    n9  10.0.0.9:7070  meta voter
";
        assert_eq!(text, expected);
    }

    #[test]
    fn account_json_orders_regions_and_names_the_consistency() {
        let json = serde_json::to_value(account_response()).unwrap();
        assert_eq!(json["default_consistency"], "session");
        assert_eq!(json["regions"][0]["name"], "west");
        assert_eq!(json["regions"][1]["nodes"][1]["meta_voter"], false);
        assert_eq!(json["witnesses"][0]["node_id"], 9);
        assert_eq!(json["epoch"], 4);
        let unspecified = Account::from(pb::AccountResponse::default());
        let json = serde_json::to_value(&unspecified).unwrap();
        assert!(json["default_consistency"].is_null());
    }

    #[test]
    fn a_preferred_region_resolves_to_its_configured_nodes() {
        let account = account_response();
        assert_eq!(
            account
                .region_endpoints(&["east".into(), "west".into()])
                .unwrap(),
            [
                "http://10.0.0.5:7070",
                "http://10.0.0.6:7070",
                "http://10.0.0.1:7070"
            ]
        );
        assert_eq!(
            account.region_endpoints(&["mars".into()]).unwrap_err(),
            "mars is not a region of the account (the regions are west, east)"
        );
    }

    #[test]
    fn priorities_come_from_the_account_first_choice_first() {
        let order = account_response().priority_order();
        assert_eq!(order, ["west", "east"]);
        assert_eq!(
            priorities_text(&order),
            "failover priorities, first choice first:\n  1  west\n  2  east\n"
        );
    }
}
