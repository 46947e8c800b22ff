//! The deterministic simulation (`meridian::sim`): a whole account, the
//! verify workloads, the nemesis and the checkers on turmoil's simulated
//! hosts and time. A seed replays bit for bit; many seeds find no
//! violation.
//!
//! Bit-for-bit replay needs tokio's own random choices (`select!`) seeded,
//! which tokio allows only when built with `--cfg tokio_unstable`: the
//! replay test is ignored without it, and CI runs it with it
//! (docs/VERIFICATION.md).

use std::time::{Duration, Instant};

use meridian::sim::driver::{self, SimReport};
use meridian::verify::runner::VerifyOptions;

/// Seeds CI runs, in shards of this many (nextest runs shards side by
/// side).
const SEEDS: u64 = 200;
const SHARD_SEEDS: u64 = 10;

/// A short run: 3 s of workload in simulated time, a 100 ms pause before
/// each operation (a run costs real time in proportion to its operations:
/// about 2 s a seed in a debug build), and the nemesis at twice its pace
/// so that most seeds see a fault or two.
fn options(seed: u64, dir: &tempfile::TempDir) -> VerifyOptions {
    let mut options = VerifyOptions::new(
        seed,
        Duration::from_secs(3),
        dir.path().join("data"),
        dir.path().join(format!("history-{seed}.jsonl")),
    );
    options.think_time = Duration::from_millis(100);
    options.fault_time_scale = 0.5;
    options
}

fn simulate(options: &VerifyOptions) -> SimReport {
    match driver::run(options) {
        Ok(report) => report,
        Err(e) => panic!("seed {}: {e}", options.seed),
    }
}

/// The first line where two traces part, for the failure message.
fn first_difference(a: &str, b: &str) -> String {
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()));
    format!(
        "line {}:\n  first:  {}\n  second: {}",
        line + 1,
        a.lines().nth(line).unwrap_or("<end>"),
        b.lines().nth(line).unwrap_or("<end>")
    )
}

/// Three regions of four nodes and the meta group, with write region
/// cuts among the faults: 6 s of workload, the nemesis at its own pace so
/// that a fault on the write region can outlast its lease (1.5 s).
fn three_regions(seed: u64, dir: &tempfile::TempDir) -> VerifyOptions {
    let mut options = options(seed, dir);
    options.regions = 3;
    options.failover_faults = true;
    options.duration = Duration::from_secs(6);
    options.fault_time_scale = 1.0;
    options
}

/// A three-region seed whose plan slows the write region's links past its
/// lease: with tokio seeded (the replay test), the run fails over once.
const FAILOVER_SEED: u64 = 4;

/// Runs `options` twice and asserts the two traces are the same, and
/// that the run did something worth replaying; returns the first.
fn assert_replays(options: &VerifyOptions) -> SimReport {
    println!("simulation seed {}", options.seed);
    let first = simulate(options);
    let second = simulate(options);
    assert!(
        first.verify.operations > 100,
        "only {} operations",
        first.verify.operations
    );
    assert!(!first.verify.faults.is_empty(), "no fault was injected");
    assert_eq!(first.verify.violations(), 0, "{}", first.trace);
    assert_eq!(first.simulated, second.simulated);
    assert!(
        first.trace == second.trace,
        "seed {} did not replay: {}",
        options.seed,
        first_difference(&first.trace, &second.trace)
    );
    println!(
        "{} operations, {} faults, {} failovers, {:?} simulated: identical twice",
        first.verify.operations,
        first.verify.faults.len(),
        first.verify.epoch_changes,
        first.simulated
    );
    first
}

#[test]
#[cfg_attr(
    not(tokio_unstable),
    ignore = "replay needs tokio's select! seeded: RUSTFLAGS='--cfg tokio_unstable'"
)]
fn a_seed_replays_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    assert_replays(&options(20_260_101, &dir));
}

