//! `meridian verify`: run the workloads under the nemesis against a fresh
//! account and print one line per checker; exit 1 on any violation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cli::dev::{DEV_REGIONS_MAX, WAN_RTT_MAX};
use crate::config::{MAX_STALENESS_MS_RANGE, MAX_STALENESS_OPS_RANGE};
use crate::consistency::Consistency;
use crate::mutation::Mutation;
use crate::verify::nemesis::FaultEvent;
use crate::verify::runner::{
    self, STALENESS_DEFAULT, StalenessFigures, VerifyOptions, VerifyReport,
};
use crate::verify::staleness;

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
    /// Regions in the account (west, the write region, then east, north,
    /// ...). With more than one, reads go to every region and the nemesis
    /// also cuts and delays regions.
    #[arg(long, default_value_t = 3)]
    pub regions: usize,
    /// Nodes in each region.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// The account's default consistency. Workloads that need a stronger
    /// level (strong registers, bounded-staleness reads) are skipped.
    #[arg(long, default_value = "strong")]
    pub consistency: Consistency,
    /// Bounded staleness K: the account throttles writes beyond it and
    /// the checker judges bounded reads against it.
    #[arg(long, default_value_t = STALENESS_DEFAULT.versions_max)]
    pub max_staleness_ops: u64,
    /// Bounded staleness T, e.g. `1s`; enforced and judged like K.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub max_staleness: Duration,
    /// Round trip added between regions, e.g. `20ms`.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub wan_rtt: Duration,
    /// `all` injects node and region faults; `failover` also cuts the
    /// write region off, so writes fail over (with several regions);
    /// `none` runs the workload alone.
    #[arg(long, default_value = "all", value_parser = ["all", "failover", "none"])]
    pub nemesis: String,
    /// Where to write the history (JSON lines). Default:
    /// ./meridian-verify-<seed>.jsonl
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Break a promise on purpose, to see a checker catch it:
    /// stale-strong-read, session-ignores-token or ack-unwritten. Only in a
    /// build with the verify-mutations feature; the switch is this
    /// process's, so the run is in-process.
    #[arg(long)]
    pub mutation: Option<Mutation>,
    /// Run every node in this process (stop/start instead of kill -9, no
    /// pauses) instead of as `meridian server` processes.
    #[arg(long)]
    pub in_process: bool,
    /// Run the whole account in a deterministic simulation (turmoil's
    /// simulated network and time, in-memory storage, seeded elections):
    /// a seed replays exactly. Only in a build with the simulation
    /// feature.
    #[arg(long, conflicts_with_all = ["in_process", "mutation"])]
    pub simulate: bool,
    /// With --simulate: run this many seeds, from --seed on, one line
    /// each; a seed with a violation prints its whole report and keeps its
    /// history. Exits 1 if any seed has a violation.
    #[arg(long, default_value_t = 1, requires = "simulate")]
    pub seeds: u64,
    /// A pause each workload process takes before each operation, e.g.
    /// `20ms`: fewer operations per second (a simulation's cost is its
    /// operations).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub think_time: Duration,
    /// Multiplies the nemesis's gaps and holds (0.01 to 100): below 1, a
    /// short run sees more faults.
    #[arg(long, default_value_t = 1.0)]
    pub fault_time_scale: f64,
}

