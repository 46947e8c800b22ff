//! `meridian server --config node.toml`: one node until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::fault::FaultInjection;
use crate::server::Node;

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The node's TOML configuration (see deploy/node.example.toml).
    #[arg(long)]
    pub config: PathBuf,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let node = Node::start(config, FaultInjection::for_server())
        .await
        .with_context(|| format!("starting the node of {}", args.config.display()))?;
    println!(
        "{} serving clients on {} and replicas on {}",
        node.id, node.client_addr, node.peer_addr
    );
    super::interrupted().await;
    println!("{} stopping", node.id);
    node.stop().await;
    Ok(ExitCode::SUCCESS)
}
