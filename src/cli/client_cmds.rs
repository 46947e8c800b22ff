//! The client subcommands of `meridian` (`put`, `get`, `delete`, `scan`,
//! `status`, `bench`): parse, call [`crate::client::Client`], print text for
//! people or JSON for scripts. Formatting is pure and tested here; the
//! async part only calls the client and prints.
//!
//! Exit codes: 0 on success, 1 when the key is not found (like `grep`), and
//! errors are returned to `main`, which prints them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use serde::Serialize;

use crate::bench::args::BenchArgs;
use crate::client::{Client, ClientError, DEFAULT_ENDPOINT, ReadOptions, ScanRange, WriteOptions};
use crate::consistency::Consistency;
use crate::glsn::{Glsn, SessionToken};
use crate::ids::{NodeId, RegionId, ReplicaId};
use crate::limits::SCAN_PAGE_ITEMS_MAX;
use crate::wire::pb::v1 as pb;

/// The exit code of a `get` or `delete` whose key does not exist.
pub const EXIT_NOT_FOUND: u8 = 1;

/// Where to connect and how to print; every client command takes these.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Output {
    /// The node to talk to.
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ClientCommand {
    /// Write an item: upsert, or create-only with --create, or replace only
    /// the version with etag --if-match.
    Put {
        #[command(flatten)]
        output: Output,
        container: String,
        key: String,
        value: String,
        #[arg(long)]
        consistency: Option<Consistency>,
        /// Fail if the key already exists.
        #[arg(long, conflicts_with = "if_match")]
        create: bool,
        /// Replace only if the current etag is this one.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Read an item.
    Get {
        #[command(flatten)]
        output: Output,
        container: String,
        key: String,
        #[arg(long)]
        consistency: Option<Consistency>,
        /// A token a write returned, e.g. e1:42, for a SESSION read.
        #[arg(long)]
        session_token: Option<SessionToken>,
    },
    /// Delete an item.
    Delete {
        #[command(flatten)]
        output: Output,
        container: String,
        key: String,
        #[arg(long)]
        consistency: Option<Consistency>,
        /// Delete only if the current etag is this one.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// List items by key prefix or range, following pages.
    Scan {
        #[command(flatten)]
        output: Output,
        container: String,
        #[arg(long)]
        prefix: Option<String>,
        /// First key (inclusive).
        #[arg(long)]
        start: Option<String>,
        /// Last key (exclusive).
        #[arg(long)]
        end: Option<String>,
        /// Stop after this many items.
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long)]
        consistency: Option<Consistency>,
        #[arg(long)]
        session_token: Option<SessionToken>,
    },
    /// Show every node of the account: role, term, log and lag.
    Status {
        #[command(flatten)]
        output: Output,
    },
    /// Measure throughput and latency with a closed-loop workload.
    Bench(BenchArgs),
}

pub async fn run(cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClientCommand::Put {
            output,
            container,
            key,
            value,
            consistency,
            create,
            if_match,
        } => {
            let write = PutMode::from_flags(create, if_match);
            put(
                &output,
                &container,
                &key,
                value.into_bytes(),
                consistency,
                write,
            )
            .await
        }
        ClientCommand::Get {
            output,
            container,
            key,
            consistency,
            session_token,
        } => {
            let opts = ReadOptions {
                consistency,
                session_token,
            };
            get(&output, &container, &key, &opts).await
        }
        ClientCommand::Delete {
            output,
            container,
            key,
            consistency,
            if_match,
        } => delete(&output, &container, &key, consistency, if_match).await,
        ClientCommand::Scan {
            output,
            container,
            prefix,
            start,
            end,
            limit,
            consistency,
            session_token,
        } => {
            let range = ScanRange { prefix, start, end };
            let opts = ReadOptions {
                consistency,
                session_token,
            };
            scan(&output, &container, &range, limit, &opts).await
        }
        ClientCommand::Status { output } => status(&output).await,
        ClientCommand::Bench(args) => bench(&args).await,
    }
}

/// Which write `put` sends, from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PutMode {
    Upsert,
    Create,
    Replace { if_match: String },
}

impl PutMode {
    fn from_flags(create: bool, if_match: Option<String>) -> PutMode {
        match (create, if_match) {
            (_, Some(if_match)) => PutMode::Replace { if_match },
            (true, None) => PutMode::Create,
            (false, None) => PutMode::Upsert,
        }
    }
}

