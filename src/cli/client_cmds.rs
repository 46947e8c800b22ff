//! The client subcommands of `meridian` (`put`, `get`, `delete`, `scan`,
//! `bench`): parse, call [`crate::client::Client`], print text for people or
//! JSON for scripts. Formatting is pure and tested here; the async part only
//! calls the client and prints. The admin commands (`status`, `account`,
//! `priorities`) are in [`super::admin_cmds`] and share [`Output`].
//!
//! Every command uses the routed client: `--endpoint` is where it learns
//! the account, reads and admin commands go to the first `--region NAME`
//! (repeatable, first choice first) that can serve them, then to the
//! endpoint's own region, then to the others by failover priority, and
//! writes go to the write region whatever the list. A request keeps trying
//! other nodes and regions, and follows a failover, for up to `--deadline`.
//! `--no-forward` turns routing off for one write: it goes where a read
//! would, and a read region answers NOT_WRITE_REGION naming the write
//! region. Every result names the node that served it (`served_by`) and
//! the session token to present in later session reads.
//!
//! Exit codes: 0 on success, 1 when the key is not found (like `grep`), and
//! errors are returned to `main`, which prints them with the server's
//! message and its error name (`[NOT_WRITE_REGION, write region: west]`).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use serde::Serialize;

use crate::bench::args::BenchArgs;
use crate::client::{
    Client, ClientError, ClientOptions, DEFAULT_ENDPOINT, ReadOptions, ScanRange, WriteOp,
    WriteOptions,
};
use crate::consistency::Consistency;
use crate::glsn::{Glsn, SessionToken};
use crate::ids::{NodeId, RegionId, ReplicaId};
use crate::limits::SCAN_PAGE_ITEMS_MAX;
use crate::wire::pb::v1 as pb;

/// The exit code of a `get` or `delete` whose key does not exist.
pub const EXIT_NOT_FOUND: u8 = 1;
/// The longest `--deadline` taken: a command that keeps retrying longer is
/// more likely stuck than patient.
pub const DEADLINE_MAX: Duration = Duration::from_secs(10 * 60);

/// Where to connect and how to print; every client command takes these.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Output {
    /// A node (or load balancer) to learn the account from. Without
    /// `--region`, reads go to this node's region first.
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// A preferred region for reads; repeat it for a fallback order
    /// (`--region east --region west`). Reads go to the first listed region
    /// that can serve them; writes always go to the write region.
    #[arg(long = "region", value_name = "NAME", value_parser = parse_region_name)]
    pub regions: Vec<String>,
    /// How long a request may keep retrying other nodes and regions, and
    /// through a failover, e.g. `10s`, `1m`.
    #[arg(long, default_value = "10s", value_parser = parse_deadline)]
    pub deadline: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A deadline as the command line takes it: above 0, at most
/// `DEADLINE_MAX`.
pub fn parse_deadline(text: &str) -> Result<Duration, String> {
    let deadline = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if deadline.is_zero() || deadline > DEADLINE_MAX {
        return Err(format!(
            "the deadline must be above 0 and at most {}",
            humantime::format_duration(DEADLINE_MAX)
        ));
    }
    Ok(deadline)
}

/// A region name as the command line takes it: trimmed and non-empty.
pub fn parse_region_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("a region name may not be empty".to_string());
    }
    Ok(name.to_string())
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
        /// Do not route the write: send it where a read would go and fail
        /// with NOT_WRITE_REGION there unless that is the write region.
        #[arg(long)]
        no_forward: bool,
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
        /// Do not route the write: send it where a read would go and fail
        /// with NOT_WRITE_REGION there unless that is the write region.
        #[arg(long)]
        no_forward: bool,
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
    /// Measure throughput and latency, closed-loop or at a fixed --rate.
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
            no_forward,
        } => {
            let write = PutMode::from_flags(create, if_match);
            let opts = WriteOptions {
                consistency,
                session_token: None,
                no_forward,
            };
            put(&output, &container, &key, value.into_bytes(), &opts, write).await
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
            no_forward,
        } => {
            let opts = WriteOptions {
                consistency,
                session_token: None,
                no_forward,
            };
            delete(&output, &container, &key, if_match, &opts).await
        }
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

    fn into_op(self, value: Vec<u8>) -> WriteOp {
        match self {
            PutMode::Upsert => WriteOp::Put { value },
            PutMode::Create => WriteOp::Create { value },
            PutMode::Replace { if_match } => WriteOp::Replace {
                value,
                if_match: Some(if_match),
            },
        }
    }
}

/// A routed client that learns the account through `--endpoint`.
pub(crate) async fn connect(output: &Output) -> anyhow::Result<Client> {
    let options = ClientOptions {
        endpoints: vec![output.endpoint.clone()],
        preferred_regions: output.regions.clone(),
        deadline: output.deadline,
    };
    Client::connect_with(options)
        .await
        .with_context(|| connect_context(output))
}

fn connect_context(output: &Output) -> String {
    if output.regions.is_empty() {
        format!("connecting to {}", output.endpoint)
    } else {
        format!(
            "connecting to region {} through {}",
            output.regions.join(" or "),
            output.endpoint
        )
    }
}

