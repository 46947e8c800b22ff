//! `meridian fault isolate REGION` and `meridian fault heal`: steer the
//! fault layer of an account run by `meridian dev`, to watch failover on
//! one machine. Only its nodes carry these out; a `meridian server` node
//! refuses them (FAILED_PRECONDITION, REFUSED). Rendering is pure and
//! tested here.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::options::{Output, connect_admin, region_name};
use crate::cli::print;
use crate::client::ADMIN_CALL_TIMEOUT;
use crate::ids::RegionId;

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum FaultCommand {
    /// Cut every link between REGION and the rest of the account, both
    /// ways: its nodes still answer clients but hear from no other region.
    Isolate {
        #[command(flatten)]
        output: Output,
        #[arg(value_name = "REGION", value_parser = region_name)]
        region: String,
    },
    /// Remove every injected fault: every region reconnects.
    Heal {
        #[command(flatten)]
        output: Output,
    },
}

pub async fn run(cmd: FaultCommand) -> anyhow::Result<ExitCode> {
    let output = match &cmd {
        FaultCommand::Isolate { output, .. } | FaultCommand::Heal { output } => output,
    };
    let client = connect_admin(output, ADMIN_CALL_TIMEOUT).await?;
    let isolated: Vec<String> = match &cmd {
        FaultCommand::Isolate { region, .. } => client
            .isolate_region(&RegionId::new(region.as_str()))
            .await
            .with_context(|| format!("fault isolate {region}"))?,
        FaultCommand::Heal { .. } => client.heal_faults().await.context("fault heal")?,
    }
    .into_iter()
    .map(String::from)
    .collect();
    if output.json {
        return print::json_line(&serde_json::json!({ "isolated": isolated }))
            .map(|()| ExitCode::SUCCESS);
    }
    let text = match &cmd {
        FaultCommand::Isolate { region, .. } => {
            // Only to suggest a region to watch from: without it the
            // advice is generic, so a failure here is not the command's.
            let order = match client.account().await {
                Ok(account) => account.priority_order(),
                Err(_) => Vec::new(),
            };
            isolate_text(region, &isolated, &order)
        }
        FaultCommand::Heal { .. } => heal_text().to_string(),
    };
    print::out(text)?;
    Ok(ExitCode::SUCCESS)
}

/// What `fault isolate` prints: what changed, what to expect, and where
/// to watch from (the first region by priority still connected, since a
/// cut-off region's own view goes stale).
pub fn isolate_text(region: &str, isolated: &[String], priority_order: &[String]) -> String {
    let watch_from = priority_order
        .iter()
        .find(|r| !isolated.contains(r))
        .map_or("REGION", String::as_str);
    format!(
        "{region} is cut off: its nodes still answer clients but hear from no other region.\n\
         regions cut off now: {}\n\
         If {region} is the write region and failover is on, the next online region by priority \
         takes the writes once {region}'s lease expires (a few seconds).\n\
         A cut-off region's own view goes stale: watch from another, e.g. \
         `meridian status --region {watch_from}` and `meridian history --region {watch_from}`.\n\
         `meridian fault heal` reconnects it.\n",
        isolated.join(", ")
    )
}

pub fn heal_text() -> &'static str {
    "healed: every region reconnects. A former write region finds the newer epoch and rejoins as a read region; `meridian history` shows the change.\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: FaultCommand,
    }

    fn parse(argv: &[&str]) -> Result<FaultCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("meridian").chain(argv.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn isolate_and_heal_parse() {
        let FaultCommand::Isolate { region, output } =
            parse(&["isolate", "west", "--json"]).unwrap()
        else {
            panic!("not isolate");
        };
        assert_eq!(region, "west");
        assert!(output.json);
        assert!(matches!(
            parse(&["heal"]).unwrap(),
            FaultCommand::Heal { .. }
        ));
        assert_eq!(parse(&["isolate"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["isolate", ""]).unwrap_err().exit_code(), 2);
        assert!(parse(&["partition"]).is_err());
    }

    #[test]
    fn isolate_suggests_watching_from_the_first_connected_region() {
        let order = ["west", "east", "north"].map(String::from);
        let text = isolate_text("west", &["west".to_string()], &order);
        assert!(text.starts_with("west is cut off:"), "{text}");
        assert!(text.contains("regions cut off now: west\n"), "{text}");
        assert!(text.contains("`meridian status --region east`"), "{text}");
        let two = ["west", "east"].map(String::from);
        let text = isolate_text("east", &two, &order);
        assert!(text.contains("`meridian status --region north`"), "{text}");
        let unknown_order = isolate_text("west", &["west".to_string()], &[]);
        assert!(
            unknown_order.contains("`meridian status --region REGION`"),
            "{unknown_order}"
        );
    }
}
