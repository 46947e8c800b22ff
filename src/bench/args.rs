//! The arguments of `meridian bench`, each with a default and a limit, so
//! a typo cannot start a million tasks or a day-long run.

use std::time::Duration;

use crate::bench::schedule::RATE_MAX;
use crate::client::DEFAULT_ENDPOINT;
use crate::consistency::Consistency;
use crate::ids::RegionId;
use crate::limits::VALUE_BYTES_MAX;

/// Concurrent closed-loop clients, by default and at most.
pub const CLIENTS_DEFAULT: u64 = 64;
pub const CLIENTS_MAX: u64 = 4096;
/// gRPC channels (HTTP/2 connections) the clients share.
pub const CONNECTIONS_DEFAULT: u64 = 4;
pub const CONNECTIONS_MAX: u64 = 256;
pub const VALUE_BYTES_DEFAULT: u64 = 1024;
/// Distinct keys the workload touches; a `get` run writes all of them first.
pub const KEYS_DEFAULT: u64 = 10_000;
pub const KEYS_MAX: u64 = 10_000_000;
/// The longest run: long enough for a soak, short enough to stop a typo.
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchOp {
    Put,
    Get,
}

impl BenchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BenchOp::Put => "put",
            BenchOp::Get => "get",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BenchArgs {
    /// The node to talk to; with `--region`, the node asked for the
    /// account's nodes. Replication lag is sampled from it.
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// A preferred region; repeat it for a fallback order. The workload
    /// runs against a running node of the first listed region that has one.
    #[arg(long = "region", value_name = "NAME", value_parser = |s: &str| s.parse::<RegionId>().map(String::from))]
    pub regions: Vec<String>,
    /// Open loop: start this many operations per second across all clients,
    /// whether or not earlier ones have finished, and measure latency from
    /// each operation's intended start. Without it the loop is closed.
    #[arg(long, value_name = "OPS_PER_S",
          value_parser = clap::value_parser!(u64).range(1..=RATE_MAX))]
    pub rate: Option<u64>,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = CLIENTS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=CLIENTS_MAX))]
    pub clients: u64,
    /// gRPC connections the clients are spread over.
    #[arg(long, default_value_t = CONNECTIONS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=CONNECTIONS_MAX))]
    pub connections: u64,
    #[arg(long, default_value_t = VALUE_BYTES_DEFAULT,
          value_parser = clap::value_parser!(u64).range(0..=VALUE_BYTES_MAX as u64))]
    pub value_bytes: u64,
    /// How long to measure, e.g. `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, value_enum, default_value_t = BenchOp::Put)]
    pub op: BenchOp,
    /// Per-request level; the account default when absent.
    #[arg(long)]
    pub consistency: Option<Consistency>,
    /// Size of the keyspace.
    #[arg(long, default_value_t = KEYS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=KEYS_MAX))]
    pub keys: u64,
    #[arg(long, default_value = "bench")]
    pub container: String,
    /// Print the report as JSON and no progress bar.
    #[arg(long)]
    pub json: bool,
}

/// humantime's parser, bounded: a zero-length run measures nothing.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() || duration > DURATION_MAX {
        return Err(format!(
            "duration must be above 0 and at most {}",
            humantime::format_duration(DURATION_MAX)
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
        let full = std::iter::once("bench").chain(argv.iter().copied());
        Wrapper::try_parse_from(full).map(|w| w.args)
    }

    #[test]
    fn defaults_match_the_documented_workload() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(args.clients, 64);
        assert_eq!(args.connections, 4);
        assert_eq!(args.value_bytes, 1024);
        assert_eq!(args.duration, Duration::from_secs(10));
        assert_eq!(args.op, BenchOp::Put);
        assert_eq!(args.consistency, None);
        assert_eq!(args.keys, 10_000);
        assert_eq!(args.container, "bench");
        assert!(args.regions.is_empty());
        assert_eq!(args.rate, None);
        assert!(!args.json);
    }

    #[test]
    fn every_flag_parses() {
        let args = parse(&[
            "--clients=8",
            "--connections=2",
            "--value-bytes=16",
            "--duration=1m 30s",
            "--op=get",
            "--consistency=session",
            "--keys=5",
            "--container=c",
            "--region=east",
            "--region",
            "west",
            "--rate=500",
            "--json",
        ])
        .unwrap();
        assert_eq!(args.regions, ["east", "west"]);
        assert_eq!(args.rate, Some(500));
        assert_eq!(args.duration, Duration::from_secs(90));
        assert_eq!(args.op, BenchOp::Get);
        assert_eq!(args.consistency, Some(Consistency::Session));
        assert_eq!((args.clients, args.connections, args.keys), (8, 2, 5));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for bad in [
            "--clients=0",
            "--clients=5000",
            "--connections=0",
            "--keys=0",
            "--duration=0s",
            "--duration=2days",
            "--value-bytes=3000000",
            "--consistency=linearizable",
            "--rate=0",
            "--rate=1000001",
            "--rate=-5",
            "--region=",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad} was accepted");
        }
    }
}
