//! The failover subcommands of `meridian`, after `patronictl`:
//! `failover --to REGION [--scheduled TIME]` (a switchover: the write
//! region is fenced, the target catches up, the epoch changes, so no
//! acknowledged write is lost), `pause` and `resume` (maintenance mode: no
//! automatic failover in between) and `history` (every change of write
//! region, as the meta group recorded it). Text for people, `--json` for
//! scripts; parsing and rendering are pure and tested here.
//!
//! Times are RFC 3339 both ways: `--scheduled` needs a zone (`Z` or an
//! offset such as `+02:00`), since a switchover an hour off is worse than a
//! usage error, and must lie in the future; history prints UTC.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;

use crate::cli::options::{Output, connect_admin, region_name};
use crate::cli::print;
use crate::cli::render::{glsn_text, render_table};
use crate::client::failover::{EpochChange, Switchover};
use crate::client::{ADMIN_CALL_TIMEOUT, SWITCHOVER_CALL_TIMEOUT};

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum FailoverCommand {
    /// Move writes to another region (a switchover): the write region is
    /// fenced, the target catches up, then the epoch changes, so no
    /// acknowledged write is lost. Only an online region can take over.
    Failover(FailoverArgs),
    /// Maintenance mode: no automatic failover until `meridian resume`;
    /// `meridian failover --to` still works.
    Pause {
        #[command(flatten)]
        output: Output,
    },
    /// End maintenance mode: automatic failover is back on.
    Resume {
        #[command(flatten)]
        output: Output,
    },
    /// Every change of write region: epoch, fork GLSN, reason, from, to and
    /// when.
    History {
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub output: Output,
    /// The region to move writes to.
    #[arg(
        long,
        value_name = "REGION",
        value_parser = region_name,
        required_unless_present = "cancel"
    )]
    pub to: Option<String>,
    /// Switch over at this time instead of now, in RFC 3339 with a zone,
    /// e.g. `2026-11-22T10:00:00Z` or `2026-11-22T11:00:00+01:00`.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub scheduled: Option<SystemTime>,
    /// Cancel the scheduled switchover (like `patronictl flush switchover`).
    #[arg(long, conflicts_with_all = ["to", "scheduled"])]
    pub cancel: bool,
}

pub async fn run(cmd: FailoverCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FailoverCommand::Failover(args) => failover(&args).await,
        FailoverCommand::Pause { output } => set_paused(&output, true).await,
        FailoverCommand::Resume { output } => set_paused(&output, false).await,
        FailoverCommand::History { output } => history(&output).await,
    }
}