async fn put(
    output: &Output,
    container: &str,
    key: &str,
    value: Vec<u8>,
    opts: &WriteOptions,
    mode: PutMode,
) -> anyhow::Result<ExitCode> {
    let client = connect(output).await?;
    let response = client
        .write(container, key, mode.into_op(value), opts)
        .await
        .with_context(|| format!("put {container}/{key}"))?;
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
    if_match: Option<String>,
    opts: &WriteOptions,
) -> anyhow::Result<ExitCode> {
    let client = connect(output).await?;
    match client
        .write(container, key, WriteOp::Delete { if_match }, opts)
        .await
    {
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

// ---- Pure formatting below: values, write and read results, scan pages.

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
pub(crate) fn value_text(bytes: &[u8]) -> String {
    match render_value(bytes) {
        (text, ValueEncoding::Utf8) => text,
        (text, ValueEncoding::Base64) => format!("base64:{text}"),
    }
}

pub(crate) fn glsn_text(glsn: Option<pb::Glsn>) -> Option<String> {
    glsn.map(|g| Glsn::from(g).to_string())
}

/// The serving node as `west/n2`; `None` when the server did not say.
pub(crate) fn served_by_text(served_by: &Option<pb::ServedBy>) -> Option<String> {
    served_by.as_ref().map(|s| {
        ReplicaId {
            region: RegionId::new(s.region.clone()),
            node: NodeId(s.node_id),
        }
        .to_string()
    })
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
    /// `region/node`, as the text output shows it.
    pub served_by: Option<String>,
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
            self.served_by.as_deref().unwrap_or("-")
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
    /// `region/node`, as the text output shows it.
    pub served_by: Option<String>,
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
            self.served_by.as_deref().unwrap_or("-")
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
                "served_by": served_by_text(&last.served_by),
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
    fn scan_delete_and_bench_parse() {
        let cmd = parse(&["scan", "c", "--prefix=a", "--limit=5"]).unwrap();
        assert!(matches!(cmd, ClientCommand::Scan { limit: Some(5), .. }));
        assert!(matches!(
            parse(&["delete", "c", "k", "--if-match=t", "--no-forward"]).unwrap(),
            ClientCommand::Delete {
                no_forward: true,
                ..
            }
        ));
        let ClientCommand::Bench(args) = parse(&["bench", "--op=get", "--clients=3"]).unwrap()
        else {
            panic!("not a bench");
        };
        assert_eq!(args.clients, 3);
    }

    #[test]
    fn region_repeats_in_order_on_every_command() {
        let cmd = parse(&["get", "c", "k", "--region", "east", "--region=west"]).unwrap();
        let ClientCommand::Get { output, .. } = cmd else {
            panic!("not a get");
        };
        assert_eq!(output.regions, ["east", "west"]);
        for argv in [
            &["put", "c", "k", "v", "--region=east"][..],
            &["delete", "c", "k", "--region=east"],
            &["scan", "c", "--region=east"],
        ] {
            let cmd = parse(argv).unwrap();
            let output = match &cmd {
                ClientCommand::Put { output, .. }
                | ClientCommand::Delete { output, .. }
                | ClientCommand::Scan { output, .. } => output,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(output.regions, ["east"], "{argv:?}");
        }
        let ClientCommand::Get { output, .. } = parse(&["get", "c", "k"]).unwrap() else {
            panic!("not a get");
        };
        assert!(output.regions.is_empty());
        assert!(parse(&["get", "c", "k", "--region="]).is_err());
        assert!(parse(&["get", "c", "k", "--region", " "]).is_err());
    }

    #[test]
    fn the_deadline_defaults_to_the_clients_and_is_bounded() {
        let ClientCommand::Get { output, .. } = parse(&["get", "c", "k"]).unwrap() else {
            panic!("not a get");
        };
        assert_eq!(output.deadline, crate::client::retry::DEADLINE_DEFAULT);
        let ClientCommand::Put { output, .. } =
            parse(&["put", "c", "k", "v", "--deadline", "30s"]).unwrap()
        else {
            panic!("not a put");
        };
        assert_eq!(output.deadline, Duration::from_secs(30));
        for bad in ["0s", "11m", "soon"] {
            assert!(
                parse(&["get", "c", "k", "--deadline", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_forward_is_off_unless_asked_for() {
        let ClientCommand::Put { no_forward, .. } = parse(&["put", "c", "k", "v"]).unwrap() else {
            panic!("not a put");
        };
        assert!(!no_forward);
        let ClientCommand::Put { no_forward, .. } =
            parse(&["put", "c", "k", "v", "--create", "--no-forward"]).unwrap()
        else {
            panic!("not a put");
        };
        assert!(no_forward);
        // Reads are never forwarded, so they do not take the flag.
        assert!(parse(&["get", "c", "k", "--no-forward"]).is_err());
    }

    #[test]
    fn the_connect_error_names_the_regions_asked_for() {
        let mut output = Output {
            endpoint: "http://n1:7070".to_string(),
            regions: Vec::new(),
            deadline: Duration::from_secs(10),
            json: false,
        };
        assert_eq!(connect_context(&output), "connecting to http://n1:7070");
        output.regions = vec!["east".to_string(), "west".to_string()];
        assert_eq!(
            connect_context(&output),
            "connecting to region east or west through http://n1:7070"
        );
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
        assert_eq!(json["served_by"], "west/n2");
        assert!(view.to_text().contains("served_by: west/n2"));
        let unknown = WriteOutput::new("c", "k", &pb::WriteResponse::default());
        assert!(unknown.to_text().ends_with("served_by: -"));
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
        assert_eq!(json["served_by"], "west/n2");
        assert_eq!(json["session_token"], "e1:50");
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
        assert_eq!(json["served_by"], "west/n2");
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
}
