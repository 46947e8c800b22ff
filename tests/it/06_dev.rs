//! `meridian dev` as a user runs it: Ctrl-C stops it cleanly, and a reused
//! `--data-dir` keeps the data.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use meridian::consistency::Consistency;
use meridian::local::{LocalAccount, LocalOptions};

use crate::support::*;

/// Starts `meridian dev` on free ports and returns it with its first
/// endpoint, read from its banner.
fn spawn_dev(
    data_dir: &std::path::Path,
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["dev", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meridian dev");
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut endpoint = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Bounded: the banner is a handful of lines.
    for _ in 0..50 {
        let Some(Ok(line)) = lines.next() else { break };
        if endpoint.is_none() && line.contains("west/n1") {
            endpoint = line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(str::to_string);
        }
        if line.starts_with("ready") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, endpoint.expect("banner names n1's endpoint"), errors)
}

fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_dev_cleanly_and_a_reused_data_dir_keeps_the_data() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();

    phase("start meridian dev and write through it");
    let (mut child, endpoint, stderr) = spawn_dev(dir.path());
    let mut c = connect(&endpoint).await;
    wait_for("the dev account to accept a write", || {
        let mut c = c.clone();
        async move { put(&mut c, "users", "alice", b"hello").await.ok() }
    })
    .await;
    put_many(&mut c, "users", "k", 50).await;

    phase("Ctrl-C: exit 0, no errors or warnings logged while stopping");
    // Log lines start with an RFC 3339 UTC timestamp in this same format, so
    // comparing strings orders them in time.
    let interrupted_at = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    interrupt(&child);
    let status = wait_for("meridian dev to exit", || {
        let exited = child.try_wait().expect("try_wait");
        async move { exited }
    })
    .await;
    assert!(status.success(), "exit status {status}");
    let logged = stderr.join().unwrap();
    let while_stopping: Vec<&str> = logged
        .lines()
        .filter(|l| *l >= interrupted_at.as_str())
        .collect();
    // The whole account stops at once, so openraft reports peers that have
    // already stopped (unreachable, their raft stopped, or their server
    // closed the connection mid-call) at ERROR; those lines are expected.
    // Anything else is a problem.
    let peer_gone = |l: &&str| {
        l.contains("openraft")
            && (l.contains("Unreachable")
                || l.contains("Stopped")
                || l.contains("raft stopped")
                || l.contains("GoAway")
                || l.contains("connection closed")
                || l.contains("Timeout expired"))
    };
    assert!(
        while_stopping
            .iter()
            .filter(|l| !peer_gone(l))
            .all(|l| !l.contains("ERROR") && !l.contains("WARN")),
        "stopping logged problems:\n{}",
        while_stopping.join("\n")
    );
    let stopped = while_stopping
        .iter()
        .filter(|l| l.contains("node stopped"))
        .count();
    assert_eq!(
        stopped, 12,
        "every node reports a clean stop after {interrupted_at}:\n{logged}"
    );

    phase("start again on the same data directory: the data is there");
    let (mut child, endpoint, _stderr) = spawn_dev(dir.path());
    let mut c = connect(&endpoint).await;
    let got = wait_for("alice after the restart", || {
        let mut c = c.clone();
        async move {
            get(&mut c, "users", "alice", Consistency::Strong)
                .await
                .ok()?
                .item
        }
    })
    .await;
    assert_eq!(got.value, b"hello");
    assert!(holds_all_via(&mut c, "users", "k", 50, Consistency::Strong).await);
    interrupt(&child);
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while child.try_wait().ok().flatten().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = child.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_in_process_account_restarted_on_its_data_dir_keeps_its_data() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let options = LocalOptions::new(dir.path());
    let account = LocalAccount::start(options.clone()).await.expect("start");
    let leader = account
        .wait_for_leader(&west(), DEADLINE)
        .await
        .expect("leader");
    let mut c = connect(&account.endpoint(leader)).await;
    put_many(&mut c, "c", "k", 30).await;
    account.stop().await;

    phase("same directory, new ports: every node comes back with the data");
    let account = LocalAccount::start(options).await.expect("restart");
    let leader = account
        .wait_for_leader(&west(), DEADLINE)
        .await
        .expect("leader");
    let mut c = connect(&account.endpoint(leader)).await;
    assert!(holds_all_via(&mut c, "c", "k", 30, Consistency::Strong).await);
    account.stop().await;
}