async fn failover(args: &FailoverArgs) -> anyhow::Result<ExitCode> {
    let Some(to) = args.to.as_deref() else {
        return cancel(&args.output).await;
    };
    let scheduled_at_ms = args
        .scheduled
        .map(|at| scheduled_at_ms(at, SystemTime::now()))
        .transpose()?;
    let switchover = connect_admin(&args.output, SWITCHOVER_CALL_TIMEOUT)
        .await?
        .failover(to, scheduled_at_ms)
        .await
        .with_context(|| format!("failover to {to}"))?;
    let view = FailoverOutput::new(to, scheduled_at_ms, &switchover);
    if args.output.json {
        print::json_pretty(&view)?;
    } else {
        print::out(view.to_text())?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn cancel(output: &Output) -> anyhow::Result<ExitCode> {
    let cancelled = connect_admin(output, ADMIN_CALL_TIMEOUT)
        .await?
        .cancel_switchover()
        .await
        .context("cancelling the scheduled switchover")?;
    let at = cancelled.at_ms.map(rfc3339_ms);
    if output.json {
        print::json_line(&serde_json::json!({
            "cancelled_to": cancelled.to,
            "cancelled_at": at,
            "write_region": cancelled.write_region,
        }))?;
    } else {
        print::line(format_args!(
            "cancelled the switchover to {} scheduled at {}; {} keeps the writes",
            cancelled.to,
            at.as_deref().unwrap_or("-"),
            cancelled.write_region
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_paused(output: &Output, paused: bool) -> anyhow::Result<ExitCode> {
    let what = if paused { "pause" } else { "resume" };
    let paused = connect_admin(output, ADMIN_CALL_TIMEOUT)
        .await?
        .set_paused(paused)
        .await
        .context(what)?;
    if output.json {
        print::json_line(&serde_json::json!({ "paused": paused }))?;
    } else {
        print::line(pause_text(paused))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn history(output: &Output) -> anyhow::Result<ExitCode> {
    let changes = connect_admin(output, ADMIN_CALL_TIMEOUT)
        .await?
        .history()
        .await
        .context("history")?;
    let view = HistoryOutput {
        changes: changes.iter().map(EpochChangeOutput::new).collect(),
    };
    if output.json {
        print::json_pretty(&view)?;
    } else {
        print::out(history_text(&view.changes))?;
    }
    Ok(ExitCode::SUCCESS)
}

// ---- Pure parsing and rendering below.

/// Parses an RFC 3339 time with its zone: `Z` (UTC) or `±HH:MM`. A time
/// without a zone is refused rather than guessed.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let bad = |why: &str| {
        format!(
            "{text:?} is not an RFC 3339 time: {why}; e.g. 2026-11-22T10:00:00Z or 2026-11-22T11:00:00+01:00"
        )
    };
    let (local, east_of_utc_s) = split_zone(text)
        .ok_or_else(|| bad("it needs a zone, Z for UTC or an offset such as +02:00"))?;
    // humantime reads UTC only: read the local part as if it were UTC,
    // then move it by the offset.
    let as_utc = humantime::parse_rfc3339(&format!("{}Z", local.replacen(['t', ' '], "T", 1)))
        .map_err(|e| bad(&e.to_string()))?;
    let offset = Duration::from_secs(east_of_utc_s.unsigned_abs());
    let utc = if east_of_utc_s >= 0 {
        as_utc.checked_sub(offset)
    } else {
        as_utc.checked_add(offset)
    };
    utc.filter(|t| *t >= UNIX_EPOCH)
        .ok_or_else(|| bad("it lies before 1970"))
}

/// Splits `text` into its local part and its zone's offset east of UTC in
/// seconds; `None` when it has no valid zone.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Some((local, 0));
    }
    let at = text.len().checked_sub(6)?;
    let (local, zone) = (text.get(..at)?, text.get(at..)?);
    let (sign, hh_mm) = if let Some(rest) = zone.strip_prefix('+') {
        (1, rest)
    } else {
        (-1, zone.strip_prefix('-')?)
    };
    let (hours, minutes) = hh_mm.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i64 = hours.parse().ok().filter(|h| *h <= 23)?;
    let minutes: i64 = minutes.parse().ok().filter(|m| *m <= 59)?;
    Some((local, sign * (hours * 3600 + minutes * 60)))
}

/// The wire's `scheduled_at_ms` for `at`, refused when `at` is not after
/// `now`: a switchover in the past would start at once, which is what
/// leaving out `--scheduled` says.
pub fn scheduled_at_ms(at: SystemTime, now: SystemTime) -> anyhow::Result<u64> {
    if at <= now {
        anyhow::bail!(
            "--scheduled {} is in the past (now is {}); leave it out to switch over now",
            humantime::format_rfc3339_seconds(at),
            humantime::format_rfc3339_seconds(now)
        );
    }
    Ok(millis_since_epoch(at))
}

fn millis_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `ms` since the Unix epoch in RFC 3339, UTC, to the millisecond.
pub fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// What `failover` prints: a switchover done (its epoch and fork) or
/// scheduled (its time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailoverOutput {
    pub to: String,
    pub scheduled: bool,
    /// When a scheduled switchover runs, RFC 3339.
    pub scheduled_at: Option<String>,
    /// The epoch that began; `None` when scheduled.
    pub epoch: Option<u64>,
    /// The fork GLSN: the last write of the old epoch the new one continues.
    pub fork: Option<String>,
    pub write_region: String,
}

impl FailoverOutput {
    pub fn new(to: &str, scheduled_at_ms: Option<u64>, r: &Switchover) -> FailoverOutput {
        FailoverOutput {
            to: to.to_string(),
            scheduled: r.scheduled,
            scheduled_at: scheduled_at_ms.filter(|_| r.scheduled).map(rfc3339_ms),
            epoch: r.epoch,
            fork: glsn_text(r.fork),
            write_region: r.write_region.to_string(),
        }
    }

    pub fn to_text(&self) -> String {
        if self.scheduled {
            return format!(
                "switchover to {} scheduled at {}; {} keeps the writes until then (`meridian status` shows it)\n",
                self.to,
                self.scheduled_at.as_deref().unwrap_or("the given time"),
                self.write_region
            );
        }
        format!(
            "switchover done: {} is the write region\nepoch: {}\nfork GLSN: {}\n",
            self.write_region,
            self.epoch.map_or("-".to_string(), |e| e.to_string()),
            self.fork.as_deref().unwrap_or("-")
        )
    }
}

pub fn pause_text(paused: bool) -> &'static str {
    if paused {
        "failover paused (maintenance mode): no automatic failover until `meridian resume`; `meridian failover --to REGION` still works"
    } else {
        "failover resumed: the write region's lease expiring moves writes to the next region by priority"
    }
}

/// One change of write region in `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EpochChangeOutput {
    pub epoch: u64,
    /// The last GLSN of the old epoch that the new one continues from.
    pub fork: Option<String>,
    /// `failover` or `switchover`.
    pub reason: String,
    pub from_region: String,
    pub to_region: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub at_ms: u64,
}

impl EpochChangeOutput {
    pub fn new(c: &EpochChange) -> EpochChangeOutput {
        EpochChangeOutput {
            epoch: c.epoch,
            fork: glsn_text(c.fork),
            reason: c.reason.clone(),
            from_region: c.from_region.to_string(),
            to_region: c.to_region.to_string(),
            time: rfc3339_ms(c.at_ms),
            at_ms: c.at_ms,
        }
    }
}

/// `history --json`: the changes, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryOutput {
    pub changes: Vec<EpochChangeOutput>,
}

