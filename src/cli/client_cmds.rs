//! The client subcommands of `meridian` (`put`, `get`, `delete`, `scan`,
//! `bench`): their arguments and which command each runs. The commands
//! are in [`super::kv_cmds`], what they print in [`super::kv_output`],
//! and [`Output`] (where to connect, how to print) in [`super::options`].
//!
//! Every command uses the routed client: `--endpoint` is where it learns
//! the account, reads go to the first `--region NAME` (repeatable, first
//! choice first) that can serve them, then to the endpoint's own region,
//! then to the others by failover priority, and writes go to the write
//! region whatever the list. A request keeps trying other nodes and
//! regions, and follows a failover, for up to `--deadline`.
//! `--no-forward` turns routing off for one write: it goes where a read
//! would, and a read region answers NOT_WRITE_REGION naming the write
//! region. Every result names the node that served it (`served_by`) and
//! the session token to present in later session reads.
//!
//! Exit codes: 0 on success, 1 when the key is not found (like `grep`), and
//! errors are returned to `main`, which prints them with the server's
//! message and its error name (`[NOT_WRITE_REGION, write region: west]`).

use std::process::ExitCode;

use crate::bench::args::BenchArgs;
use crate::cli::kv_cmds::{self, PutMode};
use crate::cli::options::Output;
use crate::client::{ReadOptions, ScanRange, WriteOptions};
use crate::consistency::Consistency;
use crate::glsn::SessionToken;

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ClientCommand {
    /// Write an item: upsert, or create-only with --create, or replace only
    /// the version with etag --if-match.
    Put {
        #[command(flatten)]
        output: Output,
        container: String,
        key: String,
        value: String,
        #[arg(long)]
        consistency: Option<Consistency>,
        /// Fail if the key already exists.
        #[arg(long, conflicts_with = "if_match")]
        create: bool,
        /// Replace only if the current etag is this one.
        #[arg(long)]
        if_match: Option<String>,
        /// Do not route the write: send it where a read would go and fail
        /// with NOT_WRITE_REGION there unless that is the write region.
        #[arg(long)]
        no_forward: bool,
    },
    /// Read an item.
    Get {
        #[command(flatten)]
        output: Output,
        container: String,
        key: String,
        #[arg(long)]
        consistency: Option<Consistency>,
        /// A token a write returned, e.g. e1:42, for a SESSION read.
        #[arg(long)]
        session_token: Option<SessionToken>,
    },
    /// Delete an item.
    Delete {
        #[command(flatten)]
        output: Output,
        container: String,
        key: String,
        #[arg(long)]
        consistency: Option<Consistency>,
        /// Delete only if the current etag is this one.
        #[arg(long)]
        if_match: Option<String>,
        /// Do not route the write: send it where a read would go and fail
        /// with NOT_WRITE_REGION there unless that is the write region.
        #[arg(long)]
        no_forward: bool,
    },
    /// List items by key prefix or range, following pages.
    Scan {
        #[command(flatten)]
        output: Output,
        container: String,
        #[arg(long)]
        prefix: Option<String>,
        /// First key (inclusive).
        #[arg(long)]
        start: Option<String>,
        /// Last key (exclusive).
        #[arg(long)]
        end: Option<String>,
        /// Stop after this many items.
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long)]
        consistency: Option<Consistency>,
        #[arg(long)]
        session_token: Option<SessionToken>,
    },
    /// Measure throughput and latency, closed-loop or at a fixed --rate.
    Bench(BenchArgs),
}

