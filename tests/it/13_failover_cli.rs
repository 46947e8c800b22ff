//! Failover from the command line, as a new user meets it: `meridian dev`
//! in one process, the real `meridian` binary for every command. Cut the
//! write region off and watch `status` and `history` show the failover,
//! heal, pause and resume, switch over by hand (`failover --to`, and
//! `priorities set` with a new first region), and read the refusals.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::procs::*;
use crate::support::*;

/// `meridian ARGS --endpoint E`: every command of the flow goes through one
/// node, as a user's would go through 127.0.0.1:7070.
struct Cli {
    endpoint: String,
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Ran {
        meridian(&[args, &["--endpoint", &self.endpoint]].concat()).await
    }

    /// Runs with stdout closed by its reader before anything is printed.
    async fn reader_gone(&self, args: &[&str]) -> Ran {
        meridian_reader_gone(&[args, &["--endpoint", &self.endpoint]].concat()).await
    }

    /// The command's output; the test fails unless it exited 0.
    async fn ok(&self, args: &[&str]) -> String {
        self.run(args).await.ok().stdout
    }

    /// `--json` output, parsed; `None` while the command fails.
    async fn json(&self, args: &[&str]) -> Option<Value> {
        let ran = self.run(&[args, &["--json"]].concat()).await;
        (ran.code == 0).then(|| serde_json::from_str(&ran.stdout).expect("--json prints JSON"))
    }

    /// Waits until `status --json ARGS` satisfies `check`.
    async fn wait_status(&self, what: &str, args: &[&str], check: impl Fn(&Value) -> bool) {
        let args = [&["status"], args].concat();
        wait_for(what, || async {
            self.json(&args).await.filter(|s| check(s)).map(|_| ())
        })
        .await
    }
}

fn region<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["regions"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no region {name} in {status}"))
}

