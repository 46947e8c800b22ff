//! The admin subcommands of `meridian`: `status` (the account's regions and
//! nodes, and where failover stands), `account` (its configuration as the
//! meta group holds it) and `priorities` (show or set the failover order;
//! a new first region is a switchover to it). Like the client commands
//! they print text for people or JSON for scripts; rendering is pure and
//! tested here from hand-built responses, the async part only calls the
//! server and prints. `failover`, `pause`, `resume` and `history` are in
//! [`super::failover_cmds`], `fault` in [`super::fault_cmds`]; they call
//! the server through [`admin_channel`], whose deadline leaves room for a
//! switchover.
//!
//! `priorities set` validates its list before sending it (names non-empty,
//! none twice), so a typo is a usage error (exit 2) rather than a round trip;
//! whether the list names every region of the account is the server's call.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use crate::api::status::ERROR_METADATA_KEY;
use crate::cli::client_cmds::{Output, glsn_text};
use crate::client::CONNECT_TIMEOUT;
use crate::ids::NodeId;
use crate::limits::GRPC_MESSAGE_BYTES_MAX;
use crate::wire::convert::consistency_from_wire;
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::admin_client::AdminClient;

/// The deadline of an admin call that may change the write region: the
/// server gives a switchover 15 s (fence, catch-up, new epoch), and its
/// answer needs a moment more.
pub const SWITCHOVER_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The deadline of every other admin call.
pub const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel to `--endpoint`, or through it to a node of the preferred
/// regions, whose calls end after `timeout`.
///
/// The preferred region's nodes come from `Admin.Account` (the configured
/// nodes), not from status: a node cut off from a region reports all of
/// its nodes unreachable, yet a client can still reach them, and that is
/// exactly when an operator asks another region (`--region east`).
pub async fn admin_channel(output: &Output, timeout: Duration) -> anyhow::Result<Channel> {
    let first = open_channel(&output.endpoint, timeout)
        .await
        .with_context(|| format!("connecting to {}", output.endpoint))?;
    if output.regions.is_empty() {
        return Ok(first);
    }
    let through = || {
        format!(
            "connecting to region {} through {}",
            output.regions.join(" or "),
            output.endpoint
        )
    };
    let account = account_via(&mut AdminClient::new(first))
        .await
        .with_context(through)?;
    let candidates = region_endpoints(&account, &output.regions)
        .map_err(anyhow::Error::msg)
        .with_context(through)?;
    for endpoint in &candidates {
        if let Ok(channel) = open_channel(endpoint, timeout).await {
            return Ok(channel);
        }
    }
    Err(anyhow::anyhow!(
        "no node answered (tried {})",
        candidates.join(", ")
    ))
    .with_context(through)
}

/// An `Admin` client over [`admin_channel`], with meridian's message size
/// limit both ways.
pub async fn admin_client(
    output: &Output,
    timeout: Duration,
) -> anyhow::Result<AdminClient<Channel>> {
    Ok(AdminClient::new(admin_channel(output, timeout).await?)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX))
}