#[test]
#[cfg_attr(
    not(tokio_unstable),
    ignore = "replay needs tokio's select! seeded: RUSTFLAGS='--cfg tokio_unstable'"
)]
fn three_regions_replay_bit_for_bit_through_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let run = assert_replays(&three_regions(FAILOVER_SEED, &dir));
    assert!(
        run.verify.epoch_changes >= 1,
        "seed {FAILOVER_SEED} no longer fails over: {}",
        run.trace
            .lines()
            .filter(|l| l.starts_with("fault"))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// The whole account under region faults, in the ordinary build (where
/// the seed fixes the plan but not every interleaving, so a failover is
/// likely but not certain): no violation, and read regions served bounded
/// reads the staleness checker judged.
#[test]
fn three_regions_under_region_faults_find_no_violation() {
    let dir = tempfile::tempdir().unwrap();
    let seed = FAILOVER_SEED;
    println!(
        "simulation seed {seed} (replay: meridian verify --simulate --regions 3 --nemesis failover, docs/VERIFICATION.md)"
    );
    let run = simulate(&three_regions(seed, &dir));
    let report = &run.verify;
    println!(
        "{} operations, {} failovers, faults: {:?}",
        report.operations,
        report.epoch_changes,
        report.faults.iter().map(|f| f.fault).collect::<Vec<_>>()
    );
    for check in &report.checks {
        for v in &check.verdict.violations {
            println!("{}: {v}", check.name);
        }
    }
    assert_eq!(report.violations(), 0, "seed {seed}");
    assert!(
        report.faults.iter().any(|f| f.fault.is_region_fault()),
        "no region fault in {:?}",
        report.faults
    );
    assert!(
        report.staleness.reads_judged_outside_write_region() > 0,
        "no bounded read served by a read region was judged"
    );
}

#[test]
fn different_seeds_run_differently() {
    let dir = tempfile::tempdir().unwrap();
    let a = simulate(&options(1, &dir));
    let b = simulate(&options(2, &dir));
    assert!(a.trace != b.trace, "seeds 1 and 2 gave the same trace");
    assert_eq!(a.verify.violations() + b.verify.violations(), 0);
}

/// Runs shard `shard` of the CI seeds (`MERIDIAN_SIM_FIRST_SEED` moves
/// the range, to explore beyond it) and fails naming every seed with a
/// violation.
fn run_shard(shard: u64) {
    let first: u64 = std::env::var("MERIDIAN_SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let seeds = first + shard * SHARD_SEEDS..first + (shard + 1) * SHARD_SEEDS;
    println!(
        "simulation seeds {seeds:?} (replay one: meridian verify --simulate --seed S, see docs/VERIFICATION.md)"
    );
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (mut failed, mut operations, mut faults) = (Vec::new(), 0, 0);
    for seed in seeds.clone() {
        let report = simulate(&options(seed, &dir));
        operations += report.verify.operations;
        faults += report.verify.faults.len();
        if report.verify.violations() > 0 {
            for check in &report.verify.checks {
                for v in &check.verdict.violations {
                    println!("seed {seed}: {}: {v}", check.name);
                }
            }
            failed.push(seed);
        }
        let _ = std::fs::remove_file(&report.verify.history_path);
    }
    println!(
        "seeds {seeds:?}: {operations} operations, {faults} faults, {:?} of real time",
        started.elapsed()
    );
    assert!(faults > 0, "the nemesis injected nothing in {seeds:?}");
    assert!(failed.is_empty(), "seeds with violations: {failed:?}");
}

macro_rules! shards {
    ($($name:ident = $shard:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_shard($shard);
            }
        )*
        // The shards cover exactly the CI seeds.
        const _: () = assert!([$($shard),*].len() as u64 * SHARD_SEEDS == SEEDS);
    };
}

shards!(
    seeds_shard_00 = 0,
    seeds_shard_01 = 1,
    seeds_shard_02 = 2,
    seeds_shard_03 = 3,
    seeds_shard_04 = 4,
    seeds_shard_05 = 5,
    seeds_shard_06 = 6,
    seeds_shard_07 = 7,
    seeds_shard_08 = 8,
    seeds_shard_09 = 9,
    seeds_shard_10 = 10,
    seeds_shard_11 = 11,
    seeds_shard_12 = 12,
    seeds_shard_13 = 13,
    seeds_shard_14 = 14,
    seeds_shard_15 = 15,
    seeds_shard_16 = 16,
    seeds_shard_17 = 17,
    seeds_shard_18 = 18,
    seeds_shard_19 = 19,
);

/// `meridian verify --simulate --seeds 2`: one line per seed, a summary
/// naming no failed seed, exit 0, and no history left behind for a clean
/// seed.
#[test]
fn the_command_runs_seeds_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .current_dir(dir.path())
        .args(["verify", "--simulate", "--seed", "40", "--seeds", "2"])
        .args([
            "--regions",
            "1",
            "--duration",
            "2s",
            "--think-time",
            "100ms",
        ])
        .output()
        .expect("run meridian verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}");
    for seed in [40, 41] {
        assert!(
            stdout.contains(&format!("seed {seed}: ")) && stdout.contains("0 violation(s)"),
            "no line for seed {seed}"
        );
        assert!(
            !dir.path()
                .join(format!("meridian-verify-{seed}.jsonl"))
                .exists()
        );
    }
    assert!(
        stdout.contains("2 seeds from 40") && stdout.contains("violations or errors: []"),
        "{stdout}"
    );
}
