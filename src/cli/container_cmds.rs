//! `meridian container create NAME --policy P [--no-feed-for-lww]`,
//! `container list` and `container show NAME` (DESIGN.md "Containers"):
//! their arguments and what they print. Text for people, `--json` for
//! scripts; parsing and rendering are pure and tested here.
//!
//! The policy is parsed here, with `container.rs`'s parser, so an unknown
//! policy is a usage error (exit 2) naming the policies there are, before
//! anything is sent; the server checks it again. `show` of a container
//! that does not exist says so and exits 1, like `get` of a missing key.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::cli::kv_cmds::EXIT_NOT_FOUND;
use crate::cli::options::{Output, connect_admin};
use crate::cli::print;
use crate::cli::render::render_table;
use crate::client::containers::Container;
use crate::client::{ADMIN_CALL_TIMEOUT, ClientError};
use crate::container::ContainerPolicy;

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ContainerCommand {
    /// Create a container with its conflict policy, fixed from then on.
    /// Creating it again with the same policy changes nothing; another
    /// policy is refused. A write to a container that does not exist
    /// creates it with `lww`.
    Create {
        #[command(flatten)]
        output: Output,
        /// The container's name: A-Z, a-z, 0-9, _ and -.
        name: String,
        /// lww, lww:/path (the higher number at that JSON pointer wins),
        /// custom, counter, set or register.
        #[arg(long, value_name = "POLICY", value_parser = parse_policy)]
        policy: ContainerPolicy,
        /// Keep losers of lww conflicts out of the conflict feed.
        #[arg(long)]
        no_feed_for_lww: bool,
    },
    /// List every container with its policy.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Show one container's policy.
    Show {
        #[command(flatten)]
        output: Output,
        name: String,
    },
}

/// A policy as the command line takes it.
fn parse_policy(text: &str) -> Result<ContainerPolicy, String> {
    text.parse()
        .map_err(|e: crate::container::ContainerError| e.to_string())
}

pub async fn run(cmd: ContainerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ContainerCommand::Create {
            output,
            name,
            policy,
            no_feed_for_lww,
        } => create(&output, &name, policy, no_feed_for_lww).await,
        ContainerCommand::List { output } => list(&output).await,
        ContainerCommand::Show { output, name } => show(&output, &name).await,
    }
}

async fn create(
    output: &Output,
    name: &str,
    policy: ContainerPolicy,
    no_feed_for_lww: bool,
) -> anyhow::Result<ExitCode> {
    // `--no-feed-for-lww` on a counter is the same usage error as a bad
    // policy: refused before anything is sent.
    let policy = if no_feed_for_lww {
        policy
            .without_feed_for_lww()
            .map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        policy
    };
    let client = connect_admin(output, ADMIN_CALL_TIMEOUT).await?;
    let created = client
        .create_container(name, &policy.name(), !policy.feed_for_lww())
        .await
        .with_context(|| format!("create container {name}"))?;
    print_one(output.json, &created)?;
    Ok(ExitCode::SUCCESS)
}

async fn list(output: &Output) -> anyhow::Result<ExitCode> {
    let client = connect_admin(output, ADMIN_CALL_TIMEOUT).await?;
    let containers = client.containers().await.context("list containers")?;
    if output.json {
        let views: Vec<ContainerView> = containers.iter().map(ContainerView::of).collect();
        print::json_pretty(&serde_json::json!({ "containers": views }))?;
    } else {
        print::out(list_text(&containers))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(output: &Output, name: &str) -> anyhow::Result<ExitCode> {
    let client = connect_admin(output, ADMIN_CALL_TIMEOUT).await?;
    match client.container(name).await {
        Ok(container) => {
            print_one(output.json, &container)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Server {
            code: tonic::Code::NotFound,
            ..
        }) => {
            if output.json {
                let view = serde_json::json!({ "name": name, "found": false });
                print::json_pretty(&view)?;
            } else {
                print::line(format!("container {name} not found"))?;
            }
            Ok(ExitCode::from(EXIT_NOT_FOUND))
        }
        Err(e) => Err(e).with_context(|| format!("show container {name}")),
    }
}

fn print_one(json: bool, container: &Container) -> anyhow::Result<()> {
    if json {
        print::json_pretty(&ContainerView::of(container))
    } else {
        print::line(one_text(container))
    }
}

// ---- Pure rendering below.

/// A container as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub policy: &'a str,
    pub feed_for_lww: bool,
}

impl<'a> ContainerView<'a> {
    pub fn of(c: &'a Container) -> Self {
        ContainerView {
            name: &c.name,
            policy: &c.policy,
            feed_for_lww: c.feed_for_lww,
        }
    }
}

pub fn one_text(c: &Container) -> String {
    format!("container {}: policy {}", c.name, c.policy_text())
}

pub fn list_text(containers: &[Container]) -> String {
    if containers.is_empty() {
        return "no containers\n".to_string();
    }
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let feed = if c.feed_for_lww { "yes" } else { "no" };
            vec![c.name.clone(), c.policy.clone(), feed.to_string()]
        })
        .collect();
    render_table(&["NAME", "POLICY", "FEED"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: ContainerCommand,
    }

    fn parse(argv: &[&str]) -> Result<ContainerCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("container").chain(argv.iter().copied())).map(|c| c.cmd)
    }

    fn c(name: &str, policy: &str, feed: bool) -> Container {
        Container {
            name: name.into(),
            policy: policy.into(),
            feed_for_lww: feed,
        }
    }

    #[test]
    fn create_takes_a_policy_and_refuses_an_unknown_one() {
        let cmd = parse(&["create", "jobs", "--policy", "lww:/priority"]).unwrap();
        assert!(matches!(
            cmd,
            ContainerCommand::Create { ref name, no_feed_for_lww: false, .. } if name == "jobs"
        ));
        let err = parse(&["create", "jobs", "--policy", "crdt"]).unwrap_err();
        assert!(err.to_string().contains("unknown conflict policy"), "{err}");
        assert!(
            parse(&["create", "jobs"]).is_err(),
            "the policy is required"
        );
        let quiet = parse(&["create", "o", "--policy", "lww", "--no-feed-for-lww"]).unwrap();
        assert!(matches!(
            quiet,
            ContainerCommand::Create {
                no_feed_for_lww: true,
                ..
            }
        ));
        assert!(matches!(
            parse(&["show", "jobs", "--json"]).unwrap(),
            ContainerCommand::Show {
                output: Output { json: true, .. },
                ..
            }
        ));
    }

    #[test]
    fn containers_render_as_text() {
        assert_eq!(
            one_text(&c("orders", "lww", false)),
            "container orders: policy lww --no-feed-for-lww"
        );
        assert_eq!(list_text(&[]), "no containers\n");
        assert_eq!(
            list_text(&[c("hits", "counter", true), c("orders", "lww", false)]),
            "NAME    POLICY   FEED\nhits    counter  yes\norders  lww      no\n"
        );
        let view = serde_json::to_value(ContainerView::of(&c("j", "lww:/p", true))).unwrap();
        assert_eq!(
            view,
            serde_json::json!({"name": "j", "policy": "lww:/p", "feed_for_lww": true})
        );
    }
}