async fn connect(output: &Output) -> anyhow::Result<Client> {
    Client::connect(&output.endpoint)
        .await
        .with_context(|| format!("connecting to {}", output.endpoint))
}

async fn put(
    output: &Output,
    container: &str,
    key: &str,
    value: Vec<u8>,
    consistency: Option<Consistency>,
    mode: PutMode,
) -> anyhow::Result<ExitCode> {
    let client = connect(output).await?;
    let opts = WriteOptions {
        consistency,
        session_token: None,
        no_forward: false,
    };
    let response = match mode {
        PutMode::Upsert => client.put(container, key, value, &opts).await,
        PutMode::Create => client.create(container, key, value, &opts).await,
        PutMode::Replace { if_match } => {
            client
                .replace(container, key, value, Some(if_match), &opts)
                .await
        }
    };
    let response = response.with_context(|| format!("put {container}/{key}"))?;
    print_write(output.json, &WriteOutput::new(container, key, &response))?;
    Ok(ExitCode::SUCCESS)
}

async fn get(
    output: &Output,
    container: &str,
    key: &str,
    opts: &ReadOptions,
) -> anyhow::Result<ExitCode> {
    let client = connect(output).await?;
    let response = client
        .get(container, key, opts)
        .await
        .with_context(|| format!("get {container}/{key}"))?;
    let view = GetOutput::new(container, key, &response);
    let text = if output.json {
        serde_json::to_string_pretty(&view)?
    } else {
        view.to_text()
    };
    println!("{text}");
    Ok(if view.found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_FOUND)
    })
}

async fn delete(
    output: &Output,
    container: &str,
    key: &str,
    consistency: Option<Consistency>,
    if_match: Option<String>,
) -> anyhow::Result<ExitCode> {
    let client = connect(output).await?;
    let opts = WriteOptions {
        consistency,
        session_token: None,
        no_forward: false,
    };
    match client.delete(container, key, if_match, &opts).await {
        Ok(response) => {
            print_write(output.json, &WriteOutput::new(container, key, &response))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Server {
            code: tonic::Code::NotFound,
            ..
        }) => {
            print_not_found(output.json, container, key)?;
            Ok(ExitCode::from(EXIT_NOT_FOUND))
        }
        Err(e) => Err(e).with_context(|| format!("delete {container}/{key}")),
    }
}

async fn scan(
    output: &Output,
    container: &str,
    range: &ScanRange,
    limit: Option<u64>,
    opts: &ReadOptions,
) -> anyhow::Result<ExitCode> {
    let client = connect(output).await?;
    let stdout = std::io::stdout();
    let mut printer = ScanPrinter::new(stdout.lock(), output.json, container)?;
    let mut continuation = String::new();
    loop {
        let page_max = page_items_max(limit, printer.count);
        let page = client
            .scan(container, range, page_max, &continuation, opts)
            .await
            .with_context(|| format!("scan {container} after {} items", printer.count))?;
        printer.items(&page.items, limit)?;
        let done = page.continuation.is_empty() || limit.is_some_and(|l| printer.count >= l);
        if done {
            printer.finish(&page)?;
            return Ok(ExitCode::SUCCESS);
        }
        // A server that hands back the continuation it was given would
        // loop forever; stop instead.
        anyhow::ensure!(
            page.continuation != continuation,
            "the server returned the same scan continuation twice; stopping after {} items",
            printer.count
        );
        continuation = page.continuation;
    }
}

async fn status(output: &Output) -> anyhow::Result<ExitCode> {
    let client = connect(output).await?;
    let response = client.status().await.context("status")?;
    if output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&StatusOutput::new(&response))?
        );
    } else {
        println!("account: {}", response.account);
        print!("{}", status_table(&response.nodes));
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let report = crate::bench::runner::run(args).await.context("bench")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_write(json: bool, view: &WriteOutput) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(view)?);
    } else {
        println!("{}", view.to_text());
    }
    Ok(())
}

fn print_not_found(json: bool, container: &str, key: &str) -> anyhow::Result<()> {
    if json {
        let view = serde_json::json!({"found": false, "container": container, "key": key});
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!("not found");
    }
    Ok(())
}

