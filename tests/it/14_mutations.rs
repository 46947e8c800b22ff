//! The checkers catch real bugs: each test-only mutation (`src/mutation.rs`,
//! compiled in for tests through the `verify-mutations` feature) makes the
//! server break one promise, and `meridian verify --mutation` must report
//! the matching checker VIOLATED within a bounded number of seeds. Each run
//! is the real binary, so an armed switch never leaks into another test.

use crate::procs::meridian;
use crate::support::*;

/// Seeds tried per mutation before the test gives up.
const SEEDS_MAX: u64 = 5;

/// Runs `meridian verify --mutation NAME` on up to `SEEDS_MAX` seeds from a
/// random (printed) base until the checker line starting with `checker`
/// says VIOLATED; answers the seed that caught it.
async fn caught_by(mutation: &str, checker: &str) -> u64 {
    let base: u64 = std::env::var("MERIDIAN_VERIFY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("mutation {mutation}: seeds from {base} (replay: MERIDIAN_VERIFY_SEED={base})");
    let dir = tempfile::tempdir().unwrap();
    for seed in base..base.saturating_add(SEEDS_MAX) {
        phase(&format!("{mutation}, seed {seed}"));
        let history = dir.path().join(format!("{seed}.jsonl"));
        let seed_text = seed.to_string();
        let ran = meridian(&[
            "verify",
            "--in-process",
            "--regions",
            "1",
            "--duration",
            "10s",
            "--seed",
            &seed_text,
            "--mutation",
            mutation,
            "--history",
            history.to_str().unwrap(),
        ])
        .await;
        assert!(
            ran.code == 0 || ran.code == 1,
            "verify did not run to its verdict: {ran:?}"
        );
        assert!(
            ran.stdout.contains(&format!("mutation {mutation} armed")),
            "{ran:?}"
        );
        let verdict = ran
            .stdout
            .lines()
            .find(|l| l.starts_with(checker))
            .unwrap_or_else(|| panic!("no {checker} line in {}", ran.stdout));
        println!("{verdict}");
        if verdict.ends_with("VIOLATED") {
            assert_eq!(ran.code, 1, "violations must fail the run: {ran:?}");
            return seed;
        }
    }
    panic!("{mutation} went unnoticed by {checker} in {SEEDS_MAX} seeds from {base}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strong_read_without_a_read_index_is_caught_by_the_linearizability_checker() {
    caught_by("stale-strong-read", "linearizable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_read_that_ignores_its_token_is_caught_by_the_session_checker() {
    caught_by("session-ignores-token", "session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_write_never_proposed_is_caught_by_the_durability_checker() {
    caught_by("ack-unwritten", "durability").await;
}