async fn open_channel(endpoint: &str, timeout: Duration) -> anyhow::Result<Channel> {
    let channel = Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("invalid endpoint {endpoint:?}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect()
        .await?;
    Ok(channel)
}

/// The client endpoints of the `preferred` regions' nodes, first region
/// first; a region the account does not have is an error naming those it
/// has.
pub fn region_endpoints(
    account: &pb::AccountResponse,
    preferred: &[String],
) -> Result<Vec<String>, String> {
    let mut endpoints = Vec::new();
    for name in preferred {
        let region = account
            .regions
            .iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| {
                format!(
                    "{name} is not a region of the account (the regions are {})",
                    priority_order(&account.regions).join(", ")
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

/// A server's refusal as the client commands print one: the gRPC code, the
/// server's message and its stable error name, e.g. `FailedPrecondition:
/// north is offline: ... [REFUSED]`.
pub fn rpc_error(status: tonic::Status) -> anyhow::Error {
    let name = status
        .metadata()
        .get(ERROR_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .map(|n| format!(" [{n}]"))
        .unwrap_or_default();
    anyhow::anyhow!("{:?}: {}{name}", status.code(), status.message())
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum AdminCommand {
    /// Show the account: write region and epoch, whether failover is on,
    /// paused, under way, scheduled or blocked, every region's role, lease
    /// and lag, and every node's role, term, log and lag.
    Status {
        #[command(flatten)]
        output: Output,
        /// Also ask every node for a digest of the items it holds, and say
        /// whether all replicas hold the same (slower: each node hashes
        /// its items).
        #[arg(long)]
        digests: bool,
    },
    /// Show the account configuration: write mode, default consistency,
    /// staleness bounds, leases, regions in priority order with their nodes.
    Account {
        #[command(flatten)]
        output: Output,
    },
    /// Show or set the failover priorities (the order in which regions
    /// become the write region); a new first region is a switchover to it.
    Priorities(PrioritiesArgs),
}

/// `meridian priorities` alone shows the order, like `priorities show`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PrioritiesArgs {
    #[command(flatten)]
    pub output: Output,
    #[command(subcommand)]
    pub action: Option<PrioritiesAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum PrioritiesAction {
    /// Print the regions, first choice first.
    Show {
        #[command(flatten)]
        output: Output,
    },
    /// Set the order: every region of the account once, first choice
    /// first, e.g. `east,west,north`. When the first is not the write
    /// region, writes move to it by a switchover before this returns.
    Set {
        #[command(flatten)]
        output: Output,
        #[arg(value_name = "REGIONS", value_parser = parse_priority_list)]
        order: PriorityList,
    },
}

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

pub async fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::Status { output, digests } => status(&output, digests).await,
        AdminCommand::Account { output } => account(&output).await,
        AdminCommand::Priorities(PrioritiesArgs { output, action }) => match action {
            None => show_priorities(&output).await,
            Some(PrioritiesAction::Show { output }) => show_priorities(&output).await,
            Some(PrioritiesAction::Set { output, order }) => set_priorities(&output, order).await,
        },
    }
}

async fn status(output: &Output, digests: bool) -> anyhow::Result<ExitCode> {
    let mut admin = admin_client(output, ADMIN_CALL_TIMEOUT).await?;
    let response = admin
        .status(pb::StatusRequest { digests })
        .await
        .map_err(rpc_error)
        .context("status")?
        .into_inner();
    if output.json {
        let view = StatusOutput::new(&response);
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", status_text(&response));
    }
    Ok(ExitCode::SUCCESS)
}

async fn account(output: &Output) -> anyhow::Result<ExitCode> {
    let mut admin = admin_client(output, ADMIN_CALL_TIMEOUT).await?;
    let response = account_via(&mut admin).await?;
    if output.json {
        let view = AccountOutput::new(&response);
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", account_text(&response));
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_priorities(output: &Output) -> anyhow::Result<ExitCode> {
    let mut admin = admin_client(output, ADMIN_CALL_TIMEOUT).await?;
    let response = account_via(&mut admin).await?;
    print_priorities(output.json, &priority_order(&response.regions))?;
    Ok(ExitCode::SUCCESS)
}

/// Sets the order; a new first region is a switchover to it, which the
/// server completes before it answers, so the account read afterwards
/// names the new write region and epoch.
async fn set_priorities(output: &Output, order: PriorityList) -> anyhow::Result<ExitCode> {
    let mut admin = admin_client(output, SWITCHOVER_CALL_TIMEOUT).await?;
    let wanted = order.0.join(",");
    let before = account_via(&mut admin).await?;
    let committed = admin
        .set_priorities(pb::SetPrioritiesRequest { regions: order.0 })
        .await
        .map_err(rpc_error)
        .with_context(|| format!("set priorities {wanted}"))?
        .into_inner()
        .regions;
    let after = account_via(&mut admin).await?;
    let switchover = WriteRegionChange::between(&before, &after);
    if output.json {
        let view = serde_json::json!({ "regions": committed, "switchover": switchover });
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", priorities_text(&committed));
        if let Some(change) = &switchover {
            println!("{}", change.to_text());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn account_via(admin: &mut AdminClient<Channel>) -> anyhow::Result<pb::AccountResponse> {
    Ok(admin
        .account(pb::AccountRequest {})
        .await
        .map_err(rpc_error)
        .context("account")?
        .into_inner())
}

fn print_priorities(json: bool, regions: &[String]) -> anyhow::Result<()> {
    if json {
        let view = serde_json::json!({ "regions": regions });
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", priorities_text(regions));
    }
    Ok(())
}

// ---- Pure rendering below: tables, status, account, priorities.

/// Rows under a header, each column as wide as its widest cell, two spaces
/// apart, with no trailing blanks.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        assert_eq!(
            row.len(),
            header.len(),
            "a table row has one cell per column"
        );
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or("-".to_string(), |v| v.to_string())
}

fn non_empty_or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// The whole `status` text: the account line, the region table (when the
/// server reports regions), the node table, then one line per warning.
pub fn status_text(r: &pb::StatusResponse) -> String {
    let mut out = format!(
        "account: {}  write region: {}  epoch: {}\n",
        r.account,
        non_empty_or_dash(&r.write_region),
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
pub fn failover_lines(r: &pb::StatusResponse) -> String {
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
fn sorted_regions(regions: &[pb::RegionStatus]) -> Vec<&pb::RegionStatus> {
    let mut sorted: Vec<&pb::RegionStatus> = regions.iter().collect();
    sorted.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    sorted
}

const REGION_COLUMNS: [&str; 9] = [
    "REGION", "PRIORITY", "ROLE", "STATE", "LEASE_MS", "APPLIED", "LAG_OPS", "LAG_MS", "LEADER",
];

pub fn region_table(regions: &[pb::RegionStatus]) -> String {
    let rows: Vec<Vec<String>> = sorted_regions(regions)
        .into_iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.priority.to_string(),
                r.role.clone(),
                r.state.clone(),
                lease_text(r),
                or_dash(glsn_text(r.applied_glsn)),
                or_dash(r.lag_ops),
                or_dash(r.lag_ms),
                or_dash(r.leader_id.map(NodeId)),
            ]
        })
        .collect();
    render_table(&REGION_COLUMNS, &rows)
}

/// The lease left in ms, marked when it is a failsafe lease.
fn lease_text(r: &pb::RegionStatus) -> String {
    match (r.lease_remaining_ms, r.lease_failsafe) {
        (Some(ms), true) => format!("{ms} failsafe"),
        (ms, _) => or_dash(ms),
    }
}

/// Region, then node id: the order an operator scans the table in.
fn sorted_nodes(nodes: &[pb::NodeStatus]) -> Vec<&pb::NodeStatus> {
    let mut sorted: Vec<&pb::NodeStatus> = nodes.iter().collect();
    sorted.sort_by(|a, b| (&a.region, a.node_id).cmp(&(&b.region, b.node_id)));
    sorted
}

const NODE_COLUMNS: [&str; 9] = [
    "REGION", "NODE", "ROLE", "STATE", "TERM", "LAST_LOG", "APPLIED", "LAG", "ADDRESS",
];

pub fn node_table(nodes: &[pb::NodeStatus]) -> String {
    let rows: Vec<Vec<String>> = sorted_nodes(nodes)
        .into_iter()
        .map(|n| {
            vec![
                n.region.clone(),
                NodeId(n.node_id).to_string(),
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
pub fn digest_lines(nodes: &[pb::NodeStatus]) -> String {
    let digests: Vec<(&pb::NodeStatus, &str)> = sorted_nodes(nodes)
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
        .map(|(n, d)| {
            vec![
                n.region.clone(),
                NodeId(n.node_id).to_string(),
                d.to_string(),
            ]
        })
        .collect();
    format!(
        "items: the replicas differ\n{}",
        render_table(&["REGION", "NODE", "ITEMS_DIGEST"], &rows)
    )
}

/// One region in `status --json`; absent figures are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionOutput {
    pub name: String,
    pub priority: u32,
    pub role: String,
    pub state: String,
    pub lease_remaining_ms: Option<u64>,
    /// The lease comes from failsafe mode, not the meta group.
    pub lease_failsafe: bool,
    pub applied_glsn: Option<String>,
    pub lag_ops: Option<u64>,
    pub lag_ms: Option<u64>,
    pub leader_id: Option<u64>,
}

/// One node in `status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeOutput {
    pub region: String,
    pub node_id: u64,
    pub role: String,
    pub state: String,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub applied_glsn: Option<String>,
    pub lag_entries: Option<u64>,
    pub client_addr: String,
    pub peer_addr: String,
    pub leader_id: Option<u64>,
    /// Re-syncing from another region's state image: it serves no reads.
    pub resyncing: bool,
    /// With `--digests`.
    pub items_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusOutput {
    pub account: String,
    pub write_region: String,
    pub epoch: u64,
    pub failover_enabled: bool,
    pub paused: bool,
    /// A change of write region under way, e.g. `switchover west -> east`.
    pub transition: Option<String>,
    /// A scheduled switchover, e.g. `east at 2026-11-22T10:00:00Z`.
    pub scheduled: Option<String>,
    /// Why the last failover found no region to take over.
    pub failover_blocked: Option<String>,
    pub regions: Vec<RegionOutput>,
    pub nodes: Vec<NodeOutput>,
    pub warnings: Vec<String>,
}

impl StatusOutput {
    pub fn new(r: &pb::StatusResponse) -> StatusOutput {
        let regions = sorted_regions(&r.regions)
            .into_iter()
            .map(|g| RegionOutput {
                name: g.name.clone(),
                priority: g.priority,
                role: g.role.clone(),
                state: g.state.clone(),
                lease_remaining_ms: g.lease_remaining_ms,
                lease_failsafe: g.lease_failsafe,
                applied_glsn: glsn_text(g.applied_glsn),
                lag_ops: g.lag_ops,
                lag_ms: g.lag_ms,
                leader_id: g.leader_id,
            })
            .collect();
        let nodes = sorted_nodes(&r.nodes)
            .into_iter()
            .map(|n| NodeOutput {
                region: n.region.clone(),
                node_id: n.node_id,
                role: n.role.clone(),
                state: n.state.clone(),
                term: n.term,
                last_log_index: n.last_log_index,
                applied_index: n.applied_index,
                applied_glsn: glsn_text(n.applied_glsn),
                lag_entries: n.lag_entries,
                client_addr: n.client_addr.clone(),
                peer_addr: n.peer_addr.clone(),
                leader_id: n.leader_id,
                resyncing: n.resyncing,
                items_digest: n.items_digest.clone(),
            })
            .collect();
        StatusOutput {
            account: r.account.clone(),
            write_region: r.write_region.clone(),
            epoch: r.epoch,
            failover_enabled: r.failover_enabled,
            paused: r.paused,
            transition: r.transition.clone(),
            scheduled: r.scheduled.clone(),
            failover_blocked: r.failover_blocked.clone(),
            regions,
            nodes,
            warnings: r.warnings.clone(),
        }
    }
}

/// The account's default level by name; `None` when the server left it
/// unspecified or sent a number this client does not know.
fn default_consistency_text(raw: i32) -> Option<String> {
    consistency_from_wire(raw)
        .ok()
        .flatten()
        .map(|c| c.to_string())
}

/// Priority, then name, whatever order the server sent.
fn sorted_account_regions(regions: &[pb::AccountRegion]) -> Vec<&pb::AccountRegion> {
    let mut sorted: Vec<&pb::AccountRegion> = regions.iter().collect();
    sorted.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    sorted
}

/// Region names, first choice first.
pub fn priority_order(regions: &[pb::AccountRegion]) -> Vec<String> {
    sorted_account_regions(regions)
        .into_iter()
        .map(|r| r.name.clone())
        .collect()
}

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
    pub from: String,
    pub to: String,
    pub epoch: u64,
}

impl WriteRegionChange {
    pub fn between(
        before: &pb::AccountResponse,
        after: &pb::AccountResponse,
    ) -> Option<WriteRegionChange> {
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

fn account_node_line(node: &pb::AccountNode) -> String {
    let voter = if node.meta_voter { "  meta voter" } else { "" };
    format!(
        "    {}  {}{voter}",
        NodeId(node.node_id),
        non_empty_or_dash(&node.client_addr)
    )
}

/// The whole `account` text: settings first, then the regions in priority
/// order with their nodes, then the witnesses.
pub fn account_text(r: &pb::AccountResponse) -> String {
    let mut out = String::new();
    let default = default_consistency_text(r.default_consistency);
    let _ = writeln!(out, "account: {}", r.account);
    let _ = writeln!(out, "write mode: {}", non_empty_or_dash(&r.write_mode));
    let _ = writeln!(out, "default consistency: {}", or_dash(default));
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
        non_empty_or_dash(&r.write_region),
        r.epoch
    );
    out.push_str("regions, first choice first:\n");
    for region in sorted_account_regions(&r.regions) {
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountNodeOutput {
    pub node_id: u64,
    pub client_addr: String,
    pub meta_voter: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRegionOutput {
    pub name: String,
    pub priority: u32,
    pub nodes: Vec<AccountNodeOutput>,
}

/// `account --json`: the response's fields, the consistency by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountOutput {
    pub account: String,
    pub write_mode: String,
    pub default_consistency: Option<String>,
    pub max_staleness_ops: u64,
    pub max_staleness_ms: u64,
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
    pub write_region: String,
    pub epoch: u64,
    /// First choice first.
    pub regions: Vec<AccountRegionOutput>,
    pub witnesses: Vec<AccountNodeOutput>,
}

fn account_nodes(nodes: &[pb::AccountNode]) -> Vec<AccountNodeOutput> {
    nodes
        .iter()
        .map(|n| AccountNodeOutput {
            node_id: n.node_id,
            client_addr: n.client_addr.clone(),
            meta_voter: n.meta_voter,
        })
        .collect()
}

impl AccountOutput {
    pub fn new(r: &pb::AccountResponse) -> AccountOutput {
        let regions = sorted_account_regions(&r.regions)
            .into_iter()
            .map(|g| AccountRegionOutput {
                name: g.name.clone(),
                priority: g.priority,
                nodes: account_nodes(&g.nodes),
            })
            .collect();
        AccountOutput {
            account: r.account.clone(),
            write_mode: r.write_mode.clone(),
            default_consistency: default_consistency_text(r.default_consistency),
            max_staleness_ops: r.max_staleness_ops,
            max_staleness_ms: r.max_staleness_ms,
            lease_ttl_ms: r.lease_ttl_ms,
            lease_renew_ms: r.lease_renew_ms,
            write_region: r.write_region.clone(),
            epoch: r.epoch,
            regions,
            witnesses: account_nodes(&r.witnesses),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::DEFAULT_ENDPOINT;
    use clap::Parser;

    /// The binary nests these under its own parser; this stands in for it.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: AdminCommand,
    }

    fn parse(argv: &[&str]) -> Result<AdminCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("meridian").chain(argv.iter().copied())).map(|c| c.cmd)
    }

    fn glsn(epoch: u64, lsn: u64) -> Option<pb::Glsn> {
        Some(pb::Glsn { epoch, lsn })
    }

    fn node(region: &str, node_id: u64, lag: Option<u64>) -> pb::NodeStatus {
        pb::NodeStatus {
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
        }
    }

    fn region(name: &str, priority: u32, role: &str, lag: Option<(u64, u64)>) -> pb::RegionStatus {
        pb::RegionStatus {
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
        }
    }

    fn two_region_status() -> pb::StatusResponse {
        pb::StatusResponse {
            account: "acct".to_string(),
            nodes: vec![node("west", 1, Some(0)), node("east", 1, None)],
            write_region: "west".to_string(),
            epoch: 3,
            regions: vec![
                region("east", 2, "read", Some((12, 340))),
                region("west", 1, "write", None),
            ],
            warnings: vec!["a region loss stops strong writes".to_string()],
            failover_enabled: true,
            ..Default::default()
        }
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
        let with = |id: u64, digest: Option<&str>| pb::NodeStatus {
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
    fn the_whole_command_line_is_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn status_account_and_priorities_parse() {
        assert!(matches!(
            parse(&["status", "--json", "--region=east"]).unwrap(),
            AdminCommand::Status {
                output: Output { json: true, .. },
                digests: false,
            }
        ));
        assert!(matches!(
            parse(&["status", "--digests"]).unwrap(),
            AdminCommand::Status { digests: true, .. }
        ));
        let AdminCommand::Account { output } = parse(&["account"]).unwrap() else {
            panic!("not account");
        };
        assert_eq!(output.endpoint, DEFAULT_ENDPOINT);
        let AdminCommand::Priorities(bare) = parse(&["priorities", "--json"]).unwrap() else {
            panic!("not priorities");
        };
        assert_eq!(bare.action, None);
        assert!(bare.output.json);
        let AdminCommand::Priorities(set) = parse(&[
            "priorities",
            "set",
            "east, west,north",
            "--endpoint=http://n1:1",
        ])
        .unwrap() else {
            panic!("not priorities");
        };
        let Some(PrioritiesAction::Set { output, order }) = set.action else {
            panic!("not set: {set:?}");
        };
        assert_eq!(order.0, ["east", "west", "north"]);
        assert_eq!(output.endpoint, "http://n1:1");
        assert!(matches!(
            parse(&["priorities", "show"]).unwrap(),
            AdminCommand::Priorities(PrioritiesArgs {
                action: Some(PrioritiesAction::Show { .. }),
                ..
            })
        ));
    }

    #[test]
    fn a_bad_priority_list_is_a_usage_error() {
        assert_eq!(
            parse_priority_list("east,,west"),
            Err(
                "region 2 of \"east,,west\" is empty; give names separated by commas, e.g. east,west"
                    .to_string()
            )
        );
        assert_eq!(
            parse_priority_list("east,west,east"),
            Err("region \"east\" is listed twice".to_string())
        );
        assert!(parse_priority_list("").is_err());
        assert!(parse_priority_list("east,").is_err());
        assert_eq!(
            parse_priority_list("solo"),
            Ok(PriorityList(vec!["solo".into()]))
        );
        for bad in ["east,east", "", ",west"] {
            let err = parse(&["priorities", "set", bad]).unwrap_err();
            // clap exits with 2 on a usage error, like every other one.
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(parse(&["priorities", "set"]).is_err());
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
        let json = serde_json::to_value(StatusOutput::new(&r)).unwrap();
        assert_eq!(json["failover_enabled"], false);
        assert_eq!(json["paused"], false);
        assert_eq!(json["transition"], "switchover west -> east");
        assert_eq!(json["scheduled"], "north at 2026-11-22T10:00:00Z");
        assert_eq!(json["failover_blocked"], "east lags 120 operations");
        let quiet = serde_json::to_value(StatusOutput::new(&two_region_status())).unwrap();
        assert_eq!(quiet["failover_enabled"], true);
        for absent in ["transition", "scheduled", "failover_blocked"] {
            assert!(quiet[absent].is_null(), "{absent}: {quiet}");
        }
    }

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

    #[test]
    fn status_text_without_regions_is_the_node_table_as_before() {
        let response = pb::StatusResponse {
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
        let json = serde_json::to_value(StatusOutput::new(&two_region_status())).unwrap();
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

    fn account_node(node_id: u64, meta_voter: bool) -> pb::AccountNode {
        pb::AccountNode {
            node_id,
            client_addr: format!("10.0.0.{node_id}:7070"),
            meta_voter,
        }
    }

    fn account_response() -> pb::AccountResponse {
        pb::AccountResponse {
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
        }
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
        let json = serde_json::to_value(AccountOutput::new(&account_response())).unwrap();
        assert_eq!(json["default_consistency"], "session");
        assert_eq!(json["regions"][0]["name"], "west");
        assert_eq!(json["regions"][1]["nodes"][1]["meta_voter"], false);
        assert_eq!(json["witnesses"][0]["node_id"], 9);
        assert_eq!(json["epoch"], 4);
        let unspecified = pb::AccountResponse::default();
        let json = serde_json::to_value(AccountOutput::new(&unspecified)).unwrap();
        assert!(json["default_consistency"].is_null());
    }

    #[test]
    fn a_preferred_region_resolves_to_its_configured_nodes() {
        let account = account_response();
        assert_eq!(
            region_endpoints(&account, &["east".into(), "west".into()]).unwrap(),
            [
                "http://10.0.0.5:7070",
                "http://10.0.0.6:7070",
                "http://10.0.0.1:7070"
            ]
        );
        assert_eq!(
            region_endpoints(&account, &["mars".into()]).unwrap_err(),
            "mars is not a region of the account (the regions are west, east)"
        );
    }

    #[test]
    fn priorities_come_from_the_account_first_choice_first() {
        let order = priority_order(&account_response().regions);
        assert_eq!(order, ["west", "east"]);
        assert_eq!(
            priorities_text(&order),
            "failover priorities, first choice first:\n  1  west\n  2  east\n"
        );
    }
}