const HISTORY_COLUMNS: [&str; 6] = ["EPOCH", "FORK", "REASON", "FROM", "TO", "TIME"];

/// The history table, oldest first as the meta group recorded it, or a
/// sentence when the write region never changed.
pub fn history_text(changes: &[EpochChangeOutput]) -> String {
    if changes.is_empty() {
        return "no failover or switchover yet: the write region is the one the account started with (epoch 1)\n".to_string();
    }
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.epoch.to_string(),
                c.fork.clone().unwrap_or_else(|| "-".into()),
                c.reason.clone(),
                c.from_region.clone(),
                c.to_region.clone(),
                c.time.clone(),
            ]
        })
        .collect();
    render_table(&HISTORY_COLUMNS, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pb::v1 as pb;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: FailoverCommand,
    }

    fn parse(argv: &[&str]) -> Result<FailoverCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("meridian").chain(argv.iter().copied())).map(|c| c.cmd)
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// 2026-11-22T10:00:00Z.
    const TEN_UTC_MS: u64 = 1_795_341_600_000;

    #[test]
    fn rfc3339_reads_utc_and_offsets_to_the_same_instant() {
        for text in [
            "2026-11-22T10:00:00Z",
            "2026-11-22t10:00:00z",
            "2026-11-22T11:00:00+01:00",
            "2026-11-22T05:30:00-04:30",
            " 2026-11-22T10:00:00.000Z ",
            "2026-11-22 10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(text), Ok(at(TEN_UTC_MS)), "{text}");
        }
        assert_eq!(
            parse_rfc3339("2026-11-22T10:00:00.250Z"),
            Ok(at(TEN_UTC_MS + 250))
        );
    }

    #[test]
    fn rfc3339_without_a_zone_or_malformed_is_refused_in_words() {
        let no_zone = parse_rfc3339("2026-11-22T10:00:00").unwrap_err();
        assert!(no_zone.contains("it needs a zone"), "{no_zone}");
        for bad in [
            "tomorrow",
            "",
            "2026-11-22T10:00:00+1:00",
            "2026-11-22T10:00:00+24:00",
            "2026-11-22T10:00:00+01:60",
            "2026-13-22T10:00:00Z",
            "2026-11-22T10:00Z",
            "1970-01-01T00:00:00+01:00",
            "2026-11-22T10:00:00 +01:00",
            "€€€€€€€",
        ] {
            let err = parse_rfc3339(bad).unwrap_err();
            assert!(err.contains("is not an RFC 3339 time"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_scheduled_time_must_lie_in_the_future() {
        let now = at(TEN_UTC_MS);
        assert_eq!(
            scheduled_at_ms(at(TEN_UTC_MS + 60_000), now).unwrap(),
            TEN_UTC_MS + 60_000
        );
        let past = scheduled_at_ms(at(TEN_UTC_MS - 1000), now).unwrap_err();
        assert_eq!(
            past.to_string(),
            "--scheduled 2026-11-22T09:59:59Z is in the past (now is 2026-11-22T10:00:00Z); leave it out to switch over now"
        );
        assert!(scheduled_at_ms(now, now).is_err());
    }

    #[test]
    fn failover_pause_resume_and_history_parse() {
        let FailoverCommand::Failover(args) = parse(&[
            "failover",
            "--to",
            "east",
            "--scheduled",
            "2026-11-22T11:00:00+01:00",
            "--json",
        ])
        .unwrap() else {
            panic!("not failover");
        };
        assert_eq!(args.to.as_deref(), Some("east"));
        assert_eq!(args.scheduled, Some(at(TEN_UTC_MS)));
        assert!(args.output.json);
        let FailoverCommand::Failover(now) = parse(&["failover", "--to", "north"]).unwrap() else {
            panic!("not failover");
        };
        assert_eq!(now.scheduled, None);
        assert!(!now.cancel);
        let FailoverCommand::Failover(cancel) = parse(&["failover", "--cancel"]).unwrap() else {
            panic!("not failover");
        };
        assert!(cancel.cancel && cancel.to.is_none());
        for bad in [
            &["failover"][..],
            &["failover", "--to", " "],
            &["failover", "--to", "east", "--scheduled", "10:00"],
            &["failover", "--cancel", "--to", "east"],
            &[
                "failover",
                "--cancel",
                "--scheduled",
                "2026-11-22T10:00:00Z",
            ],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert!(matches!(
            parse(&["pause"]).unwrap(),
            FailoverCommand::Pause { .. }
        ));
        assert!(matches!(
            parse(&["resume", "--endpoint", "http://n1:1"]).unwrap(),
            FailoverCommand::Resume { output } if output.endpoint == "http://n1:1"
        ));
        assert!(matches!(
            parse(&["history", "--json"]).unwrap(),
            FailoverCommand::History { output } if output.json
        ));
    }

    fn change(epoch: u64, reason: &str, from: &str, to: &str, at_ms: u64) -> EpochChange {
        EpochChange::from(pb::EpochChange {
            epoch,
            fork: Some(pb::Glsn {
                epoch: epoch - 1,
                lsn: 1042 * epoch,
            }),
            reason: reason.into(),
            from_region: from.into(),
            to_region: to.into(),
            at_ms,
        })
    }

    fn two_changes() -> Vec<EpochChangeOutput> {
        [
            change(2, "failover", "west", "east", TEN_UTC_MS + 123),
            change(3, "switchover", "east", "west", TEN_UTC_MS + 3_600_000),
        ]
        .iter()
        .map(EpochChangeOutput::new)
        .collect()
    }

    #[test]
    fn history_is_a_table_like_patronictl_history() {
        let expected = "\
EPOCH  FORK     REASON      FROM  TO    TIME
2      e1:2084  failover    west  east  2026-11-22T10:00:00.123Z
3      e2:3126  switchover  east  west  2026-11-22T11:00:00.000Z
";
        assert_eq!(history_text(&two_changes()), expected);
        assert!(history_text(&[]).starts_with("no failover or switchover yet"));
    }

    #[test]
    fn history_json_names_every_field() {
        let view = HistoryOutput {
            changes: two_changes(),
        };
        let text = serde_json::to_string_pretty(&view).unwrap();
        // Fields in the table's order, not alphabetical.
        assert!(
            text.find("\"epoch\"") < text.find("\"fork\"")
                && text.find("\"to_region\"") < text.find("\"time\""),
            "{text}"
        );
        let json = serde_json::to_value(&view).unwrap();
        let first = &json["changes"][0];
        assert_eq!(first["epoch"], 2);
        assert_eq!(first["fork"], "e1:2084");
        assert_eq!(first["reason"], "failover");
        assert_eq!(first["from_region"], "west");
        assert_eq!(first["to_region"], "east");
        assert_eq!(first["time"], "2026-11-22T10:00:00.123Z");
        assert_eq!(first["at_ms"], TEN_UTC_MS + 123);
        assert_eq!(json["changes"][1]["reason"], "switchover");
    }

    #[test]
    fn failover_output_says_done_or_scheduled() {
        let done = FailoverOutput::new(
            "east",
            None,
            &pb::FailoverResponse {
                epoch: Some(2),
                fork: Some(pb::Glsn { epoch: 1, lsn: 77 }),
                write_region: "east".into(),
                scheduled: false,
                ..Default::default()
            }
            .into(),
        );
        assert_eq!(
            done.to_text(),
            "switchover done: east is the write region\nepoch: 2\nfork GLSN: e1:77\n"
        );
        let json = serde_json::to_value(&done).unwrap();
        assert_eq!(json["epoch"], 2);
        assert_eq!(json["fork"], "e1:77");
        assert!(json["scheduled_at"].is_null());
        let later = FailoverOutput::new(
            "east",
            Some(TEN_UTC_MS),
            &pb::FailoverResponse {
                epoch: None,
                fork: None,
                write_region: "west".into(),
                scheduled: true,
                ..Default::default()
            }
            .into(),
        );
        assert_eq!(
            later.to_text(),
            "switchover to east scheduled at 2026-11-22T10:00:00.000Z; west keeps the writes until then (`meridian status` shows it)\n"
        );
        let json = serde_json::to_value(&later).unwrap();
        assert_eq!(json["scheduled"], true);
        assert!(json["epoch"].is_null());
    }

    #[test]
    fn pause_and_resume_say_what_changes() {
        assert!(pause_text(true).starts_with("failover paused (maintenance mode)"));
        assert!(pause_text(false).starts_with("failover resumed"));
    }
}