// ---- Pure formatting below: values, write and read results, scan pages,
// ---- the status table.

/// How a value is shown: as text when it is UTF-8, else base64 (standard
/// alphabet, padded), which is shorter than hex and decodes with `base64 -d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueEncoding {
    Utf8,
    Base64,
}

pub fn render_value(bytes: &[u8]) -> (String, ValueEncoding) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), ValueEncoding::Utf8),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            ValueEncoding::Base64,
        ),
    }
}

/// The value as one text field: base64 is marked so it cannot be mistaken
/// for a UTF-8 value that happens to look like base64.
fn value_text(bytes: &[u8]) -> String {
    match render_value(bytes) {
        (text, ValueEncoding::Utf8) => text,
        (text, ValueEncoding::Base64) => format!("base64:{text}"),
    }
}

fn glsn_text(glsn: Option<pb::Glsn>) -> Option<String> {
    glsn.map(|g| Glsn::from(g).to_string())
}

fn served_by_text(served_by: &Option<pb::ServedBy>) -> String {
    match served_by {
        Some(s) => ReplicaId {
            region: RegionId::new(s.region.clone()),
            node: NodeId(s.node_id),
        }
        .to_string(),
        None => "-".to_string(),
    }
}

/// The result of `put` or `delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutput {
    pub container: String,
    pub key: String,
    pub etag: String,
    pub glsn: Option<String>,
    pub session_token: String,
    pub region: Option<String>,
    pub node_id: Option<u64>,
    #[serde(skip)]
    served_by: String,
}

impl WriteOutput {
    pub fn new(container: &str, key: &str, r: &pb::WriteResponse) -> WriteOutput {
        WriteOutput {
            container: container.to_string(),
            key: key.to_string(),
            etag: r.etag.clone(),
            glsn: glsn_text(r.glsn),
            session_token: r.session_token.clone(),
            region: r.served_by.as_ref().map(|s| s.region.clone()),
            node_id: r.served_by.as_ref().map(|s| s.node_id),
            served_by: served_by_text(&r.served_by),
        }
    }

    pub fn to_text(&self) -> String {
        let etag = if self.etag.is_empty() {
            "-"
        } else {
            &self.etag
        };
        format!(
            "etag: {etag}\nglsn: {}\nsession_token: {}\nserved_by: {}",
            self.glsn.as_deref().unwrap_or("-"),
            self.session_token,
            self.served_by
        )
    }
}

/// An item as `get` and `scan` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemOutput {
    pub key: String,
    pub value: String,
    pub value_encoding: ValueEncoding,
    pub etag: String,
    pub glsn: Option<String>,
    pub ts: u64,
    pub origin_region: String,
}

impl ItemOutput {
    pub fn new(item: &pb::Item) -> ItemOutput {
        let (value, value_encoding) = render_value(&item.value);
        ItemOutput {
            key: item.key.clone(),
            value,
            value_encoding,
            etag: item.etag.clone(),
            glsn: glsn_text(item.glsn),
            ts: item.ts,
            origin_region: item.origin_region.clone(),
        }
    }
}

/// The result of `get`; the item's fields are absent when not found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetOutput {
    pub found: bool,
    pub container: String,
    pub key: String,
    /// Nested rather than flattened: the item carries its own `key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemOutput>,
    pub read_glsn: Option<String>,
    pub session_token: String,
    pub region: Option<String>,
    pub node_id: Option<u64>,
    #[serde(skip)]
    served_by: String,
}

impl GetOutput {
    pub fn new(container: &str, key: &str, r: &pb::GetResponse) -> GetOutput {
        GetOutput {
            found: r.item.is_some(),
            container: container.to_string(),
            key: key.to_string(),
            item: r.item.as_ref().map(ItemOutput::new),
            read_glsn: glsn_text(r.read_glsn),
            session_token: r.session_token.clone(),
            region: r.served_by.as_ref().map(|s| s.region.clone()),
            node_id: r.served_by.as_ref().map(|s| s.node_id),
            served_by: served_by_text(&r.served_by),
        }
    }