/// The fields of one history row that say what happened.
fn change(row: &Value) -> Value {
    json!({
        "epoch": row["epoch"],
        "reason": row["reason"],
        "from": row["from_region"],
        "to": row["to_region"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_cuts_the_write_region_off_watches_the_failover_heals_and_switches_over() {
    let dir = tempfile::tempdir().unwrap();
    // One node per region: the flow is the same as with four, on less CPU.
    let dev = DevProc::spawn(dir.path(), &["--replicas", "1"]);
    let cli = Cli {
        endpoint: dev.endpoint("west/n1"),
    };

    phase("status: west writes, failover on, every region online");
    cli.wait_status("the dev account to be up", &[], |s| {
        s["write_region"] == "west"
            && s["failover_enabled"] == true
            && s["regions"]
                .as_array()
                .is_some_and(|rs| rs.len() == 3 && rs.iter().all(|r| r["state"] == "online"))
    })
    .await;
    let text = cli.ok(&["status"]).await;
    assert!(text.contains("\nfailover: on\n"), "{text}");
    let none = cli.ok(&["history"]).await;
    assert!(none.starts_with("no failover or switchover yet"), "{none}");
    wait_for("a write to be accepted", || async {
        let ran = cli.run(&["put", "users", "alice", "hello"]).await;
        (ran.code == 0).then_some(())
    })
    .await;

    phase("a reader that goes away (`| head`) ends a command quietly");
    for args in [
        &["status", "--json"][..],
        &["status"],
        &["history", "--json"],
        &["get", "users", "alice", "--json"],
        &["scan", "users"],
        &["account"],
    ] {
        let ran = cli.reader_gone(args).await;
        assert!(ran.code == 0 && ran.stderr.is_empty(), "{args:?}: {ran:?}");
    }

    phase("fault isolate west: east, next by priority, takes the writes");
    let cut = cli.ok(&["fault", "isolate", "west"]).await;
    assert!(cut.contains("regions cut off now: west\n"), "{cut}");
    assert!(cut.contains("`meridian status --region east`"), "{cut}");
    // Still through west's node: --region east reaches east beyond the cut.
    cli.wait_status("east to be the write region", &["--region", "east"], |s| {
        s["write_region"] == "east" && s["epoch"] == 2 && region(s, "west")["state"] == "offline"
    })
    .await;
    let table = cli.ok(&["history", "--region", "east"]).await;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(rows[0], ["EPOCH", "FORK", "REASON", "FROM", "TO", "TIME"]);
    let (epoch, fork, rest) = (rows[1][0], rows[1][1], &rows[1][2..5]);
    assert_eq!((epoch, rest), ("2", &["failover", "west", "east"][..]));
    assert!(fork.starts_with("e1:"), "the fork is in epoch 1: {table}");
    assert!(humantime::parse_rfc3339(rows[1][5]).is_ok(), "{table}");

    phase("fault heal: west rejoins as a read region and says so itself");
    cli.ok(&["fault", "heal"]).await;
    cli.wait_status("west back online as a read region", &[], |s| {
        s["write_region"] == "east" && region(s, "west")["state"] == "online"
    })
    .await;
    let history = cli.json(&["history"]).await.expect("history --json");
    assert_eq!(
        change(&history["changes"][0]),
        json!({ "epoch": 2, "reason": "failover", "from": "west", "to": "east" })
    );
    let time = history["changes"][0]["time"].as_str().unwrap_or_default();
    assert!(humantime::parse_rfc3339(time).is_ok(), "{history}");

    phase("pause and resume show in status");
    cli.ok(&["pause"]).await;
    cli.wait_status("status to show the pause", &[], |s| s["paused"] == true)
        .await;
    let text = cli.ok(&["status"]).await;
    assert!(
        text.contains("\nfailover: paused (maintenance mode"),
        "{text}"
    );
    cli.ok(&["resume"]).await;
    cli.wait_status("failover on again", &[], |s| s["paused"] == false)
        .await;

    phase("failover --to north: a switchover, forked after epoch 2's write");
    wait_for("a write in epoch 2", || async {
        let ran = cli.run(&["put", "users", "bob", "hi"]).await;
        ran.stdout.contains("glsn: e2:").then_some(())
    })
    .await;
    let moved = cli.ok(&["failover", "--to", "north"]).await;
    assert!(
        moved.starts_with("switchover done: north is the write region\nepoch: 3\nfork GLSN: e2:"),
        "{moved}"
    );
    let history = cli.json(&["history"]).await.expect("history --json");
    assert_eq!(
        change(&history["changes"][1]),
        json!({ "epoch": 3, "reason": "switchover", "from": "east", "to": "north" })
    );

    phase("priorities set with a new first region: a switchover back to west");
    let set = cli.ok(&["priorities", "set", "west,east,north"]).await;
    assert!(
        set.ends_with("switchover: west is the write region now (was north), epoch 4\n"),
        "{set}"
    );

    phase("a scheduled switchover shows in status, can be cancelled, and runs at its time");
    let at = |secs| {
        humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(secs)).to_string()
    };
    let later = cli
        .ok(&["failover", "--to", "north", "--scheduled", &at(3600)])
        .await;
    assert!(
        later.starts_with("switchover to north scheduled at "),
        "{later}"
    );
    cli.wait_status("the scheduled switchover in status", &[], |s| {
        s["scheduled"]
            .as_str()
            .is_some_and(|x| x.starts_with("north at "))
    })
    .await;
    let cancelled = cli.ok(&["failover", "--cancel"]).await;
    assert!(
        cancelled.starts_with("cancelled the switchover to north scheduled at "),
        "{cancelled}"
    );
    cli.wait_status("no scheduled switchover", &[], |s| s["scheduled"].is_null())
        .await;
    let nothing = cli.run(&["failover", "--cancel"]).await;
    assert_eq!(nothing.code, 2);
    assert!(
        nothing.stderr.contains("no switchover is scheduled"),
        "{nothing:?}"
    );
    cli.ok(&["failover", "--to", "north", "--scheduled", &at(3)])
        .await;
    cli.wait_status("the scheduled switchover to north to run", &[], |s| {
        s["write_region"] == "north" && s["epoch"] == 5 && s["scheduled"].is_null()
    })
    .await;
    let history = cli.json(&["history"]).await.expect("history --json");
    assert_eq!(
        change(&history["changes"][3]),
        json!({ "epoch": 5, "reason": "switchover", "from": "west", "to": "north" })
    );
    cli.ok(&["failover", "--to", "west"]).await;

    phase("refusals say why: an unknown region, the write region, an offline one");
    let mars = cli.run(&["failover", "--to", "mars"]).await;
    assert_eq!(mars.code, 2);
    assert!(
        mars.stderr
            .contains("mars is not a region of the account (the regions are "),
        "{mars:?}"
    );
    let same = cli.run(&["failover", "--to", "west"]).await;
    assert!(
        same.stderr.contains("west is already the write region"),
        "{same:?}"
    );
    cli.ok(&["fault", "isolate", "east"]).await;
    cli.wait_status("east to be offline", &[], |s| {
        region(s, "east")["state"] == "offline"
    })
    .await;
    let offline = cli.run(&["failover", "--to", "east"]).await;
    assert_eq!(offline.code, 2);
    assert!(
        offline.stderr.contains("east is offline") && offline.stderr.contains("[REFUSED]"),
        "{offline:?}"
    );
    cli.ok(&["fault", "heal"]).await;

    phase("healed, the three replicas converge: status --digests says so");
    wait_for("status --digests to find the replicas equal", || async {
        let text = cli.ok(&["status", "--digests"]).await;
        text.contains("items: the 3 replicas hold the same")
            .then_some(())
    })
    .await;
    let status = cli
        .json(&["status", "--digests"])
        .await
        .expect("status --digests --json");
    let nodes = status["nodes"].as_array().expect("nodes");
    assert!(
        nodes
            .iter()
            .all(|n| n["items_digest"].is_string() && n["resyncing"] == false),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_server_refuses_fault_injection_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let region = ProcRegion::new(dir.path(), 1);
    let _node = region.spawn(1);
    let cli = Cli {
        endpoint: region.endpoint(1),
    };
    phase("meridian fault against a meridian server node");
    let refused = wait_for("the server to answer", || async {
        let ran = cli.run(&["fault", "isolate", "west"]).await;
        (!ran.stderr.contains("connecting to")).then_some(ran)
    })
    .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    let expected = "FailedPrecondition: fault injection is served by `meridian dev` only";
    assert!(
        refused.stderr.contains(expected) && refused.stderr.contains("[REFUSED]"),
        "{refused:?}"
    );
}
