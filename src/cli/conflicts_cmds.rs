//! `meridian conflicts`: read the conflict feed (writes lost to a failover,
//! kind `UNREPLICATED_WRITE`), from the start or from a continuation,
//! optionally following new entries; `meridian conflicts delete ID` deletes
//! an entry once it has been dealt with. Every region holds the feed, so
//! any node reads it; a delete is committed at the write region. Rendering
//! is pure and tested here.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tokio_stream::StreamExt;

use crate::cli::options::{Output, connect_admin};
use crate::cli::print;
use crate::cli::render::{glsn_text, served_by_text, value_text};
use crate::client::ADMIN_CALL_TIMEOUT;
use crate::client::conflicts::FeedMessage;

/// `meridian conflicts` alone reads the feed, like `conflicts read`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConflictsArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(subcommand)]
    pub action: Option<ConflictsAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub output: Output,
    /// Resume after the entry whose `continuation` this is; without it,
    /// read from the oldest entry.
    #[arg(long, value_name = "CONTINUATION", default_value = "")]
    pub from: String,
    /// Keep reading: print new entries as they are recorded, until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ConflictsAction {
    /// Print the feed, oldest entry first: one line per entry (`--json`: one
    /// JSON object per line, each with the continuation to resume after it).
    Read(ReadArgs),
    /// Delete entry ID from the feed, in every region.
    Delete {
        #[command(flatten)]
        output: Output,
        #[arg(value_name = "ID")]
        id: u64,
    },
}

pub async fn run(args: ConflictsArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        None => read(&args.read).await,
        Some(ConflictsAction::Read(read_args)) => read(&read_args).await,
        Some(ConflictsAction::Delete { output, id }) => delete(&output, id).await,
    }
}

/// Prints the feed as it arrives; a reader that goes away (`| head`) ends
/// it quietly, like Ctrl-C.
async fn read(args: &ReadArgs) -> anyhow::Result<ExitCode> {
    let client = connect_admin(&args.output, ADMIN_CALL_TIMEOUT).await?;
    let mut feed = client
        .conflict_feed(&args.from, args.follow)
        .await
        .context("reading the conflict feed")?;
    let mut printed = 0usize;
    loop {
        let next = tokio::select! {
            next = feed.next() => next,
            _ = crate::cli::interrupted() => break,
        };
        let Some(message) = next else { break };
        let message = message.context("reading the conflict feed")?;
        print_entry(&FeedLine::new(&message), args.output.json, printed == 0)?;
        printed += 1;
    }
    if printed == 0 && !args.output.json {
        print::line(empty_text(&args.from))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_entry(line: &FeedLine, json: bool, first: bool) -> anyhow::Result<()> {
    if json {
        return print::json_line(line);
    }
    if first {
        print::line(FeedLine::HEADER)?;
    }
    print::line(line.to_text())
}

async fn delete(output: &Output, id: u64) -> anyhow::Result<ExitCode> {
    let glsn = connect_admin(output, ADMIN_CALL_TIMEOUT)
        .await?
        .delete_conflict(id)
        .await
        .with_context(|| format!("deleting conflict {id}"))?;
    let glsn = glsn_text(glsn).unwrap_or_else(|| "-".into());
    if output.json {
        print::json_line(&serde_json::json!({ "deleted": id, "glsn": glsn }))?;
    } else {
        print::line(format_args!("deleted conflict {id} (glsn {glsn})"))?;
    }
    Ok(ExitCode::SUCCESS)
}

// ---- Pure rendering below.

/// One feed entry as printed; `--json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedLine {
    pub id: u64,
    pub kind: String,
    pub container: String,
    pub key: String,
    /// The lost write's value (base64 marked as in `get`); `None` for a
    /// lost delete.
    pub value: Option<String>,
    pub lost_glsn: Option<String>,
    pub lost_in_epoch: u64,
    pub region: String,
    pub recorded_glsn: Option<String>,
    /// Pass to `--from` to resume after this entry.
    pub continuation: String,
    pub served_by: Option<String>,
}

impl FeedLine {
    const HEADER: &'static str =
        "ID\tKIND\tCONTAINER\tKEY\tVALUE\tLOST GLSN\tLOST IN EPOCH\tREGION";

    pub fn new(message: &FeedMessage) -> FeedLine {
        let entry = &message.entry;
        FeedLine {
            id: entry.id,
            kind: entry.kind.map_or("UNKNOWN", |k| k.as_str()).to_string(),
            container: entry.container.clone(),
            key: entry.key.clone(),
            value: entry.value.as_deref().map(value_text),
            lost_glsn: glsn_text(entry.lost_glsn),
            lost_in_epoch: entry.lost_in_epoch,
            region: entry.region.to_string(),
            recorded_glsn: glsn_text(entry.recorded_glsn),
            continuation: message.continuation.clone(),
            served_by: served_by_text(&message.served_by),
        }
    }

    /// Tab-separated, in `HEADER`'s order; a lost delete shows `(delete)`.
    pub fn to_text(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.id,
            self.kind,
            self.container,
            self.key,
            self.value.as_deref().unwrap_or("(delete)"),
            self.lost_glsn.as_deref().unwrap_or("-"),
            self.lost_in_epoch,
            self.region
        )
    }
}

