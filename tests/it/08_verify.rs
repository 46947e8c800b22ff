//! The verification harness end to end: a short `verify` run under the
//! nemesis finds no violation, and every checker saw operations.

use std::time::Duration;

use meridian::verify::runner::{self, VerifyOptions, VerifyReport};

use crate::support::*;

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
/// was kept, and nothing was violated.
fn assert_clean(report: &VerifyReport, seed: u64) {
    for check in &report.checks {
        for v in &check.verdict.violations {
            println!("{}: {v}", check.name);
        }
        assert!(check.skipped.is_none(), "{} was skipped", check.name);
        assert!(check.operations > 0, "{} saw no operations", check.name);
    }
    assert!(!report.faults.is_empty(), "the nemesis injected nothing");
    assert!(
        std::fs::metadata(&report.history_path).unwrap().len() > 0,
        "history file kept"
    );
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
    assert_clean(&report, seed);
}
