//! The admin subcommands of `meridian`: `status` (the account's regions and
//! nodes, and where failover stands), `account` (its configuration as the
//! meta group holds it) and `priorities` (show or set the failover order;
//! a new first region is a switchover to it): their arguments, and which
//! command each runs. The commands are in [`super::status_cmd`] and
//! [`super::account_cmds`]; `failover`, `pause`, `resume` and `history` in
//! [`super::failover_cmds`], `fault` in [`super::fault_cmds`]. They all
//! talk to one node through [`crate::client::connect_admin`], whose
//! timeout leaves room for a switchover where one may happen.
//!
//! `priorities set` validates its list before sending it (names non-empty,
//! none twice), so a typo is a usage error (exit 2) rather than a round trip;
//! whether the list names every region of the account is the server's call.

use std::process::ExitCode;

use crate::cli::account_cmds::{self, PriorityList, parse_priority_list};
use crate::cli::options::Output;
use crate::cli::status_cmd;

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

pub async fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::Status { output, digests } => status_cmd::status(&output, digests).await,
        AdminCommand::Account { output } => account_cmds::account(&output).await,
        AdminCommand::Priorities(PrioritiesArgs { output, action }) => match action {
            None => account_cmds::show_priorities(&output).await,
            Some(PrioritiesAction::Show { output }) => account_cmds::show_priorities(&output).await,
            Some(PrioritiesAction::Set { output, order }) => {
                account_cmds::set_priorities(&output, order).await
            }
        },
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
}
