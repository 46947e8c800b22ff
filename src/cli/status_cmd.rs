//! `meridian status`: the account's regions and nodes and where failover
//! stands, as tables for people or JSON ([`AccountStatus`]'s `Serialize`)
//! for scripts. Rendering is pure and tested here from hand-built
//! statuses; the async part only asks the node and prints.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::options::{Output, connect_admin};
use crate::cli::print;
use crate::cli::render::{glsn_text, non_empty_or_dash, or_dash, render_table};
use crate::client::ADMIN_CALL_TIMEOUT;
use crate::client::status::{AccountStatus, NodeStatus, RegionStatus};

pub async fn status(output: &Output, digests: bool) -> anyhow::Result<ExitCode> {
    let client = connect_admin(output, ADMIN_CALL_TIMEOUT).await?;
    let status = client.status_with(digests).await.context("status")?;
    if output.json {
        print::json_pretty(&status)?;
    } else {
        print::out(status_text(&status))?;
    }
    Ok(ExitCode::SUCCESS)
}

// ---- Pure rendering below.

/// The whole `status` text: the account line, the region table (when the
/// server reports regions), the node table, then one line per warning.
pub fn status_text(r: &AccountStatus) -> String {
    let mut out = format!(
        "account: {}  write region: {}  epoch: {}\n",
        r.account,
        non_empty_or_dash(r.write_region.as_str()),
        r.epoch
    );
    if !r.regions.is_empty() {
        out.push_str(&failover_lines(r));
        out.push('\n');
        out.push_str(&region_table(&r.regions));
    }
    out.push('\n');
    out.push_str(&node_table(&r.nodes));
    out.push_str(&digest_lines(&r.nodes));
    for warning in &r.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

/// Where failover stands: on, off or paused, then a change of write region
/// under way, a scheduled switchover and why the last failover found no
/// region, each on its own line when there is one.
pub fn failover_lines(r: &AccountStatus) -> String {
    let mode = match (r.failover_enabled, r.paused) {
        (true, false) => "on",
        (true, true) => {
            "paused (maintenance mode: no automatic failover until `meridian resume`; a switchover still works)"
        }
        (false, false) => "off (writes move only by `meridian failover --to REGION`)",
        (false, true) => "off, and paused",
    };
    let mut out = format!("failover: {mode}\n");
    if let Some(transition) = &r.transition {
        let _ = writeln!(out, "under way: {transition}");
    }
    if let Some(scheduled) = &r.scheduled {
        let _ = writeln!(out, "scheduled switchover: {scheduled}");
    }
    if let Some(why) = &r.failover_blocked {
        let _ = writeln!(out, "failover blocked: {why}");
    }
    out
}

/// Priority, then name: the failover order an operator reads it in.
fn sorted_regions(regions: &[RegionStatus]) -> Vec<&RegionStatus> {
    let mut sorted: Vec<&RegionStatus> = regions.iter().collect();
    sorted.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    sorted
}

const REGION_COLUMNS: [&str; 9] = [
    "REGION", "PRIORITY", "ROLE", "STATE", "LEASE_MS", "APPLIED", "LAG_OPS", "LAG_MS", "LEADER",
];

pub fn region_table(regions: &[RegionStatus]) -> String {
    let rows: Vec<Vec<String>> = sorted_regions(regions)
        .into_iter()
        .map(|r| {
            vec![
                r.name.to_string(),
                r.priority.to_string(),
                r.role.clone(),
                r.state.clone(),
                lease_text(r),
                or_dash(glsn_text(r.applied_glsn)),
                or_dash(r.lag_ops),
                or_dash(r.lag_ms),
                or_dash(r.leader_id),
            ]
        })
        .collect();
    render_table(&REGION_COLUMNS, &rows)
}

/// The lease left in ms, marked when it is a failsafe lease.
fn lease_text(r: &RegionStatus) -> String {
    match (r.lease_remaining_ms, r.lease_failsafe) {
        (Some(ms), true) => format!("{ms} failsafe"),
        (ms, _) => or_dash(ms),
    }
}

/// Region, then node id: the order an operator scans the table in.
fn sorted_nodes(nodes: &[NodeStatus]) -> Vec<&NodeStatus> {
    let mut sorted: Vec<&NodeStatus> = nodes.iter().collect();
    sorted.sort_by(|a, b| (&a.region, a.node_id).cmp(&(&b.region, b.node_id)));
    sorted
}

const NODE_COLUMNS: [&str; 9] = [
    "REGION", "NODE", "ROLE", "STATE", "TERM", "LAST_LOG", "APPLIED", "LAG", "ADDRESS",
];

pub fn node_table(nodes: &[NodeStatus]) -> String {
    let rows: Vec<Vec<String>> = sorted_nodes(nodes)
        .into_iter()
        .map(|n| {
            vec![
                n.region.to_string(),
                n.node_id.to_string(),
                n.role.clone(),
                if n.resyncing {
                    format!("{} (re-syncing)", n.state)
                } else {
                    n.state.clone()
                },
                n.term.to_string(),
                n.last_log_index.to_string(),
                n.applied_index.to_string(),
                or_dash(n.lag_entries),
                n.client_addr.clone(),
            ]
        })
        .collect();
    render_table(&NODE_COLUMNS, &rows)
}

/// With `--digests`: whether every replica that answered holds the same
/// items, and each replica's digest when they differ. Nothing without.
pub fn digest_lines(nodes: &[NodeStatus]) -> String {
    let digests: Vec<(&NodeStatus, &str)> = sorted_nodes(nodes)
        .into_iter()
        .filter_map(|n| n.items_digest.as_deref().map(|d| (n, d)))
        .collect();
    let Some((_, first)) = digests.first() else {
        return String::new();
    };
    if digests.iter().all(|(_, d)| d == first) {
        return format!(
            "items: the {} replicas hold the same ({first})\n",
            digests.len()
        );
    }
    let rows: Vec<Vec<String>> = digests
        .iter()
        .map(|(n, d)| vec![n.region.to_string(), n.node_id.to_string(), d.to_string()])
        .collect();
    format!(
        "items: the replicas differ\n{}",
        render_table(&["REGION", "NODE", "ITEMS_DIGEST"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glsn::Glsn;
    use crate::wire::pb::v1 as pb;

    fn glsn(epoch: u64, lsn: u64) -> Option<pb::Glsn> {
        Some(Glsn::new(epoch, lsn).into())
    }

    fn node(region: &str, node_id: u64, lag: Option<u64>) -> NodeStatus {
        NodeStatus::from(pb::NodeStatus {
            region: region.to_string(),
            node_id,
            role: if node_id == 1 { "leader" } else { "follower" }.to_string(),
            state: "running".to_string(),
            term: 3,
            last_log_index: 1042,
            applied_index: 1040,
            lag_entries: lag,
            client_addr: format!("127.0.0.1:70{node_id:02}"),
            peer_addr: format!("127.0.0.1:71{node_id:02}"),
            leader_id: Some(1),
            applied_glsn: glsn(1, 1040),
            ..Default::default()
        })
    }

    fn region(name: &str, priority: u32, role: &str, lag: Option<(u64, u64)>) -> RegionStatus {
        RegionStatus::from(pb::RegionStatus {
            name: name.to_string(),
            priority,
            role: role.to_string(),
            state: "online".to_string(),
            lease_remaining_ms: Some(4200),
            applied_glsn: glsn(3, 1000),
            lag_ops: lag.map(|(ops, _)| ops),
            lag_ms: lag.map(|(_, ms)| ms),
            leader_id: Some(1),
            lease_failsafe: false,
        })
    }

    fn two_region_status() -> AccountStatus {
        let mut status = AccountStatus {
            account: "acct".to_string(),
            nodes: vec![node("west", 1, Some(0)), node("east", 1, None)],
            write_region: "west".into(),
            epoch: 3,
            regions: vec![
                region("east", 2, "read", Some((12, 340))),
                region("west", 1, "write", None),
            ],
            warnings: vec!["a region loss stops strong writes".to_string()],
            failover_enabled: true,
            ..Default::default()
        };
        // As the client hands it over: in priority order.
        status.sort();
        status
    }

    /// clap checks a command tree only when it is built: this builds the
    /// binary's whole tree, so a clash between two flags fails here.
    #[test]
    fn a_failsafe_lease_is_marked_in_the_region_table() {
        let mut west = region("west", 1, "write", None);
        assert!(region_table(std::slice::from_ref(&west)).contains(" 4200 "));
        west.lease_failsafe = true;
        let table = region_table(std::slice::from_ref(&west));
        assert!(table.contains(" 4200 failsafe "), "{table}");
        west.lease_remaining_ms = None;
        assert!(!region_table(&[west]).contains("failsafe"));
    }

    #[test]
    fn digests_say_whether_the_replicas_agree_and_who_differs() {
        let with = |id: u64, digest: Option<&str>| NodeStatus {
            items_digest: digest.map(str::to_string),
            ..node("west", id, None)
        };
        assert_eq!(digest_lines(&[with(1, None), with(2, None)]), "");
        assert_eq!(
            digest_lines(&[with(2, Some("ab12")), with(1, Some("ab12"))]),
            "items: the 2 replicas hold the same (ab12)\n"
        );
        let differ = digest_lines(&[with(1, Some("ab12")), with(2, Some("ff00"))]);
        let lines: Vec<&str> = differ.lines().collect();
        assert_eq!(lines[0], "items: the replicas differ");
        assert!(lines[2].starts_with("west    n1    ab12"), "{differ}");
        assert!(lines[3].starts_with("west    n2    ff00"), "{differ}");
        let mut resyncing = with(3, None);
        resyncing.resyncing = true;
        assert!(node_table(&[resyncing]).contains("running (re-syncing)"));
    }

    #[test]
    fn status_text_shows_header_regions_nodes_and_warnings() {
        let text = status_text(&two_region_status());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "account: acct  write region: west  epoch: 3");
        assert_eq!(lines[1], "failover: on");
        assert!(
            lines[3].starts_with("REGION  PRIORITY  ROLE   STATE"),
            "{text}"
        );
        // West has priority 1, so it comes first whatever the server's order.
        assert!(
            lines[4].starts_with("west    1         write  online"),
            "{text}"
        );
        assert!(lines[5].starts_with("east    2         read"), "{text}");
        let lag_ms_at = lines[3].find("LAG_MS").unwrap();
        assert_eq!(&lines[5][lag_ms_at..lag_ms_at + 3], "340", "{text}");
        assert_eq!(&lines[4][lag_ms_at..lag_ms_at + 1], "-", "{text}");
        assert!(lines[5].contains("e3:1000"), "{text}");
        assert!(lines[5].ends_with("n1"), "{text}");
        assert!(lines[7].starts_with("REGION  NODE  ROLE"), "{text}");
        assert_eq!(
            lines.last(),
            Some(&"warning: a region loss stops strong writes")
        );
    }

    #[test]
    fn status_says_where_failover_stands() {
        let mut r = two_region_status();
        r.paused = true;
        r.transition = Some("switchover west -> east".into());
        r.scheduled = Some("north at 2026-11-22T10:00:00Z".into());
        r.failover_blocked = Some("east lags 120 operations".into());
        let text = status_text(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            &lines[1..5],
            [
                "failover: paused (maintenance mode: no automatic failover until `meridian resume`; a switchover still works)",
                "under way: switchover west -> east",
                "scheduled switchover: north at 2026-11-22T10:00:00Z",
                "failover blocked: east lags 120 operations",
            ]
        );
        r.failover_enabled = false;
        r.paused = false;
        assert!(
            failover_lines(&r).starts_with(
                "failover: off (writes move only by `meridian failover --to REGION`)\n"
            )
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["failover_enabled"], false);
        assert_eq!(json["paused"], false);
        assert_eq!(json["transition"], "switchover west -> east");
        assert_eq!(json["scheduled"], "north at 2026-11-22T10:00:00Z");
        assert_eq!(json["failover_blocked"], "east lags 120 operations");
        let quiet = serde_json::to_value(two_region_status()).unwrap();
        assert_eq!(quiet["failover_enabled"], true);
        for absent in ["transition", "scheduled", "failover_blocked"] {
            assert!(quiet[absent].is_null(), "{absent}: {quiet}");
        }
    }

    #[test]
    fn status_text_without_regions_is_the_node_table_as_before() {
        let response = AccountStatus {
            account: "acct".to_string(),
            nodes: vec![node("west", 1, Some(0))],
            ..Default::default()
        };
        assert_eq!(
            status_text(&response),
            format!(
                "account: acct  write region: -  epoch: 0\n\n{}",
                node_table(&response.nodes)
            )
        );
    }

    #[test]
    fn node_table_is_sorted_and_aligned() {
        let nodes = [
            node("west", 12, Some(2)),
            node("east", 1, None),
            node("west", 1, Some(0)),
        ];
        let table = node_table(&nodes);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("REGION  NODE  ROLE"), "{table}");
        assert!(lines[1].starts_with("east    n1  "), "{table}");
        assert!(lines[3].starts_with("west    n12 "), "{table}");
        // Every column starts at the same offset on every line.
        let address_at = lines[0].find("ADDRESS").unwrap();
        for line in &lines[1..] {
            assert_eq!(line.find("127.0.0.1"), Some(address_at), "{table}");
        }
        let lag_at = lines[0].find("LAG").unwrap();
        assert_eq!(&lines[1][lag_at..lag_at + 1], "-", "{table}");
    }

    #[test]
    fn status_json_names_every_field() {
        let json = serde_json::to_value(two_region_status()).unwrap();
        assert_eq!(json["account"], "acct");
        assert_eq!(json["write_region"], "west");
        assert_eq!(json["epoch"], 3);
        assert_eq!(json["warnings"][0], "a region loss stops strong writes");
        let east = &json["regions"][1];
        assert_eq!(east["name"], "east");
        assert_eq!(east["lag_ops"], 12);
        assert_eq!(east["lag_ms"], 340);
        assert_eq!(east["applied_glsn"], "e3:1000");
        assert_eq!(east["lease_remaining_ms"], 4200);
        assert!(json["regions"][0]["lag_ms"].is_null());
        let n = &json["nodes"][0];
        for field in [
            "region",
            "node_id",
            "role",
            "state",
            "term",
            "last_log_index",
            "applied_index",
            "applied_glsn",
            "lag_entries",
            "client_addr",
            "peer_addr",
            "leader_id",
        ] {
            assert!(n.get(field).is_some(), "missing {field}: {n}");
        }
        assert!(n["lag_entries"].is_null(), "east sorts first: {n}");
    }
}
