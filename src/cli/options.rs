//! Where a command connects and how it prints: [`Output`], which every
//! client, admin, failover, conflict feed and fault command takes, and the
//! two ways of connecting with it: the routed [`Client`] of the key-value
//! commands, and the one-node client of the admin commands.

use std::time::Duration;

use anyhow::Context;

use crate::client::{Client, ClientOptions, DEFAULT_ENDPOINT};
use crate::ids::RegionId;

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
    #[arg(long = "region", value_name = "NAME", value_parser = region_name)]
    pub regions: Vec<String>,
    /// How long a request may keep retrying other nodes and regions, and
    /// through a failover, e.g. `10s`, `1m`.
    #[arg(long, default_value = "10s", value_parser = parse_deadline)]
    pub deadline: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A region name as the command line takes it (see `RegionId: FromStr`).
pub fn region_name(text: &str) -> Result<String, String> {
    text.parse::<RegionId>().map(String::from)
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

/// A client of one node for the admin commands: `--endpoint`, or a node
/// of the first `--region` that answers, whose requests may take
/// `timeout` (a switchover takes seconds).
pub(crate) async fn connect_admin(output: &Output, timeout: Duration) -> anyhow::Result<Client> {
    crate::client::connect_admin(&output.endpoint, &output.regions, timeout)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