fn check_args(args: &VerifyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.duration <= DURATION_MAX, "--duration is capped at 24h");
    anyhow::ensure!(
        (1..=DEV_REGIONS_MAX).contains(&args.regions),
        "--regions must be 1 to {DEV_REGIONS_MAX}"
    );
    anyhow::ensure!(
        (1..=crate::config::REPLICAS_MAX).contains(&args.replicas),
        "--replicas must be 1 to 7"
    );
    let (k_min, k_max) = MAX_STALENESS_OPS_RANGE;
    anyhow::ensure!(
        (k_min..=k_max).contains(&args.max_staleness_ops),
        "--max-staleness-ops must be {k_min} to {k_max}"
    );
    let (t_min, t_max) = MAX_STALENESS_MS_RANGE;
    anyhow::ensure!(
        (t_min..=t_max).contains(&(args.max_staleness.as_millis() as u64)),
        "--max-staleness must be {t_min} ms to {t_max} ms"
    );
    anyhow::ensure!(
        args.wan_rtt <= WAN_RTT_MAX,
        "--wan-rtt is at most {WAN_RTT_MAX:?}"
    );
    anyhow::ensure!(
        args.think_time <= Duration::from_secs(10),
        "--think-time is at most 10s"
    );
    anyhow::ensure!(
        (0.01..=100.0).contains(&args.fault_time_scale),
        "--fault-time-scale must be 0.01 to 100"
    );
    Ok(())
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    check_args(&args)?;
    if let Some(m) = args.mutation {
        crate::mutation::arm(m).map_err(anyhow::Error::msg)?;
        println!("meridian verify: mutation {m} armed; a checker should report violations");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let in_process = args.in_process || args.mutation.is_some() || args.simulate;
    println!(
        "meridian verify: seed {seed} (replay with --seed {seed}), {:?}, {} region(s) x {} nodes {}, default consistency {}",
        args.duration,
        args.regions,
        args.replicas,
        if args.simulate {
            "simulated"
        } else if in_process {
            "in-process"
        } else {
            "as processes"
        },
        args.consistency
    );
    let data = tempfile::Builder::new()
        .prefix("meridian-verify-")
        .tempdir()
        .context("temporary data directory")?;
    let history_path = args
        .history
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("meridian-verify-{seed}.jsonl")));
    let mut options =
        VerifyOptions::new(seed, args.duration, data.path().to_path_buf(), history_path);
    options.regions = args.regions;
    options.replicas = args.replicas;
    options.nemesis = args.nemesis != "none";
    options.failover_faults = args.nemesis == "failover";
    options.default_consistency = args.consistency;
    options.staleness = staleness::Params {
        versions_max: args.max_staleness_ops,
        lag_ms_max: args.max_staleness.as_millis() as u64,
    };
    options.wan_rtt_ms = args.wan_rtt.as_millis() as u64;
    options.think_time = args.think_time;
    options.fault_time_scale = args.fault_time_scale;
    if !in_process {
        let exe = std::env::current_exe().context("finding this binary to run its nodes")?;
        options.processes = Some(exe);
    }
    if args.simulate && args.seeds > 1 {
        return simulate_many(options, args.seeds).await;
    }
    let report = if args.simulate {
        simulate(options).await?
    } else {
        runner::run(&options).await?
    };
    print_report(&report);
    if report.violations() > 0 && !in_process {
        let kept = data.keep();
        println!("node logs and data kept in {}", kept.display());
    }
    Ok(if report.violations() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the simulation on a thread of its own: it builds its own
/// runtimes, which cannot nest in this one.
#[cfg(feature = "simulation")]
async fn simulate(options: VerifyOptions) -> anyhow::Result<VerifyReport> {
    let started = std::time::Instant::now();
    let run = tokio::task::spawn_blocking(move || crate::sim::driver::run(&options))
        .await
        .context("the simulation thread panicked")??;
    println!(
        "simulated {:?} in {} steps, {:?} of real time",
        run.simulated,
        run.steps,
        started.elapsed()
    );
    Ok(run.verify)
}

/// Runs `seeds` seeds from `options.seed` on, one after the other.
#[cfg(feature = "simulation")]
async fn simulate_many(options: VerifyOptions, seeds: u64) -> anyhow::Result<ExitCode> {
    let first = options.seed;
    let failed = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut failed = Vec::new();
        for seed in first..first.saturating_add(seeds) {
            let mut options = options.clone();
            options.seed = seed;
            options.history_path = PathBuf::from(format!("meridian-verify-{seed}.jsonl"));
            match crate::sim::driver::run(&options) {
                Ok(run) => {
                    let report = &run.verify;
                    println!(
                        "seed {seed}: {} operations, {} faults, {} violation(s), {:?} simulated",
                        report.operations,
                        report.faults.len(),
                        report.violations(),
                        run.simulated
                    );
                    if report.violations() > 0 {
                        print_report(report);
                        failed.push(seed);
                    } else {
                        let _ = std::fs::remove_file(&report.history_path);
                    }
                }
                Err(e) => {
                    println!("seed {seed}: {e}");
                    failed.push(seed);
                }
            }
        }
        println!(
            "{seeds} seeds from {first} in {:?}; seeds with violations or errors: {failed:?}",
            started.elapsed()
        );
        failed
    })
    .await
    .context("the simulation thread panicked")?;
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(not(feature = "simulation"))]
async fn simulate_many(_: VerifyOptions, _: u64) -> anyhow::Result<ExitCode> {
    simulate_unavailable()
}

#[cfg(not(feature = "simulation"))]
async fn simulate(_: VerifyOptions) -> anyhow::Result<VerifyReport> {
    simulate_unavailable()
}

#[cfg(not(feature = "simulation"))]
fn simulate_unavailable<T>() -> anyhow::Result<T> {
    anyhow::bail!(
        "--simulate needs a build with the simulation feature (cargo build --features simulation)"
    )
}

fn print_report(report: &VerifyReport) {
    println!(
        "operations recorded: {}; faults injected: {}",
        report.operations,
        report.faults.len()
    );
    for f in &report.faults {
        println!("{}", describe_fault(f));
    }
    for check in &report.checks {
        let v = &check.verdict;
        let status = if let Some(why) = &check.skipped {
            format!("skipped: {why}")
        } else if !v.violations.is_empty() {
            "VIOLATED".to_string()
        } else if !v.too_complex.is_empty() {
            "too complex to decide (partly)".to_string()
        } else {
            "ok".to_string()
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
    print_staleness(&report.staleness);
    println!(
        "failovers and switchovers: {}; writes the conflict feed accounts as lost to them: {}",
        report.epoch_changes, report.lost_to_failover
    );
    println!("history: {}", report.history_path.display());
    println!("seed {}: {} violation(s)", report.seed, report.violations());
}

fn describe_fault(f: &FaultEvent) -> String {
    let nodes: Vec<String> = f.target.iter().map(ToString::to_string).collect();
    let region = f
        .region
        .as_ref()
        .map_or_else(String::new, |r| format!(" region {r}"));
    format!(
        "  {:>7} ms .. {:>7} ms  {:?} on{region} [{}]",
        f.started_ms,
        f.ended_ms,
        f.fault,
        nodes.join(" ")
    )
}

/// One line per region that served bounded reads: how many were judged,
/// how many trailed the write region, and by how much at most.
fn print_staleness(figures: &StalenessFigures) {
    println!(
        "bounded reads by serving region (K = {} versions, T = {} ms; write region {}):",
        figures.params.versions_max, figures.params.lag_ms_max, figures.write_region
    );
    for (region, f) in &figures.regions {
        println!(
            "  {region:<8} {:>7} judged, {:>6} behind, at most {} version(s) / {} ms behind",
            f.reads_judged, f.reads_behind, f.versions_behind_max, f.lag_ms_max
        );
    }
}
