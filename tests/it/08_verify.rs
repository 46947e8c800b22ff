//! The verification harness end to end: a short `verify` run under the
//! nemesis finds no violation, and every checker saw operations.

use std::time::Duration;

use meridian::verify::runner::{self, VerifyOptions};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_verify_run_under_faults_finds_no_violation() {
    init_tracing();
    let seed: u64 = std::env::var("MERIDIAN_VERIFY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("verify seed {seed} (replay: MERIDIAN_VERIFY_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let options = VerifyOptions {
        seed,
        duration: Duration::from_secs(8),
        replicas: 4,
        nemesis: true,
        data_dir: dir.path().join("data"),
        history_path: dir.path().join("history.jsonl"),
    };

    phase("workloads and nemesis run, the account settles, the checkers judge");
    let report = runner::run(&options).await.expect("verify run");
    for check in &report.checks {
        for v in &check.verdict.violations {
            println!("{}: {v}", check.name);
        }
        assert!(check.operations > 0, "{} saw no operations", check.name);
    }
    assert!(
        report.operations > 1000,
        "only {} operations recorded",
        report.operations
    );
    assert!(!report.faults.is_empty(), "the nemesis injected nothing");
    assert!(
        std::fs::metadata(&report.history_path).unwrap().len() > 0,
        "history file kept"
    );
    assert_eq!(report.violations(), 0, "seed {seed}: violations found");
}