    pub fn to_text(&self) -> String {
        let Some(item) = &self.item else {
            return "not found".to_string();
        };
        let value_line = match item.value_encoding {
            ValueEncoding::Utf8 => format!("value: {}", item.value),
            ValueEncoding::Base64 => format!("value (not UTF-8, shown as base64): {}", item.value),
        };
        format!(
            "{value_line}\netag: {}\nglsn: {}\nsession_token: {}\nserved_by: {}",
            item.etag,
            item.glsn.as_deref().unwrap_or("-"),
            self.session_token,
            self.served_by
        )
    }
}

/// How many items to ask for in the next page: what `--limit` still
/// allows, capped by the server's maximum; 0 asks for the server default.
fn page_items_max(limit: Option<u64>, seen: u64) -> u32 {
    match limit {
        None => 0,
        Some(limit) => limit.saturating_sub(seen).min(SCAN_PAGE_ITEMS_MAX as u64) as u32,
    }
}

/// Prints scan results page by page, so a large scan needs no memory for
/// the items already printed. Text is one `KEY<TAB>VALUE` line per item;
/// JSON is one object whose `items` array is written as pages arrive.
struct ScanPrinter<W: Write> {
    out: W,
    json: bool,
    count: u64,
}

impl<W: Write> ScanPrinter<W> {
    fn new(mut out: W, json: bool, container: &str) -> anyhow::Result<Self> {
        if json {
            write!(
                out,
                "{{\"container\":{},\"items\":[",
                serde_json::to_string(container)?
            )?;
        }
        Ok(ScanPrinter {
            out,
            json,
            count: 0,
        })
    }

    /// Prints the page's items, stopping at `limit` in case the server sent
    /// more than asked.
    fn items(&mut self, items: &[pb::Item], limit: Option<u64>) -> anyhow::Result<()> {
        for item in items {
            if limit.is_some_and(|l| self.count >= l) {
                break;
            }
            if self.json {
                let separator = if self.count == 0 { "" } else { "," };
                let text = serde_json::to_string(&ItemOutput::new(item))?;
                write!(self.out, "{separator}{text}")?;
            } else {
                writeln!(self.out, "{}\t{}", item.key, value_text(&item.value))?;
            }
            self.count += 1;
        }
        Ok(())
    }

    /// Closes the output with the last page's read position and server.
    fn finish(mut self, last: &pb::ScanResponse) -> anyhow::Result<()> {
        if self.json {
            let tail = serde_json::json!({
                "count": self.count,
                "complete": last.continuation.is_empty(),
                "read_glsn": glsn_text(last.read_glsn),
                "session_token": last.session_token,
                "region": last.served_by.as_ref().map(|s| s.region.clone()),
                "node_id": last.served_by.as_ref().map(|s| s.node_id),
            });
            // The tail object's fields continue the outer object.
            let tail = tail.to_string();
            let fields = tail.trim_start_matches('{');
            writeln!(self.out, "],{fields}")?;
        }
        self.out.flush()?;
        Ok(())
    }
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
    pub lag_entries: Option<u64>,
    pub client_addr: String,
    pub peer_addr: String,
    pub leader_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusOutput {
    pub account: String,
    pub nodes: Vec<NodeOutput>,
}

impl StatusOutput {
    pub fn new(r: &pb::StatusResponse) -> StatusOutput {
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
                lag_entries: n.lag_entries,
                client_addr: n.client_addr.clone(),
                peer_addr: n.peer_addr.clone(),
                leader_id: n.leader_id,
            })
            .collect();
        StatusOutput {
            account: r.account.clone(),
            nodes,
        }
    }
}

/// Region, then node id: the order an operator scans the table in.
fn sorted_nodes(nodes: &[pb::NodeStatus]) -> Vec<&pb::NodeStatus> {
    let mut sorted: Vec<&pb::NodeStatus> = nodes.iter().collect();
    sorted.sort_by(|a, b| (&a.region, a.node_id).cmp(&(&b.region, b.node_id)));
    sorted
}

const STATUS_COLUMNS: [&str; 9] = [
    "REGION", "NODE", "ROLE", "STATE", "TERM", "LAST_LOG", "APPLIED", "LAG", "ADDRESS",
];

