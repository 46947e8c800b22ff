//! `meridian dev`: a whole account in one process on loopback, the
//! embedded default: three regions (`west`, the write region, `east` and
//! `north`) of four nodes each, on consecutive ports from a base port: the
//! first node serves clients on 127.0.0.1:7070. `--wan-rtt` adds latency
//! between regions so the consistency levels can be felt on one machine.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::config::REPLICAS_MAX;
use crate::local::{LocalAccount, LocalOptions, PORTS_PER_NODE, node_ports};

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Regions in the account (west, east, north, then region4...), in
    /// failover priority order; the first is the write region.
    #[arg(long, default_value_t = 3)]
    pub regions: usize,
    /// Nodes per region (the replica set's voters), 1 to 7.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// Keep data here; reusing it across runs keeps the data. Default: a
    /// fresh temporary directory, removed on exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The base port. Node n serves clients on PORT + 2(n-1) and its
    /// replica transport on the port after, so node 1 is at PORT and
    /// PORT+1, node 2 at PORT+2 and PORT+3, and so on; 0 picks free ports.
    #[arg(long, default_value_t = 7070)]
    pub port: u16,
    /// Round-trip time added to every message between two regions, e.g.
    /// `40ms`.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub wan_rtt: std::time::Duration,
    /// The account's default consistency (requests may ask for weaker).
    #[arg(long, default_value = "strong")]
    pub consistency: crate::consistency::Consistency,
}

/// Regions `meridian dev` accepts.
pub const DEV_REGIONS_MAX: usize = 7;
/// The largest simulated WAN round trip.
pub const WAN_RTT_MAX: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    if args.regions == 0 || args.regions > DEV_REGIONS_MAX {
        bail!("--regions {}: 1 to {DEV_REGIONS_MAX}", args.regions);
    }
    if args.wan_rtt > WAN_RTT_MAX {
        bail!("--wan-rtt {:?}: at most {WAN_RTT_MAX:?}", args.wan_rtt);
    }
    if args.replicas == 0 || args.replicas > REPLICAS_MAX {
        bail!(
            "--replicas {}: a replica set has 1 to {REPLICAS_MAX} nodes",
            args.replicas
        );
    }
    let nodes = args.regions * args.replicas;
    if node_ports(args.port, nodes.saturating_sub(1)).is_none() {
        bail!(
            "--port {}: {nodes} nodes take {} consecutive ports from it, past port {}",
            args.port,
            nodes * PORTS_PER_NODE as usize,
            u16::MAX
        );
    }
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("meridian-dev-")
                .tempdir()
                .context("creating a temporary data directory")?,
        ),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()))
        .expect("one of the two is set");
    let mut options = LocalOptions::new(&data_dir);
    options.regions = args.regions;
    options.replicas = args.replicas;
    options.base_port = args.port;
    options.geo.wan_rtt_ms = args.wan_rtt.as_millis() as u64;
    options.default_consistency = args.consistency;
    let account = LocalAccount::start(options)
        .await
        .context("starting the dev account")?;
    print_banner(&account, &data_dir, temp.is_some());
    super::interrupted().await;
    println!("stopping: flushing every node");
    account.stop().await;
    Ok(ExitCode::SUCCESS)
}

fn print_banner(account: &LocalAccount, data_dir: &std::path::Path, temporary: bool) {
    let config = account.account();
    let regions = config.regions.len();
    let nodes = config.regions.first().map_or(0, |r| r.nodes.len());
    println!(
        "meridian dev: account {:?}, {regions} region(s) x {nodes} nodes, default consistency {}",
        config.name, config.default_consistency
    );
    let note = if temporary {
        "temporary, removed on exit; pass --data-dir to keep it"
    } else {
        "kept across runs"
    };
    println!("data directory: {} ({note})", data_dir.display());
    println!(
        "write region: {} (regions in priority order: {})",
        config.regions[0].name,
        config
            .regions
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (region, node) in config.nodes() {
        println!(
            "  {}/{}  client http://{}  peer {}",
            region.name, node.id, node.client_addr, node.peer_addr
        );
    }
    println!(
        "ready. Try: meridian put users alice hello && meridian get users alice --region east --consistency session && meridian status"
    );
    println!("Ctrl-C stops the account.");
}