fn empty_text(from: &str) -> String {
    if from.is_empty() {
        "the conflict feed is empty".to_string()
    } else {
        format!("no conflict after continuation {from}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pb::v1 as pb;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConflictsArgs,
    }

    fn parse(argv: &[&str]) -> Result<ConflictsArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("conflicts").chain(argv.iter().copied()))
            .map(|c| c.args)
    }

    #[test]
    fn bare_conflicts_reads_and_delete_takes_an_id() {
        let args = parse(&["--from", "7", "--follow", "--json"]).unwrap();
        assert_eq!(args.action, None);
        assert_eq!(args.read.from, "7");
        assert!(args.read.follow && args.read.output.json);
        let Some(ConflictsAction::Delete { id, .. }) = parse(&["delete", "12"]).unwrap().action
        else {
            panic!("not delete");
        };
        assert_eq!(id, 12);
        assert!(parse(&["delete"]).is_err());
        assert!(parse(&["delete", "-3"]).is_err());
        assert!(parse(&["delete", "twelve"]).is_err());
        assert!(matches!(
            parse(&["read", "--follow"]).unwrap().action,
            Some(ConflictsAction::Read(ReadArgs { follow: true, .. }))
        ));
    }

    fn message(value: Option<&[u8]>) -> FeedMessage {
        FeedMessage::from(pb::ReadFeedResponse {
            entry: Some(pb::ConflictEntry {
                id: 3,
                kind: pb::ConflictKind::UnreplicatedWrite as i32,
                container: "users".into(),
                key: "alice".into(),
                value: value.map(<[u8]>::to_vec),
                lost_glsn: Some(pb::Glsn { epoch: 1, lsn: 41 }),
                lost_in_epoch: 2,
                region: "west".into(),
                recorded_glsn: Some(pb::Glsn { epoch: 2, lsn: 44 }),
            }),
            continuation: "3".into(),
            served_by: Some(pb::ServedBy {
                region: "east".into(),
                node_id: 5,
            }),
        })
    }

    #[test]
    fn an_entry_renders_as_a_row_and_as_json() {
        let line = FeedLine::new(&message(Some(b"v2")));
        assert_eq!(
            line.to_text(),
            "3\tUNREPLICATED_WRITE\tusers\talice\tv2\te1:41\t2\twest"
        );
        assert_eq!(
            FeedLine::HEADER.split('\t').count(),
            line.to_text().split('\t').count()
        );
        let json = serde_json::to_value(&line).unwrap();
        assert_eq!(json["continuation"], "3");
        assert_eq!(json["lost_glsn"], "e1:41");
        assert_eq!(json["recorded_glsn"], "e2:44");
        assert_eq!(json["kind"], "UNREPLICATED_WRITE");
        assert_eq!(json["served_by"], "east/n5");
        let deleted = FeedLine::new(&message(None));
        assert!(deleted.to_text().contains("\t(delete)\t"), "{deleted:?}");
        assert_eq!(
            serde_json::to_value(&deleted).unwrap()["value"],
            serde_json::Value::Null
        );
        let binary = FeedLine::new(&message(Some(&[0xff])));
        assert_eq!(binary.value.as_deref(), Some("base64:/w=="));
    }

    #[test]
    fn an_empty_read_says_so() {
        assert_eq!(empty_text(""), "the conflict feed is empty");
        assert_eq!(empty_text("9"), "no conflict after continuation 9");
    }
}
