//! The verification harness end to end: short `verify` runs under the
//! nemesis find no violation, and every checker saw operations. One run
//! is a single region; the other is three regions under region faults,
//! where the bounded-staleness checker must have judged reads that read
//! regions served.

use std::time::Duration;

use meridian::consistency::Consistency;
use meridian::verify::nemesis::{self, Fault, Kinds};
use meridian::verify::runner::{self, VerifyOptions, VerifyReport};

use crate::support::*;

/// Bounded reads that read regions must have served for the bound to
/// count as checked. A release build serves about 1,500 in 10 s; a debug
/// build on a 2-core machine under a load average of 15 served 35. A run
/// where read regions served fewer would prove little.
const READ_REGION_READS_MIN: usize = 20;

/// `MERIDIAN_VERIFY_SEED` when set (a replay), else a random seed; printed.
fn verify_seed() -> u64 {
    let seed: u64 = std::env::var("MERIDIAN_VERIFY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("verify seed {seed} (replay: MERIDIAN_VERIFY_SEED={seed})");
    seed
}

fn options(seed: u64, seconds: u64, dir: &tempfile::TempDir) -> VerifyOptions {
    VerifyOptions::new(
        seed,
        Duration::from_secs(seconds),
        dir.path().join("data"),
        dir.path().join("history.jsonl"),
    )
}

/// Prints every violation and asserts what any run must show: each
/// checker ran and saw operations, the nemesis did something, the history
/// was written, and nothing was violated. A run with violations keeps its
/// directory, so the history lines its report names can still be read.
fn assert_clean(report: &VerifyReport, seed: u64, dir: tempfile::TempDir) {
    assert_clean_skipping(report, seed, dir, &[]);
}

/// [`assert_clean`], except that the checkers whose names start with one
/// of `skippable` may be skipped (their workload needs a level stronger
/// than the account's default); a checker that ran must still have seen
/// operations.
fn assert_clean_skipping(
    report: &VerifyReport,
    seed: u64,
    dir: tempfile::TempDir,
    skippable: &[&str],
) {
    for check in &report.checks {
        for v in &check.verdict.violations {
            println!("{}: {v}", check.name);
        }
        if check.skipped.is_some() {
            assert!(
                skippable.iter().any(|s| check.name.starts_with(s)),
                "{} was skipped",
                check.name
            );
            continue;
        }
        assert!(check.operations > 0, "{} saw no operations", check.name);
    }
    assert!(!report.faults.is_empty(), "the nemesis injected nothing");
    assert!(
        std::fs::metadata(&report.history_path).unwrap().len() > 0,
        "history file written"
    );
    if report.violations() > 0 {
        println!(
            "history kept: {}",
            dir.keep().join("history.jsonl").display()
        );
    }
    assert_eq!(report.violations(), 0, "seed {seed}: violations found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_verify_run_under_faults_finds_no_violation() {
    init_tracing();
    let seed = verify_seed();
    let dir = tempfile::tempdir().unwrap();

    phase("workloads and nemesis run, the account settles, the checkers judge");
    let report = runner::run(&options(seed, 8, &dir))
        .await
        .expect("verify run");
    assert!(
        report.operations > 1000,
        "only {} operations recorded",
        report.operations
    );
    assert_clean(&report, seed, dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_regions_under_region_faults_keep_bounded_reads_within_k_and_t() {
    init_tracing();
    let seed = verify_seed();
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(seed, 10, &dir);
    options.regions = 3;

    phase("three regions: workloads, region and node faults, settle, checkers");
    let report = runner::run(&options).await.expect("verify run");
    let figures = &report.staleness;
    for (region, f) in &figures.regions {
        println!("bounded reads served by {region}: {f:?}");
    }
    for f in &report.faults {
        println!("fault: {f:?}");
    }
    println!(
        "epoch changes: {}; writes accounted as lost to failovers: {}",
        report.epoch_changes, report.lost_to_failover
    );
    assert_clean(&report, seed, dir);

    phase("the bound was judged on reads the read regions served");
    assert!(
        report.faults.iter().any(|f| f.fault.is_region_fault()),
        "no region fault was injected"
    );
    assert_eq!(figures.write_region.as_str(), "west");
    let outside = figures.reads_judged_outside_write_region();
    assert!(
        outside >= READ_REGION_READS_MIN,
        "seed {seed}: only {outside} bounded reads judged outside the write region"
    );
    for name in ["east", "north"] {
        let served = figures
            .regions
            .get(&region(name))
            .map_or(0, |f| f.reads_judged);
        assert!(
            served > 0,
            "seed {seed}: {name} served no judged bounded read"
        );
    }
}

/// The failover nemesis: the write region is cut off (and writes fail
/// over when the cut outlasts its lease) among region and node faults,
/// under session consistency, where a failover must neither lose an
/// acknowledged write unaccounted nor let a session read go back. The
/// seed is the first from the drawn one whose schedule opens with a long
/// write region cut, so every run exercises one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_failover_nemesis_finds_no_violation_under_session_consistency() {
    init_tracing();
    let drawn = verify_seed();
    let kinds = Kinds::for_run(true, false);
    let opens_with_a_long_cut = |seed: &u64| {
        matches!(
            nemesis::schedule(*seed, 12, 3, kinds).next(),
            Some((Fault::CutWriteRegion, _, hold)) if hold >= Duration::from_millis(2500)
        )
    };
    let seed = (drawn..).find(opens_with_a_long_cut).expect("a seed");
    println!("seed {seed}: the first at or after {drawn} to open with a long write region cut");
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(seed, 20, &dir);
    options.regions = 3;
    options.failover_faults = true;
    options.default_consistency = Consistency::Session;

    phase("three regions under the failover nemesis, session consistency");
    let report = runner::run(&options).await.expect("verify run");
    println!(
        "faults: {}; epoch changes: {}; writes accounted as lost to failovers: {}",
        report.faults.len(),
        report.epoch_changes,
        report.lost_to_failover
    );
    assert!(
        report
            .faults
            .iter()
            .any(|f| matches!(f.fault, Fault::CutWriteRegion)),
        "the write region was never cut"
    );
    // Session consistency by default: the strong registers and the
    // bounded reads are skipped, every other checker must have judged.
    assert_clean_skipping(&report, seed, dir, &["linearizable", "bounded staleness"]);
}

/// What CI runs of the multi-process mode: `meridian server` processes,
/// killed with SIGKILL, paused with SIGSTOP, steered through
/// `Faults.Apply`, settled and compared through `Admin.Status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minute_of_real_processes_under_faults_finds_no_violation_and_leaves_none_running() {
    init_tracing();
    let seed = verify_seed();
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(seed, 60, &dir);
    options.regions = 3;
    options.processes = Some(std::path::PathBuf::from(env!("CARGO_BIN_EXE_meridian")));
    let data_dir = options.data_dir.clone();

    phase("3 regions x 4 server processes: workloads, nemesis, settle, checkers");
    let report = runner::run(&options).await.expect("verify run");
    for f in &report.faults {
        println!("fault: {f:?}");
    }
    let logs: Vec<_> = std::fs::read_dir(&data_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .collect();
    assert_eq!(logs.len(), 12, "one log per node process");

    phase("every process the run started has exited");
    let needle = data_dir.to_string_lossy().into_owned();
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect();
    assert!(running.is_empty(), "processes still running: {running:?}");
    assert_clean(&report, seed, dir);
}
