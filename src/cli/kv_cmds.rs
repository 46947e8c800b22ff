//! The key-value commands (`put`, `get`, `delete`, `scan`) and `bench`:
//! call the routed [`crate::client::Client`] and print what
//! [`super::kv_output`] renders. A scan prints page by page.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::bench::args::BenchArgs;
use crate::cli::kv_output::{GetOutput, ItemOutput, WriteOutput};
use crate::cli::options::{Output, connect};
use crate::cli::print;
use crate::cli::render::{glsn_text, served_by_text, value_text};
use crate::client::results::{Item, ScanPage};
use crate::client::{ClientError, ReadOptions, ScanRange, WriteOp, WriteOptions};
use crate::limits::SCAN_PAGE_ITEMS_MAX;

/// The exit code of a `get` or `delete` whose key does not exist.
pub const EXIT_NOT_FOUND: u8 = 1;

/// Which write `put` sends, from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutMode {
    Upsert,
    Create,
    Replace { if_match: String },
}

impl PutMode {
    pub(crate) fn from_flags(create: bool, if_match: Option<String>) -> PutMode {
        match (create, if_match) {
            (_, Some(if_match)) => PutMode::Replace { if_match },
            (true, None) => PutMode::Create,
            (false, None) => PutMode::Upsert,
        }
    }

    pub(crate) fn into_op(self, value: Vec<u8>) -> WriteOp {
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

pub(crate) async fn put(
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

pub(crate) async fn get(
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
    print::line(text)?;
    Ok(if view.found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_FOUND)
    })
}

pub(crate) async fn delete(
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

pub(crate) async fn scan(
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

pub(crate) async fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let report = crate::bench::runner::run(args).await.context("bench")?;
    if args.json {
        print::json_pretty(&report)?;
    } else {
        print::out(report.to_table())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_write(json: bool, view: &WriteOutput) -> anyhow::Result<()> {
    if json {
        print::json_pretty(view)?;
    } else {
        print::line(view.to_text())?;
    }
    Ok(())
}

fn print_not_found(json: bool, container: &str, key: &str) -> anyhow::Result<()> {
    if json {
        let view = serde_json::json!({"found": false, "container": container, "key": key});
        print::json_pretty(&view)?;
    } else {
        print::line("not found")?;
    }
    Ok(())
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
            )
            .map_err(print::write_error)?;
        }
        Ok(ScanPrinter {
            out,
            json,
            count: 0,
        })
    }

    /// Prints the page's items, stopping at `limit` in case the server sent
    /// more than asked.
    fn items(&mut self, items: &[Item], limit: Option<u64>) -> anyhow::Result<()> {
        for item in items {
            if limit.is_some_and(|l| self.count >= l) {
                break;
            }
            if self.json {
                let separator = if self.count == 0 { "" } else { "," };
                let text = serde_json::to_string(&ItemOutput::new(item))?;
                write!(self.out, "{separator}{text}").map_err(print::write_error)?;
            } else {
                writeln!(self.out, "{}\t{}", item.key, value_text(&item.value))
                    .map_err(print::write_error)?;
            }
            self.count += 1;
        }
        Ok(())
    }

    /// Closes the output with the last page's read position and server.
    fn finish(mut self, last: &ScanPage) -> anyhow::Result<()> {
        if self.json {
            let tail = serde_json::json!({
                "count": self.count,
                "complete": last.continuation.is_empty(),
                "read_glsn": glsn_text(last.read_glsn),
                "session_token": last.session_token,
                "region": last.served_by.as_ref().map(|s| s.region.to_string()),
                "node_id": last.served_by.as_ref().map(|s| s.node.0),
                "served_by": served_by_text(&last.served_by),
            });
            // The tail object's fields continue the outer object.
            let tail = tail.to_string();
            let fields = tail.trim_start_matches('{');
            writeln!(self.out, "],{fields}").map_err(print::write_error)?;
        }
        self.out.flush().map_err(print::write_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::{self, served_by};
    use crate::wire::pb::v1 as pb;

    fn item(key: &str, value: &[u8]) -> Item {
        Item::from(testing::item(key, value))
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
        printer.finish(&last.into()).unwrap();
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
        printer.finish(&ScanPage::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\t1\nb\tbase64:/w==\n");
    }
}