/// The status table, each column as wide as its widest cell.
pub fn status_table(nodes: &[pb::NodeStatus]) -> String {
    let rows: Vec<[String; 9]> = sorted_nodes(nodes).into_iter().map(status_row).collect();
    let mut widths = STATUS_COLUMNS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = STATUS_COLUMNS.map(str::to_string);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn status_row(n: &pb::NodeStatus) -> [String; 9] {
    [
        n.region.clone(),
        NodeId(n.node_id).to_string(),
        n.role.clone(),
        n.state.clone(),
        n.term.to_string(),
        n.last_log_index.to_string(),
        n.applied_index.to_string(),
        n.lag_entries.map_or("-".to_string(), |lag| lag.to_string()),
        n.client_addr.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The binary nests these under its own parser; this stands in for it.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: ClientCommand,
    }

    fn parse(argv: &[&str]) -> Result<ClientCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("meridian").chain(argv.iter().copied())).map(|c| c.cmd)
    }

    fn glsn(epoch: u64, lsn: u64) -> Option<pb::Glsn> {
        Some(pb::Glsn { epoch, lsn })
    }

    fn served_by() -> Option<pb::ServedBy> {
        Some(pb::ServedBy {
            region: "west".to_string(),
            node_id: 2,
        })
    }

    fn item(key: &str, value: &[u8]) -> pb::Item {
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

    #[test]
    fn put_parses_its_flags_and_defaults() {
        let cmd = parse(&["put", "c", "k", "v", "--consistency", "strong"]).unwrap();
        let ClientCommand::Put {
            output,
            consistency,
            create,
            if_match,
            ..
        } = cmd
        else {
            panic!("not a put: {cmd:?}");
        };
        assert_eq!(output.endpoint, DEFAULT_ENDPOINT);
        assert!(!output.json);
        assert_eq!(consistency, Some(Consistency::Strong));
        assert_eq!(PutMode::from_flags(create, if_match), PutMode::Upsert);
    }

    #[test]
    fn put_create_and_if_match_exclude_each_other() {
        assert!(parse(&["put", "c", "k", "v", "--create", "--if-match", "t"]).is_err());
        let ClientCommand::Put {
            create, if_match, ..
        } = parse(&["put", "c", "k", "v", "--if-match", "t1"]).unwrap()
        else {
            panic!("not a put");
        };
        assert_eq!(
            PutMode::from_flags(create, if_match),
            PutMode::Replace {
                if_match: "t1".to_string()
            }
        );
        assert_eq!(PutMode::from_flags(true, None), PutMode::Create);
    }

    #[test]
    fn get_parses_tokens_and_refuses_bad_ones() {
        let cmd = parse(&[
            "get",
            "c",
            "k",
            "--session-token=e1:42",
            "--json",
            "--endpoint=http://n1:7070",
        ])
        .unwrap();
        let ClientCommand::Get {
            output,
            session_token,
            ..
        } = cmd
        else {
            panic!("not a get");
        };
        assert_eq!(session_token, Some(SessionToken(Glsn::new(1, 42))));
        assert!(output.json);
        assert_eq!(output.endpoint, "http://n1:7070");
        assert!(parse(&["get", "c", "k", "--session-token=42"]).is_err());
        assert!(parse(&["get", "c", "k", "--consistency=linearizable"]).is_err());
        assert!(parse(&["get", "c"]).is_err());
    }

    #[test]
    fn scan_status_delete_and_bench_parse() {
        let cmd = parse(&["scan", "c", "--prefix=a", "--limit=5"]).unwrap();
        assert!(matches!(cmd, ClientCommand::Scan { limit: Some(5), .. }));
        assert!(matches!(
            parse(&["status", "--json"]).unwrap(),
            ClientCommand::Status {
                output: Output { json: true, .. }
            }
        ));
        assert!(matches!(
            parse(&["delete", "c", "k", "--if-match=t"]).unwrap(),
            ClientCommand::Delete { .. }
        ));
        let ClientCommand::Bench(args) = parse(&["bench", "--op=get", "--clients=3"]).unwrap()
        else {
            panic!("not a bench");
        };
        assert_eq!(args.clients, 3);
    }

    #[test]
    fn values_print_as_utf8_else_base64() {
        assert_eq!(
            render_value("héllo".as_bytes()),
            ("héllo".to_string(), ValueEncoding::Utf8)
        );
        assert_eq!(
            render_value(&[0xff, 0x00, 0x01]),
            ("/wAB".to_string(), ValueEncoding::Base64)
        );
        assert_eq!(value_text(&[0xff, 0x00, 0x01]), "base64:/wAB");
        assert_eq!(value_text(b""), "");
    }

    #[test]
    fn write_output_names_server_etag_glsn_and_token() {
        let response = pb::WriteResponse {
            etag: "t9".to_string(),
            glsn: glsn(1, 42),
            session_token: "e1:42".to_string(),
            served_by: served_by(),
        };
        let view = WriteOutput::new("c", "k", &response);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["etag"], "t9");
        assert_eq!(json["glsn"], "e1:42");
        assert_eq!(json["session_token"], "e1:42");
        assert_eq!(json["region"], "west");
        assert_eq!(json["node_id"], 2);
        assert!(view.to_text().contains("served_by: west/n2"));
    }

    #[test]
    fn get_output_when_found_and_when_not() {
        let mut response = pb::GetResponse {
            item: Some(item("k", &[0xff])),
            read_glsn: glsn(1, 50),
            session_token: "e1:50".to_string(),
            served_by: served_by(),
        };
        let found = GetOutput::new("c", "k", &response);
        let json = serde_json::to_value(&found).unwrap();
        assert_eq!(json["found"], true);
        assert_eq!(json["item"]["value"], "/w==");
        assert_eq!(json["item"]["value_encoding"], "base64");
        assert_eq!(json["item"]["glsn"], "e1:42");
        assert_eq!(json["read_glsn"], "e1:50");
        assert!(
            found
                .to_text()
                .starts_with("value (not UTF-8, shown as base64): /w==")
        );

        response.item = None;
        let missing = GetOutput::new("c", "k", &response);
        let json = serde_json::to_value(&missing).unwrap();
        assert_eq!(json["found"], false);
        assert!(json.get("item").is_none(), "{json}");
        assert_eq!(json["region"], "west");
        assert_eq!(missing.to_text(), "not found");
    }

    #[test]
    fn pages_ask_for_what_the_limit_still_allows() {
        assert_eq!(page_items_max(None, 500), 0);
        assert_eq!(page_items_max(Some(10), 4), 6);
        assert_eq!(
            page_items_max(Some(1_000_000), 0),
            SCAN_PAGE_ITEMS_MAX as u32
        );
    }

    #[test]
    fn scan_json_is_one_valid_object_across_pages() {
        let mut out = Vec::new();
        let mut printer = ScanPrinter::new(&mut out, true, "c").unwrap();
        printer
            .items(&[item("a", b"1"), item("b", b"2")], Some(3))
            .unwrap();
        printer
            .items(&[item("c", b"3"), item("d", b"4")], Some(3))
            .unwrap();
        let last = pb::ScanResponse {
            continuation: "more".to_string(),
            served_by: served_by(),
            ..Default::default()
        };
        printer.finish(&last).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["container"], "c");
        assert_eq!(json["count"], 3);
        assert_eq!(json["complete"], false);
        assert_eq!(json["items"].as_array().unwrap().len(), 3);
        assert_eq!(json["items"][2]["key"], "c");
    }

    #[test]
    fn scan_text_is_one_line_per_item() {
        let mut out = Vec::new();
        let mut printer = ScanPrinter::new(&mut out, false, "c").unwrap();
        printer
            .items(&[item("a", b"1"), item("b", &[0xff])], None)
            .unwrap();
        printer.finish(&pb::ScanResponse::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\t1\nb\tbase64:/w==\n");
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
        }
    }

    #[test]
    fn status_table_is_sorted_and_aligned() {
        let nodes = [
            node("west", 12, Some(2)),
            node("east", 1, None),
            node("west", 1, Some(0)),
        ];
        let table = status_table(&nodes);
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
        let response = pb::StatusResponse {
            account: "acct".to_string(),
            nodes: vec![node("west", 2, None)],
            ..Default::default()
        };
        let json = serde_json::to_value(StatusOutput::new(&response)).unwrap();
        assert_eq!(json["account"], "acct");
        let n = &json["nodes"][0];
        for field in [
            "region",
            "node_id",
            "role",
            "state",
            "term",
            "last_log_index",
            "applied_index",
            "lag_entries",
            "client_addr",
            "peer_addr",
            "leader_id",
        ] {
            assert!(n.get(field).is_some(), "missing {field}: {n}");
        }
        assert!(n["lag_entries"].is_null());
    }
}
