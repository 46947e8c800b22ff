//! `meridian verify`: run the workloads under the nemesis against a fresh
//! account and print one line per checker; exit 1 on any violation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::verify::runner::{self, VerifyOptions, VerifyReport};

/// The longest run the command accepts.
const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// How long the workload and the nemesis run, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Seed of the fault schedule and the workloads; printed, replayable.
    /// Default: drawn at random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Nodes in the region.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// `all` injects every kind of fault; `none` runs the workload alone.
    #[arg(long, default_value = "all", value_parser = ["all", "none"])]
    pub nemesis: String,
    /// Where to write the history (JSON lines). Default:
    /// ./meridian-verify-<seed>.jsonl
    #[arg(long)]
    pub history: Option<PathBuf>,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.duration <= DURATION_MAX, "--duration is capped at 24h");
    anyhow::ensure!(
        (1..=crate::config::REPLICAS_MAX).contains(&args.replicas),
        "--replicas must be 1 to 7"
    );
    let seed = args.seed.unwrap_or_else(rand::random);
    println!(
        "meridian verify: seed {seed} (replay with --seed {seed}), {:?}, {} nodes in-process",
        args.duration, args.replicas
    );
    let data = tempfile::Builder::new()
        .prefix("meridian-verify-")
        .tempdir()
        .context("temporary data directory")?;
    let options = VerifyOptions {
        seed,
        duration: args.duration,
        replicas: args.replicas,
        nemesis: args.nemesis == "all",
        data_dir: data.path().to_path_buf(),
        history_path: args
            .history
            .unwrap_or_else(|| PathBuf::from(format!("meridian-verify-{seed}.jsonl"))),
    };
    let report = runner::run(&options).await?;
    print_report(&report);
    Ok(if report.violations() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(report: &VerifyReport) {
    println!(
        "operations recorded: {}; faults injected: {}",
        report.operations,
        report.faults.len()
    );
    for f in &report.faults {
        println!(
            "  {:>7} ms .. {:>7} ms  {:?} on {:?}",
            f.started_ms, f.ended_ms, f.fault, f.target
        );
    }
    for check in &report.checks {
        let v = &check.verdict;
        let status = if !v.violations.is_empty() {
            "VIOLATED"
        } else if !v.too_complex.is_empty() {
            "too complex to decide (partly)"
        } else {
            "ok"
        };
        println!("{:<34} {:>7} ops  {status}", check.name, check.operations);
        for violation in &v.violations {
            println!("    {violation}");
        }
        for t in &v.too_complex {
            println!(
                "    key {} too complex after {} states",
                t.key, t.states_explored
            );
        }
    }
    println!("history: {}", report.history_path.display());
    println!("seed {}: {} violation(s)", report.seed, report.violations());
}