pub async fn run(cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClientCommand::Put {
            output,
            container,
            key,
            value,
            consistency,
            create,
            if_match,
            no_forward,
        } => {
            let write = PutMode::from_flags(create, if_match);
            let opts = WriteOptions {
                consistency,
                session_token: None,
                no_forward,
            };
            kv_cmds::put(&output, &container, &key, value.into_bytes(), &opts, write).await
        }
        ClientCommand::Get {
            output,
            container,
            key,
            consistency,
            session_token,
        } => {
            let opts = ReadOptions {
                consistency,
                session_token,
            };
            kv_cmds::get(&output, &container, &key, &opts).await
        }
        ClientCommand::Delete {
            output,
            container,
            key,
            consistency,
            if_match,
            no_forward,
        } => {
            let opts = WriteOptions {
                consistency,
                session_token: None,
                no_forward,
            };
            kv_cmds::delete(&output, &container, &key, if_match, &opts).await
        }
        ClientCommand::Scan {
            output,
            container,
            prefix,
            start,
            end,
            limit,
            consistency,
            session_token,
        } => {
            let range = ScanRange { prefix, start, end };
            let opts = ReadOptions {
                consistency,
                session_token,
            };
            kv_cmds::scan(&output, &container, &range, limit, &opts).await
        }
        ClientCommand::Bench(args) => kv_cmds::bench(&args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::DEFAULT_ENDPOINT;
    use crate::glsn::Glsn;
    use clap::Parser;
    use std::time::Duration;

    /// The binary nests these under its own parser; this stands in for it.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: ClientCommand,
    }

    fn parse(argv: &[&str]) -> Result<ClientCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("meridian").chain(argv.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn put_parses_its_flags_and_defaults() {
        let cmd = parse(&["put", "c", "k", "v", "--consistency", "strong"]).unwrap();
        let ClientCommand::Put {
            output,
            consistency,
            create,
            if_match,
            ..
        } = cmd
        else {
            panic!("not a put: {cmd:?}");
        };
        assert_eq!(output.endpoint, DEFAULT_ENDPOINT);
        assert!(!output.json);
        assert_eq!(consistency, Some(Consistency::Strong));
        assert_eq!(PutMode::from_flags(create, if_match), PutMode::Upsert);
    }

    #[test]
    fn put_create_and_if_match_exclude_each_other() {
        assert!(parse(&["put", "c", "k", "v", "--create", "--if-match", "t"]).is_err());
        let ClientCommand::Put {
            create, if_match, ..
        } = parse(&["put", "c", "k", "v", "--if-match", "t1"]).unwrap()
        else {
            panic!("not a put");
        };
        assert_eq!(
            PutMode::from_flags(create, if_match),
            PutMode::Replace {
                if_match: "t1".to_string()
            }
        );
        assert_eq!(PutMode::from_flags(true, None), PutMode::Create);
    }

    #[test]
    fn get_parses_tokens_and_refuses_bad_ones() {
        let cmd = parse(&[
            "get",
            "c",
            "k",
            "--session-token=e1:42",
            "--json",
            "--endpoint=http://n1:7070",
        ])
        .unwrap();
        let ClientCommand::Get {
            output,
            session_token,
            ..
        } = cmd
        else {
            panic!("not a get");
        };
        assert_eq!(session_token, Some(SessionToken(Glsn::new(1, 42))));
        assert!(output.json);
        assert_eq!(output.endpoint, "http://n1:7070");
        assert!(parse(&["get", "c", "k", "--session-token=42"]).is_err());
        assert!(parse(&["get", "c", "k", "--consistency=linearizable"]).is_err());
        assert!(parse(&["get", "c"]).is_err());
    }

    #[test]
    fn scan_delete_and_bench_parse() {
        let cmd = parse(&["scan", "c", "--prefix=a", "--limit=5"]).unwrap();
        assert!(matches!(cmd, ClientCommand::Scan { limit: Some(5), .. }));
        assert!(matches!(
            parse(&["delete", "c", "k", "--if-match=t", "--no-forward"]).unwrap(),
            ClientCommand::Delete {
                no_forward: true,
                ..
            }
        ));
        let ClientCommand::Bench(args) = parse(&["bench", "--op=get", "--clients=3"]).unwrap()
        else {
            panic!("not a bench");
        };
        assert_eq!(args.clients, 3);
    }

    #[test]
    fn region_repeats_in_order_on_every_command() {
        let cmd = parse(&["get", "c", "k", "--region", "east", "--region=west"]).unwrap();
        let ClientCommand::Get { output, .. } = cmd else {
            panic!("not a get");
        };
        assert_eq!(output.regions, ["east", "west"]);
        for argv in [
            &["put", "c", "k", "v", "--region=east"][..],
            &["delete", "c", "k", "--region=east"],
            &["scan", "c", "--region=east"],
        ] {
            let cmd = parse(argv).unwrap();
            let output = match &cmd {
                ClientCommand::Put { output, .. }
                | ClientCommand::Delete { output, .. }
                | ClientCommand::Scan { output, .. } => output,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(output.regions, ["east"], "{argv:?}");
        }
        let ClientCommand::Get { output, .. } = parse(&["get", "c", "k"]).unwrap() else {
            panic!("not a get");
        };
        assert!(output.regions.is_empty());
        assert!(parse(&["get", "c", "k", "--region="]).is_err());
        assert!(parse(&["get", "c", "k", "--region", " "]).is_err());
    }

    #[test]
    fn the_deadline_defaults_to_the_clients_and_is_bounded() {
        let ClientCommand::Get { output, .. } = parse(&["get", "c", "k"]).unwrap() else {
            panic!("not a get");
        };
        assert_eq!(output.deadline, crate::client::retry::DEADLINE_DEFAULT);
        let ClientCommand::Put { output, .. } =
            parse(&["put", "c", "k", "v", "--deadline", "30s"]).unwrap()
        else {
            panic!("not a put");
        };
        assert_eq!(output.deadline, Duration::from_secs(30));
        for bad in ["0s", "11m", "soon"] {
            assert!(
                parse(&["get", "c", "k", "--deadline", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_forward_is_off_unless_asked_for() {
        let ClientCommand::Put { no_forward, .. } = parse(&["put", "c", "k", "v"]).unwrap() else {
            panic!("not a put");
        };
        assert!(!no_forward);
        let ClientCommand::Put { no_forward, .. } =
            parse(&["put", "c", "k", "v", "--create", "--no-forward"]).unwrap()
        else {
            panic!("not a put");
        };
        assert!(no_forward);
        // Reads are never forwarded, so they do not take the flag.
        assert!(parse(&["get", "c", "k", "--no-forward"]).is_err());
    }
}
