//! Crash points with real processes: arm a named point (`MERIDIAN_CRASH_AT`)
//! in `meridian server` processes, run a write load until a process aborts
//! there, restart every node unarmed, and find every acknowledged write with
//! a strong read through the node that crashed.
//!
//! Each test checks that the process really died at the named point: it
//! ended on SIGABRT and its log carries the crash point's abort line. A
//! crash anywhere else (a panic, an assertion) would fail that check rather
//! than pass as a crash.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian::consistency::Consistency;
use meridian::crash::{ABORT_MESSAGE_PREFIX, CRASH_AFTER_ENV, CRASH_AT_ENV, CrashPoint};
use meridian::ids::{NodeId, RegionId};
use meridian::local::LocalOptions;
use meridian::verify::cluster::Cluster;
use meridian::verify::procs::ProcAccount;
use meridian::verify::runner::{Settled, settle};
use tokio::task::JoinHandle;

use crate::procs::*;
use crate::support::*;

const REPLICAS: usize = 4;
const WRITERS: usize = 4;
/// A cap on each writer, so a point that is never hit ends the load (and
/// the test fails on its deadline) instead of writing forever.
const WRITES_PER_WRITER_MAX: usize = 250;
/// Pause after a failed write before the next, so a writer whose node has
/// died does not spin through its cap while the others still run.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How long the writers get to notice the stop flag.
const WRITER_STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Writes made while one node is down in the snapshot-install test: several
/// snapshot intervals, so the leader's log is purged past that node's.
const WRITES_WHILE_DOWN: usize = 120;
/// Snapshots every few entries, so snapshot building, log purges and
/// snapshot installs all happen within a few hundred writes.
const SMALL_SNAPSHOTS: &str = "snapshot_after_entries = 20\nlogs_to_keep_after_snapshot = 5";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_after_log_append_loses_no_acknowledged_write() {
    // Every node appends (leader and followers); the 150th flushed append
    // lands a few hundred writes into the load on whichever node gets there
    // first (in practice the leader, which appends every batch).
    crash_armed_everywhere(CrashPoint::AfterLogAppend, 150, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_after_apply_batch_loses_no_acknowledged_write() {
    crash_armed_everywhere(CrashPoint::AfterApplyBatch, 150, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_after_snapshot_build_loses_no_acknowledged_write() {
    // A later snapshot, so the crash follows completed ones and lands a
    // hundred or more writes into the load.
    crash_armed_everywhere(CrashPoint::AfterSnapshotBuild, 8, Some(SMALL_SNAPSHOTS)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_mid_log_purge_loses_no_acknowledged_write() {
    // With snapshots every 20 entries each purge is one chunk (far below
    // `PURGE_CHUNK_ENTRIES`), so this crashes after a purge's deletions,
    // before they are flushed; a purge split across chunks needs more than
    // a thousand entries between snapshots, too long for this test.
    crash_armed_everywhere(CrashPoint::MidLogPurge, 8, Some(SMALL_SNAPSHOTS)).await;
}

/// Arms `point` on every node (the leader is not known in advance), crashes
/// the first node to reach hit `after` under load, then kills the rest,
/// restarts all four unarmed and reads every acknowledged write back.
async fn crash_armed_everywhere(point: CrashPoint, after: u64, raft: Option<&str>) {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let region = region(dir.path(), raft);
    let after_text = after.to_string();
    let env = [(CRASH_AT_ENV, point.name()), (CRASH_AFTER_ENV, &after_text)];

    phase(&format!("four processes armed at {point}, hit {after}"));
    let mut procs: Vec<(u64, Proc)> = ids(&region)
        .into_iter()
        .map(|id| (id, region.spawn_with_env(id, &env)))
        .collect();
    wait_for_leader(&region).await;

    phase("write under load until a process aborts");
    let load = Load::start(endpoints(&region, &ids(&region)), "load");
    let crashed = wait_for(&format!("a process to abort at {point}"), || {
        let found: Vec<u64> = procs
            .iter_mut()
            .filter_map(|(id, p)| p.exited().map(|_| *id))
            .collect();
        async move { (!found.is_empty()).then_some(found) }
    })
    .await;
    let first = crashed[0];
    let acked = load.stop().await;
    println!(
        "n{first} aborted at {point}; acknowledged writes: {}",
        acked.len()
    );
    assert!(
        !acked.is_empty(),
        "the crash came before any acknowledged write"
    );
    for (id, p) in &mut procs {
        // Others may have reached the point too before the kill below.
        if p.exited().is_some() || *id == first {
            assert_aborted_at(&region, *id, p, point);
        }
        p.kill9();
    }
    drop(procs);

    restart_and_check(&region, first, &acked).await;
}

// This crash found a real bug: openraft 0.9 purges the log without waiting
// for the snapshot install, so the purge point became durable (by the
// install's own flush) before the snapshot, and the restarted node refused
// to start. `LogStore::purge` now waits until the snapshot file covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_mid_snapshot_install_keeps_the_old_state_and_recovers() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let region = region(dir.path(), Some(SMALL_SNAPSHOTS));
    let point = CrashPoint::MidSnapshotInstall;

    phase("four unarmed processes elect a leader");
    let mut procs: Vec<(u64, Proc)> = ids(&region)
        .into_iter()
        .map(|id| (id, region.spawn(id)))
        .collect();
    let leader = wait_for_leader(&region).await;
    let (behind, _) = *procs
        .iter()
        .find(|(id, _)| *id != leader)
        .expect("a follower");
    let others: Vec<u64> = ids(&region)
        .into_iter()
        .filter(|id| *id != behind)
        .collect();

    phase(&format!(
        "n{behind} is down while the others write past its log"
    ));
    procs
        .iter_mut()
        .filter(|(id, _)| *id == behind)
        .for_each(|(_, p)| p.kill9());
    let mut acked = write_sequentially(&region, others[0], "down", WRITES_WHILE_DOWN).await;

    phase(&format!(
        "n{behind} restarts armed at {point} and needs a snapshot"
    ));
    let load = Load::start(endpoints(&region, &others), "load");
    let env = [(CRASH_AT_ENV, point.name())];
    let mut armed = region.spawn_with_env(behind, &env);
    wait_for(&format!("n{behind} to abort at {point}"), || {
        let exited = armed.exited().is_some();
        async move { exited.then_some(()) }
    })
    .await;
    acked.extend(load.stop().await);
    assert_aborted_at(&region, behind, &mut armed, point);
    drop(armed);
    for (_, p) in &mut procs {
        p.kill9();
    }
    drop(procs);

    restart_and_check(&region, behind, &acked).await;
}

// Crash points of replication between regions: three regions of real
// processes (`verify`'s process account), the armed region's nodes only.

/// East's leader applies shipped entries and aborts before acknowledging
/// them. After east restarts unarmed, the write region's view of east and
/// east's state must converge on exactly the write region's: nothing
/// acknowledged is lost, nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_after_ship_before_ack_loses_nothing_and_the_region_converges() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let point = CrashPoint::AfterShipBeforeAck;
    let options = geo_options(dir.path(), false);
    let (west, east) = (region_ids(&options, 0), region_ids(&options, 1));
    // East's leader acknowledges every 200 ms idle and on every apply
    // under load: the 100th lands well into the load (its first seconds
    // idle account for a few dozen).
    let mut cluster = start_armed(options, &east, point, 100).await;

    phase(&format!(
        "load through west until an east node aborts at {point}"
    ));
    let load = Load::start(cluster_endpoints(&cluster, &west), "ship");
    let crashed = wait_for_abort(&mut cluster, &east, point).await;
    let acked = load.stop().await;
    println!(
        "{crashed} aborted at {point}; acknowledged writes: {}",
        acked.len()
    );
    assert!(
        !acked.is_empty(),
        "the crash came before any acknowledged write"
    );

    restart_unarmed(&mut cluster, &east, point).await;
    let settled = settle(&mut cluster).await.expect("the account settles");
    assert_eq!(settled.write_region, RegionId::new("west"));
    assert_converged(&settled);
    read_back(&cluster, crashed, &acked).await;
    cluster.stop().await;
}

/// East takes over from a cut-off west: its leader commits the new epoch
/// in the meta group and aborts before its replica set begins it. East's
/// next leader must begin the epoch and take writes; west, healed, must
/// re-join with every write it acknowledged before the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_after_epoch_change_the_next_leader_begins_the_epoch() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let point = CrashPoint::AfterEpochChange;
    let options = geo_options(dir.path(), true);
    let (west, east) = (region_ids(&options, 0), region_ids(&options, 1));
    let mut cluster = start_armed(options, &east, point, 1).await;

    phase("writes at west, shipped everywhere");
    let mut acked = Vec::new();
    let mut client = connect(&cluster.endpoint(west[0])).await;
    for i in 0..40 {
        let key = format!("before-{i}");
        put(&mut client, "crash", &key, key.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
        acked.push(key);
    }
    settle(&mut cluster)
        .await
        .expect("the account settles before the cut");

    phase(&format!("cut west off; east's leader aborts at {point}"));
    let all = cluster.node_ids();
    cluster.faults().cut_off(&west, &all);
    cluster.publish_faults().await;
    let crashed = wait_for_abort(&mut cluster, &east, point).await;
    restart_unarmed(&mut cluster, &east, point).await;

    phase("east takes writes in the new epoch");
    let via = cluster.endpoint(east[0]);
    let after = "after-failover".to_string();
    wait_for("a write through east after the failover", || {
        let (via, after) = (via.clone(), after.clone());
        async move {
            let mut client = connect(&via).await;
            put(&mut client, "crash", &after, after.as_bytes())
                .await
                .ok()
        }
    })
    .await;
    acked.push(after);
    let (write_region, epoch) = cluster.write_region().await.expect("a write region");
    assert_eq!(
        write_region,
        RegionId::new("east"),
        "{crashed} aborted, yet the epoch stands"
    );
    assert!(epoch >= 2, "epoch {epoch}");

    phase("heal: west re-joins with everything");
    let settled = settle(&mut cluster)
        .await
        .expect("the account settles after the heal");
    assert_eq!(settled.write_region, RegionId::new("east"));
    assert_converged(&settled);
    read_back(&cluster, west[0], &acked).await;
    cluster.stop().await;
}

/// Three regions of four processes with short leases (failover on or off),
/// session consistency by default so writes do not wait for every region.
fn geo_options(dir: &std::path::Path, failover: bool) -> LocalOptions {
    let mut options = LocalOptions::new(dir);
    options.regions = 3;
    options.replicas = REPLICAS;
    options.default_consistency = Consistency::Session;
    options.leases.ttl_ms = 1500;
    options.leases.renew_ms = 250;
    options.leases.safety_margin_ms = 250;
    options.transport.request_timeout_ms = 4000;
    options.failover.enabled = failover;
    options
}

/// The nodes of region number `r`, as `LocalOptions` numbers them.
fn region_ids(options: &LocalOptions, r: usize) -> Vec<NodeId> {
    let first = r * options.replicas + 1;
    (first..first + options.replicas)
        .map(|i| NodeId(i as u64))
        .collect()
}

async fn start_armed(
    options: LocalOptions,
    armed: &[NodeId],
    point: CrashPoint,
    after: u64,
) -> Cluster {
    let env: BTreeMap<NodeId, Vec<(String, String)>> = armed
        .iter()
        .map(|id| {
            let vars = vec![
                (CRASH_AT_ENV.to_string(), point.name().to_string()),
                (CRASH_AFTER_ENV.to_string(), after.to_string()),
            ];
            (*id, vars)
        })
        .collect();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_meridian"));
    let procs = ProcAccount::start_with_env(options, exe, env)
        .await
        .expect("the processes start");
    let cluster = Cluster::Processes(procs);
    for region in cluster.regions() {
        cluster
            .wait_for_leader(&region, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("{region} elects a leader"));
    }
    cluster
}

fn cluster_endpoints(cluster: &Cluster, via: &[NodeId]) -> Vec<String> {
    via.iter().map(|id| cluster.endpoint(*id)).collect()
}

/// Waits for one of `armed` to exit, and checks it aborted at `point`.
async fn wait_for_abort(cluster: &mut Cluster, armed: &[NodeId], point: CrashPoint) -> NodeId {
    let procs = cluster.processes().expect("a process account");
    let (id, status) = wait_for(&format!("a node to abort at {point}"), || {
        let exited = armed
            .iter()
            .find_map(|id| procs.exited(*id).map(|status| (*id, status)));
        async move { exited }
    })
    .await;
    assert_abort_status(&id.to_string(), status, &procs.log_path(id), point);
    id
}

/// Kills the rest of `armed` (a new leader among them would abort at the
/// point too: any that did is checked), then starts all of them unarmed.
async fn restart_unarmed(cluster: &mut Cluster, armed: &[NodeId], point: CrashPoint) {
    phase("restart the armed region unarmed");
    let procs = cluster.processes().expect("a process account");
    for id in armed {
        if let Some(status) = procs.exited(*id) {
            assert_abort_status(&id.to_string(), status, &procs.log_path(*id), point);
        }
        procs.kill_node(*id).await;
        procs.disarm(*id);
    }
    for id in armed {
        procs.restart_node(*id).await.expect("the node restarts");
    }
}

fn assert_converged(settled: &Settled) {
    let (first, digest) = &settled.digests[0];
    for (replica, other) in &settled.digests {
        assert_eq!(other, digest, "{replica} and {first} hold different items");
    }
}

/// Every key in `acked` reads back through `via` with its value.
async fn read_back(cluster: &Cluster, via: NodeId, acked: &[String]) {
    let mut client = connect(&cluster.endpoint(via)).await;
    for key in acked {
        let item = get(&mut client, "crash", key, Consistency::Eventual)
            .await
            .unwrap_or_else(|e| panic!("reading {key} through {via}: {e}"))
            .item
            .unwrap_or_else(|| panic!("acknowledged write {key} is missing at {via}"));
        assert_eq!(item.value, key.as_bytes());
    }
}

fn region(dir: &std::path::Path, raft: Option<&str>) -> ProcRegion {
    let region = ProcRegion::new(dir, REPLICAS);
    match raft {
        Some(lines) => region.with_raft(lines),
        None => region,
    }
}

fn ids(region: &ProcRegion) -> Vec<u64> {
    region.nodes.iter().map(|(id, _, _)| *id).collect()
}

/// The process ended on SIGABRT, and its log names `point` as the reason.
fn assert_aborted_at(region: &ProcRegion, id: u64, proc: &mut Proc, point: CrashPoint) {
    let status = proc.exited().expect("the process has exited");
    assert_abort_status(&format!("n{id}"), status, &region.log_path(id), point);
}

fn assert_abort_status(
    who: &str,
    status: std::process::ExitStatus,
    log_path: &std::path::Path,
    point: CrashPoint,
) {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        const SIGABRT: i32 = 6;
        assert_eq!(status.signal(), Some(SIGABRT), "{who} ended with {status}");
    }
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let line = format!("{ABORT_MESSAGE_PREFIX} {point} reached");
    assert!(
        log.contains(&line),
        "{who} ended with {status} but its log does not say `{line}`:\n{log}"
    );
}

fn endpoints(region: &ProcRegion, via: &[u64]) -> Vec<String> {
    via.iter().map(|id| region.endpoint(*id)).collect()
}

/// Restarts every node without the crash variables and finds every
/// acknowledged write with a strong read through `via` (the node that
/// crashed, so its own recovered state answers).
async fn restart_and_check(region: &ProcRegion, via: u64, acked: &[String]) {
    phase("restart all four unarmed; every acknowledged write is there");
    let _procs: Vec<Proc> = ids(region).into_iter().map(|id| region.spawn(id)).collect();
    wait_for_leader(region).await;
    let client = connect(&region.endpoint(via)).await;
    for key in acked {
        let item = wait_for(&format!("a strong read of {key} through n{via}"), || {
            let mut c = client.clone();
            async move {
                get(&mut c, "crash", key, Consistency::Strong)
                    .await
                    .ok()
                    .map(|r| r.item)
            }
        })
        .await;
        let item = item.unwrap_or_else(|| panic!("acknowledged write {key} lost in the crash"));
        assert_eq!(item.value, key.as_bytes());
    }
}

/// Writes `count` keys one after another through node `via`; all must be
/// acknowledged (the region has a quorum throughout).
async fn write_sequentially(
    region: &ProcRegion,
    via: u64,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut client = connect(&region.endpoint(via)).await;
    let mut acked = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("{prefix}-{i}");
        put(&mut client, "crash", &key, key.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
        acked.push(key);
    }
    acked
}

/// Writers through the given nodes, each recording the keys whose write was
/// acknowledged; a failed write is not recorded (its outcome may be
/// unknown) and the writer moves on to its next key.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    writers: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(endpoints: Vec<String>, prefix: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let writers = (0..WRITERS)
            .map(|w| {
                let endpoint = endpoints[w % endpoints.len()].clone();
                let (stop, acked) = (stop.clone(), acked.clone());
                let prefix = format!("{prefix}-w{w}");
                tokio::spawn(async move {
                    let mut client = connect(&endpoint).await;
                    for i in 0..WRITES_PER_WRITER_MAX {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("{prefix}-{i}");
                        match put(&mut client, "crash", &key, key.as_bytes()).await {
                            Ok(_) => acked.lock().unwrap().push(key),
                            Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acked,
            writers,
        }
    }

    /// Stops the writers and returns the acknowledged keys. A writer still
    /// waiting on a reply when the deadline passes is abandoned: its write
    /// was never acknowledged, so it is not checked.
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for writer in self.writers {
            let abort = writer.abort_handle();
            if tokio::time::timeout(WRITER_STOP_DEADLINE, writer)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.acked.lock().unwrap().clone()
    }
}
