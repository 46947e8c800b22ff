//! Failover (issue 4): three regions of four nodes in one process; the
//! write region is killed, cut off or switched over while clients write,
//! and every acknowledged write is accounted for from the clients' own
//! records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use meridian::config::LeaseConfig;
use meridian::consistency::Consistency;
use meridian::glsn::Glsn;
use meridian::ids::NodeId;
use meridian::wire::pb::v1 as pb;
use meridian::wire::pb::v1::admin_client::AdminClient;
use tonic::transport::Channel;

use crate::procs::{meridian, meridian_reader_gone};
use crate::support::*;

/// Three regions of four with failover on and the default leases (the
/// failover targets are for them).
async fn start_failover(tweak: impl FnOnce(&mut meridian::local::LocalOptions)) -> TestAccount {
    start_regions(3, 4, |o| {
        o.failover.enabled = true;
        o.leases = LeaseConfig::default();
        tweak(o);
    })
    .await
}

/// One write as the test's client saw it.
#[derive(Debug, Clone)]
struct Attempt {
    key: String,
    invoked: Instant,
    answered: Instant,
    /// The GLSN the write got, or the error's code and message.
    result: Result<Glsn, (tonic::Code, String)>,
}

impl Attempt {
    fn acknowledged(&self) -> Option<Glsn> {
        self.result.as_ref().ok().copied()
    }
}

/// Writes `{prefix}{i}` (a fresh key per attempt, never retried) through
/// `node` until `stop` is set, at the account default; with `no_forward`,
/// only that node's region can accept them.
fn spawn_writer(
    account: &TestAccount,
    node: NodeId,
    prefix: &str,
    no_forward: bool,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Attempt>> {
    spawn_writer_at(account, node, prefix, no_forward, &[], stop)
}

/// As `spawn_writer`, cycling through `levels` (none: the default).
fn spawn_writer_at(
    account: &TestAccount,
    node: NodeId,
    prefix: &str,
    no_forward: bool,
    levels: &[Consistency],
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Attempt>> {
    let levels = levels.to_vec();
    let endpoint = account.local.endpoint(node);
    let prefix = prefix.to_string();
    tokio::spawn(async move {
        let mut client = connect(&endpoint).await;
        let mut attempts = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let key = format!("{prefix}{i}");
            let consistency = match levels.len() {
                0 => pb::Consistency::Unspecified as i32,
                n => pb::Consistency::from(levels[i % n]) as i32,
            };
            let invoked = Instant::now();
            let result = client
                .put(pb::PutRequest {
                    container: "f".into(),
                    key: key.clone(),
                    value: b"v".to_vec(),
                    no_forward,
                    consistency,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().glsn.map(Glsn::from).expect("a write's GLSN"))
                .map_err(|e| (e.code(), e.message().to_string()));
            let failed = result.is_err();
            attempts.push(Attempt {
                key,
                invoked,
                answered: Instant::now(),
                result,
            });
            if failed {
                // Refused or unavailable: do not spin.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        attempts
    })
}

async fn admin(account: &TestAccount, node: NodeId) -> AdminClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(account.local.endpoint(node))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(20))
        .connect_lazy();
    AdminClient::new(channel)
}

async fn status_via(account: &TestAccount, node: NodeId) -> Option<pb::StatusResponse> {
    admin(account, node)
        .await
        .status(pb::StatusRequest::default())
        .await
        .ok()
        .map(|r| r.into_inner())
}

async fn history_via(account: &TestAccount, node: NodeId) -> Vec<pb::EpochChange> {
    admin(account, node)
        .await
        .history(pb::HistoryRequest {})
        .await
        .expect("history")
        .into_inner()
        .changes
}

/// Waits until `node` reports `region` as the write region.
async fn wait_write_region(account: &TestAccount, node: NodeId, region: &str) {
    wait_for(&format!("{region} to be the write region"), || async {
        status_via(account, node)
            .await
            .filter(|s| s.write_region == region)
            .map(|_| ())
    })
    .await
}

/// Every acknowledged write of `attempts` is readable through `node`.
async fn assert_none_lost(account: &TestAccount, node: NodeId, attempts: &[Attempt]) -> usize {
    let mut client = account.client(node).await;
    let mut acknowledged = 0;
    for a in attempts.iter().filter(|a| a.acknowledged().is_some()) {
        acknowledged += 1;
        let read = get(&mut client, "f", &a.key, Consistency::Eventual)
            .await
            .expect("read back");
        assert!(read.item.is_some(), "acknowledged write {} was lost", a.key);
    }
    acknowledged
}

/// The recovery time: from the first failed write to the first accepted
/// write after it.
fn rto(attempts: &[Attempt]) -> Option<Duration> {
    let first_failed = attempts.iter().position(|a| a.result.is_err())?;
    let recovered = attempts[first_failed..].iter().find(|a| a.result.is_ok())?;
    Some(recovered.answered - attempts[first_failed].invoked)
}

/// Writes `count` keys through `node` and waits for each: with a writer
/// running beside it, this lets the writer make progress first.
async fn warm_up(account: &TestAccount, node: NodeId, count: usize) {
    let mut client = account.client(node).await;
    put_many(&mut client, "f", "warm", count).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_write_region_moves_writes_by_priority_and_strong_loses_nothing() {
    let mut account = start_failover(|o| o.default_consistency = Consistency::Strong).await;
    let east = account.first_of(&region("east"));
    warm_up(&account, east, 5).await;
    phase("write through east under load, then kill every node of west");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&account, east, "k", false, stop.clone());
    warm_up(&account, east, 10).await;
    let killed_at = Instant::now();
    account.local.kill_region(&west()).await;
    phase("east, next by priority, takes the writes");
    wait_write_region(&account, east, "east").await;
    wait_for("a write accepted after the failover", || async {
        let mut c = account.client(east).await;
        put(&mut c, "f", "after", b"v").await.ok().map(|_| ())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let attempts = writer.await.unwrap();
    let rto = rto(&attempts).expect("the writer saw the outage and the recovery");
    let history = history_via(&account, east).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (
            history[0].reason.as_str(),
            history[0].from_region.as_str(),
            history[0].to_region.as_str(),
            history[0].epoch
        ),
        ("failover", "west", "east", 2)
    );
    phase("no acknowledged strong write was lost");
    let acknowledged = assert_none_lost(&account, east, &attempts).await;
    let new_epoch: Vec<Glsn> = attempts
        .iter()
        .filter_map(Attempt::acknowledged)
        .filter(|g| g.epoch == 2)
        .collect();
    assert!(!new_epoch.is_empty(), "the writer got writes into epoch 2");
    let fork: Glsn = history[0].fork.unwrap().into();
    assert!(
        new_epoch.iter().all(|g| g.lsn > fork.lsn),
        "epoch 2 continues after the fork {fork}"
    );
    eprintln!(
        "write region killed: RTO {rto:?} (first failed write to first accepted), {:?} from the kill to now; {acknowledged} acknowledged strong writes, 0 lost; fork {fork}",
        killed_at.elapsed()
    );
    assert!(rto < Duration::from_secs(30), "RTO {rto:?}");
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_write_region_stops_before_the_next_one_starts() {
    let account = start_failover(|o| {
        o.default_consistency = Consistency::Session;
    })
    .await;
    let west_node = account.first_of(&west());
    let east = account.first_of(&region("east"));
    warm_up(&account, west_node, 5).await;
    phase("writers at west and at east, neither forwarding; then cut west off");
    let stop = Arc::new(AtomicBool::new(false));
    let at_west = spawn_writer(&account, west_node, "w", true, stop.clone());
    let at_east = spawn_writer(&account, east, "e", true, stop.clone());
    warm_up(&account, west_node, 5).await;
    account.local.cut_region(&west());
    wait_write_region(&account, east, "east").await;
    wait_for("a write accepted in east", || async {
        let mut c = account.client(east).await;
        put(&mut c, "f", "after", b"v").await.ok().map(|_| ())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let west_attempts = at_west.await.unwrap();
    let east_attempts = at_east.await.unwrap();
    phase("west's last accepted write precedes east's first; one region per epoch");
    let last_west = west_attempts
        .iter()
        .filter(|a| a.acknowledged().is_some())
        .max_by_key(|a| a.answered)
        .expect("west accepted writes");
    let first_east = east_attempts
        .iter()
        .filter(|a| a.acknowledged().is_some())
        .min_by_key(|a| a.invoked)
        .expect("east accepted writes");
    assert!(
        last_west.answered < first_east.invoked,
        "west acknowledged {} at {:?}, after east's first write was sent at {:?}",
        last_west.key,
        last_west.answered,
        first_east.invoked
    );
    let history = history_via(&account, east).await;
    assert_eq!(history.len(), 1, "{history:?}");
    let epoch = history[0].epoch;
    assert!(
        west_attempts
            .iter()
            .filter_map(Attempt::acknowledged)
            .all(|g| g.epoch < epoch)
    );
    assert!(
        east_attempts
            .iter()
            .filter_map(Attempt::acknowledged)
            .all(|g| g.epoch == epoch)
    );
    eprintln!(
        "west stopped {:?} before east's first write was sent",
        first_east.invoked - last_west.answered
    );
    account.local.faults().heal();
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_skips_a_lagging_region_and_says_why_when_none_qualifies() {
    let mut account = start_failover(|o| {
        o.default_consistency = Consistency::Session;
        o.failover.max_lag_on_failover = 20;
    })
    .await;
    let west_nodes = account.local.region_nodes(&west());
    let east_nodes = account.local.region_nodes(&region("east"));
    let north = account.first_of(&region("north"));
    let mut writer = account.client(west_nodes[0]).await;
    put_many(&mut writer, "f", "warm", 5).await;
    phase("east stops receiving the geo log and lags");
    account
        .local
        .faults()
        .stall_streams(&west_nodes, &east_nodes);
    put_many(&mut writer, "f", "lag", 60).await;
    // North's lease renewal reports what it applied: wait for the meta
    // group to see north caught up and east behind.
    wait_for("north caught up", || async {
        let s = status_via(&account, north).await?;
        let north_row = s.regions.iter().find(|r| r.name == "north")?;
        (north_row.lag_ops == Some(0)).then_some(())
    })
    .await;
    phase("west dies: north, second in line after the lagging east, takes over");
    account.local.kill_region(&west()).await;
    wait_write_region(&account, north, "north").await;
    let history = history_via(&account, north).await;
    assert_eq!(history.last().unwrap().to_region, "north", "{history:?}");
    account.local.faults().heal();
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_every_candidate_lagging_no_failover_happens_and_status_says_why() {
    let mut account = start_failover(|o| {
        o.default_consistency = Consistency::Session;
        o.failover.max_lag_on_failover = 20;
    })
    .await;
    let west_nodes = account.local.region_nodes(&west());
    let others: Vec<NodeId> = ["east", "north"]
        .iter()
        .flat_map(|r| account.local.region_nodes(&region(r)))
        .collect();
    let east = account.first_of(&region("east"));
    let mut writer = account.client(west_nodes[0]).await;
    put_many(&mut writer, "f", "warm", 5).await;
    phase("neither read region receives the geo log; both lag");
    account.local.faults().stall_streams(&west_nodes, &others);
    put_many(&mut writer, "f", "lag", 60).await;
    // West's own renewals carry its applied GLSN past the others'.
    wait_for("the meta group to see west 60 writes ahead", || async {
        let s = status_via(&account, east).await?;
        let west_row = s.regions.iter().find(|r| r.name == "west")?;
        let east_row = s.regions.iter().find(|r| r.name == "east")?;
        let (w, e) = (west_row.applied_glsn?, east_row.applied_glsn?);
        (w.lsn >= e.lsn + 60).then_some(())
    })
    .await;
    account.local.kill_region(&west()).await;
    phase("no failover; status names both regions and their lag");
    let blocked = wait_for("status to say why there is no failover", || async {
        status_via(&account, east).await?.failover_blocked
    })
    .await;
    assert!(
        blocked.contains("east lags") && blocked.contains("north lags"),
        "{blocked}"
    );
    let status = status_via(&account, east).await.unwrap();
    assert_eq!(status.write_region, "west");
    assert_eq!(status.epoch, 1);
    assert!(history_via(&account, east).await.is_empty());
    account.local.faults().heal();
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switchover_under_load_loses_nothing_at_any_level_and_pause_holds_failover() {
    let mut account = start_failover(|o| {
        o.default_consistency = Consistency::Strong;
    })
    .await;
    let east = account.first_of(&region("east"));
    let north = account.first_of(&region("north"));
    warm_up(&account, east, 5).await;
    phase("switch over to east while a client writes through north");
    let stop = Arc::new(AtomicBool::new(false));
    let levels = [
        Consistency::Strong,
        Consistency::BoundedStaleness,
        Consistency::Session,
        Consistency::ConsistentPrefix,
        Consistency::Eventual,
    ];
    let writer = spawn_writer_at(&account, north, "s", false, &levels, stop.clone());
    warm_up(&account, north, 5).await;
    let started = Instant::now();
    let change = admin(&account, north)
        .await
        .failover(pb::FailoverRequest {
            to: "east".into(),
            scheduled_at_ms: None,
            cancel_scheduled: false,
        })
        .await
        .expect("switchover")
        .into_inner();
    let took = started.elapsed();
    assert_eq!(
        (change.write_region.as_str(), change.epoch),
        ("east", Some(2))
    );
    warm_up(&account, north, 5).await;
    stop.store(true, Ordering::Relaxed);
    let attempts = writer.await.unwrap();
    let failed: Vec<&Attempt> = attempts.iter().filter(|a| a.result.is_err()).collect();
    let window = failed
        .first()
        .zip(failed.last())
        .map(|(first, last)| last.answered - first.invoked);
    let acknowledged = assert_none_lost(&account, east, &attempts).await;
    eprintln!(
        "switchover took {took:?}; {} of {} writes failed, over {window:?}; {acknowledged} acknowledged, 0 lost",
        failed.len(),
        attempts.len()
    );
    for a in &failed {
        assert_eq!(
            a.result.as_ref().unwrap_err().0,
            tonic::Code::Unavailable,
            "{a:?}"
        );
    }
    phase("a switchover to an offline or unknown region is refused");
    let mut admin_east = admin(&account, east).await;
    let past = admin_east
        .failover(pb::FailoverRequest {
            to: "north".into(),
            scheduled_at_ms: Some(1),
            cancel_scheduled: false,
        })
        .await
        .unwrap_err();
    assert_eq!(past.code(), tonic::Code::InvalidArgument, "{past}");
    assert!(past.message().contains("not in the future"), "{past}");
    let meta = account
        .local
        .node(east)
        .expect("east runs")
        .geo()
        .meta_state();
    assert_eq!(
        (
            meta.write_region.as_ref().map(|r| r.as_str()),
            &meta.scheduled
        ),
        (Some("east"), &None),
        "a switchover scheduled in the past changes nothing"
    );
    let unknown = admin_east
        .failover(pb::FailoverRequest {
            to: "mars".into(),
            scheduled_at_ms: None,
            cancel_scheduled: false,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument, "{unknown}");
    let same = admin_east
        .failover(pb::FailoverRequest {
            to: "east".into(),
            scheduled_at_ms: None,
            cancel_scheduled: false,
        })
        .await
        .unwrap_err();
    assert!(
        same.message().contains("already the write region"),
        "{same}"
    );
    phase("paused: the write region dies and nothing happens");
    admin_east.pause(pb::PauseRequest {}).await.expect("pause");
    wait_for("status to show the pause", || async {
        status_via(&account, north)
            .await
            .filter(|s| s.paused)
            .map(|_| ())
    })
    .await;
    account.local.kill_region(&region("east")).await;
    let blocked = wait_for("status to say failover is paused", || async {
        status_via(&account, north).await?.failover_blocked
    })
    .await;
    assert!(blocked.contains("paused"), "{blocked}");
    let status = status_via(&account, north).await.unwrap();
    assert_eq!((status.write_region.as_str(), status.epoch), ("east", 2));
    phase("resumed: failover follows, to west (first by priority)");
    admin(&account, north)
        .await
        .resume(pb::ResumeRequest {})
        .await
        .expect("resume");
    wait_write_region(&account, north, "west").await;
    let history = history_via(&account, north).await;
    let kinds: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|c| {
            (
                c.reason.as_str(),
                c.from_region.as_str(),
                c.to_region.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("switchover", "west", "east"), ("failover", "east", "west")]
    );
    account.local.stop().await;
}

/// The whole conflict feed as `node` serves it.
async fn read_feed(account: &TestAccount, node: NodeId) -> Vec<pb::ConflictEntry> {
    let channel = tonic::transport::Endpoint::from_shared(account.local.endpoint(node))
        .expect("endpoint")
        .connect_lazy();
    let mut client = meridian::wire::pb::v1::conflicts_client::ConflictsClient::new(channel);
    let mut stream = client
        .read_feed(pb::ReadFeedRequest::default())
        .await
        .expect("read feed")
        .into_inner();
    let mut entries = Vec::new();
    while let Some(message) = stream.message().await.expect("feed message") {
        entries.push(message.entry.expect("an entry"));
    }
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejoining_write_region_publishes_its_lost_writes_once_and_converges() {
    let account = start_failover(|o| o.default_consistency = Consistency::Session).await;
    let west_node = account.first_of(&west());
    let east = account.first_of(&region("east"));
    let north = account.first_of(&region("north"));
    warm_up(&account, west_node, 5).await;
    phase("cut west off while a client keeps writing to it");
    let stop = Arc::new(AtomicBool::new(false));
    let at_west = spawn_writer(&account, west_node, "lost", true, stop.clone());
    warm_up(&account, west_node, 3).await;
    account.local.cut_region(&west());
    wait_write_region(&account, east, "east").await;
    stop.store(true, Ordering::Relaxed);
    let attempts = at_west.await.unwrap();
    let history = history_via(&account, east).await;
    let fork: Glsn = history[0].fork.unwrap().into();
    let lost: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.acknowledged().is_some_and(|g| g.lsn > fork.lsn))
        .collect();
    assert!(
        !lost.is_empty(),
        "west acknowledged no write after the cut (fork {fork}); the test proves nothing"
    );
    phase("a session that saw a lost write gets SESSION_LOST, not stale data");
    let token = meridian::glsn::SessionToken(lost[0].acknowledged().unwrap()).to_string();
    let mut at_east = account.client(east).await;
    let refused = get_with_token(
        &mut at_east,
        "f",
        &lost[0].key,
        Consistency::Session,
        &token,
    )
    .await
    .unwrap_err();
    assert_eq!(error_name(&refused), "SESSION_LOST", "{refused}");
    // A write would hand the session a token of epoch 2 that covers the
    // lost write: refused too, in the write region and through a read
    // region that forwards it.
    for node in [east, north] {
        let mut at = account.client(node).await;
        let carried = put_with_token(&mut at, "f", "carried", Consistency::Session, &token)
            .await
            .unwrap_err();
        assert_eq!(
            error_name(&carried),
            "SESSION_LOST",
            "via {node}: {carried}"
        );
    }
    put_many(&mut at_east, "f", "new", 5).await;
    phase("healed, west publishes its lost writes and re-syncs");
    account.local.faults().heal();
    wait_for(
        "every node of every region to hold the same items",
        || async {
            let digests: Vec<String> = account
                .local
                .running()
                .map(|n| n.replica().state().items_digest().unwrap())
                .collect();
            (digests.windows(2).all(|w| w[0] == w[1])
                && account.local.running().all(|n| {
                    let a = n.replica().applied();
                    !a.resyncing && a.glsn.epoch == 2
                }))
            .then_some(())
        },
    )
    .await;
    let feed = wait_for("the lost writes in the conflict feed at north", || async {
        let feed = read_feed(&account, north).await;
        lost.iter()
            .all(|a| feed.iter().any(|e| e.key == a.key))
            .then_some(feed)
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for entry in &feed {
        let lost_glsn: Glsn = entry.lost_glsn.unwrap().into();
        assert_eq!(entry.kind, pb::ConflictKind::UnreplicatedWrite as i32);
        assert!(
            lost_glsn.epoch == 1 && lost_glsn.lsn > fork.lsn,
            "{entry:?}"
        );
        assert!(seen.insert(lost_glsn), "{lost_glsn} recorded twice");
        assert_eq!((entry.region.as_str(), entry.lost_in_epoch), ("west", 2));
    }
    // Acknowledged lost writes are not in the items.
    let mut at_west = account.client(west_node).await;
    for a in &lost {
        let read = get(&mut at_west, "f", &a.key, Consistency::Eventual).await;
        assert!(
            read.is_ok_and(|r| r.item.is_none()),
            "{} survived the fork",
            a.key
        );
    }
    eprintln!(
        "{} acknowledged writes lost past the fork {fork}; the feed holds {} entries, each once",
        lost.len(),
        feed.len()
    );
    phase("`meridian conflicts` prints the same feed, and resumes from a continuation");
    let north_endpoint = account.local.endpoint(north);
    let lines = |stdout: &str| -> Vec<serde_json::Value> {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    };
    let printed = lines(
        &meridian(&["conflicts", "--json", "--endpoint", &north_endpoint])
            .await
            .ok()
            .stdout,
    );
    let ids = |entries: &[serde_json::Value]| -> Vec<u64> {
        entries.iter().map(|e| e["id"].as_u64().unwrap()).collect()
    };
    assert_eq!(
        ids(&printed),
        feed.iter().map(|e| e.id).collect::<Vec<_>>(),
        "{printed:?}"
    );
    assert!(
        printed
            .iter()
            .all(|e| e["kind"] == "UNREPLICATED_WRITE" && e["region"] == "west"),
        "{printed:?}"
    );
    let continuation = printed[0]["continuation"].as_str().unwrap();
    let resumed = lines(
        &meridian(&[
            "conflicts",
            "--json",
            "--from",
            continuation,
            "--endpoint",
            &north_endpoint,
        ])
        .await
        .ok()
        .stdout,
    );
    assert_eq!(ids(&resumed), ids(&printed)[1..].to_vec());
    let text = meridian(&["conflicts", "--endpoint", &north_endpoint])
        .await
        .ok()
        .stdout;
    assert!(
        text.starts_with("ID\tKIND\t") && text.contains("\tUNREPLICATED_WRITE\t"),
        "{text}"
    );

    phase("`meridian conflicts --follow` whose reader went away (`| head`) ends quietly");
    for json in [true, false] {
        let args = ["conflicts", "--follow", "--endpoint", &north_endpoint];
        let args = [&args[..], if json { &["--json"][..] } else { &[] }].concat();
        let ran = meridian_reader_gone(&args).await;
        assert!(ran.code == 0 && ran.stderr.is_empty(), "{args:?}: {ran:?}");
    }

    phase("deleting an entry (`meridian conflicts delete`) removes it everywhere");
    let west_endpoint = account.local.endpoint(west_node);
    let id = feed[0].id.to_string();
    let deleted = meridian(&["conflicts", "delete", &id, "--endpoint", &west_endpoint])
        .await
        .ok()
        .stdout;
    assert!(
        deleted.starts_with(&format!("deleted conflict {id}")),
        "{deleted}"
    );
    let missing = meridian(&["conflicts", "delete", &id, "--endpoint", &west_endpoint]).await;
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("NotFound"), "{missing:?}");
    wait_for("the entry gone at north", || async {
        let now = read_feed(&account, north).await;
        (now.len() == feed.len() - 1 && now.iter().all(|e| e.id != feed[0].id)).then_some(())
    })
    .await;
    account.local.stop().await;
}

/// Stops the meta voters of east and north: the meta group loses its
/// majority for every region, while every region keeps three of its four
/// nodes. Answers when the stop began.
async fn stop_meta_majority(account: &mut TestAccount) -> Instant {
    let voters: Vec<NodeId> = ["east", "north"]
        .iter()
        .map(|r| account.first_of(&region(r)))
        .collect();
    assert!(
        voters
            .iter()
            .all(|v| account.local.account().meta_voters().contains(v))
    );
    let stopped_at = Instant::now();
    for v in voters {
        account.local.stop_node(v).await;
    }
    stopped_at
}

/// Waits until `west_node` refuses a write, then stops the writer and
/// answers its attempts.
async fn stop_when_west_refuses(
    account: &TestAccount,
    west_node: NodeId,
    stop: Arc<AtomicBool>,
    writer: tokio::task::JoinHandle<Vec<Attempt>>,
) -> Vec<Attempt> {
    wait_for("west to refuse a write", || async {
        let mut c = account.client(west_node).await;
        put(&mut c, "f", "refused", b"v").await.err().map(|_| ())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap()
}

/// The acknowledged attempts sent after `after`.
fn acknowledged_after(attempts: &[Attempt], after: Instant) -> Vec<&Attempt> {
    attempts
        .iter()
        .filter(|a| a.acknowledged().is_some() && a.invoked > after)
        .collect()
}

/// West's writes after the meta group lost its majority, with failsafe
/// mode as given. Writes go straight to a node of west, never forwarded.
async fn writes_without_the_meta_group(failsafe: bool) {
    let mut account = start_failover(|o| {
        o.default_consistency = Consistency::Session;
        o.failover.failsafe = failsafe;
    })
    .await;
    let ttl = Duration::from_millis(LeaseConfig::default().ttl_ms);
    let west_node = account.first_of(&west());
    warm_up(&account, west_node, 5).await;
    phase("stop two of the three meta voters while a client writes to west");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&account, west_node, "m", true, stop.clone());
    warm_up(&account, west_node, 3).await;
    let meta_lost = stop_meta_majority(&mut account).await;
    if failsafe {
        phase("failsafe: every region confirms west, which keeps writing past the lease TTL");
        wait_for("west to hold a failsafe lease", || async {
            let status = status_via(&account, west_node).await?;
            status
                .regions
                .iter()
                .any(|r| r.name == "west" && r.lease_failsafe)
                .then_some(())
        })
        .await;
        let well_past_ttl = meta_lost + ttl * 2;
        wait_for(
            "a write sent at least two TTLs after the loss, accepted",
            || async {
                let mut c = account.client(west_node).await;
                (Instant::now() > well_past_ttl).then_some(())?;
                put(&mut c, "f", "failsafe", b"v").await.ok().map(|_| ())
            },
        )
        .await;
        phase("cut north off: west can no longer be confirmed and stops within a TTL");
        let cut_at = Instant::now();
        account.local.cut_region(&region("north"));
        let attempts = stop_when_west_refuses(&account, west_node, stop, writer).await;
        let late = acknowledged_after(&attempts, cut_at + ttl);
        assert!(
            late.is_empty(),
            "west acknowledged writes sent more than a TTL after north stopped confirming: {late:?}"
        );
        let past_meta = acknowledged_after(&attempts, meta_lost + ttl).len();
        assert!(past_meta > 0, "no write acknowledged on failsafe leases");
        eprintln!(
            "failsafe: west acknowledged {past_meta} writes sent later than a TTL after the meta group lost its majority"
        );
    } else {
        phase("no failsafe: west stops taking writes within a lease TTL");
        let attempts = stop_when_west_refuses(&account, west_node, stop, writer).await;
        let late = acknowledged_after(&attempts, meta_lost + ttl);
        assert!(
            late.is_empty(),
            "west acknowledged writes sent more than a TTL after the meta group was lost: {late:?}"
        );
        phase("reads below bounded staleness need no lease, so they go on in every region");
        let acknowledged = attempts
            .iter()
            .rev()
            .find(|a| a.acknowledged().is_some())
            .expect("west acknowledged writes before the loss");
        for r in ["west", "north"] {
            let node = account.local.region_nodes(&region(r))[1];
            let c = account.client(node).await;
            wait_for(&format!("an eventual read in {r}"), || async {
                get(
                    &mut c.clone(),
                    "f",
                    &acknowledged.key,
                    Consistency::Eventual,
                )
                .await
                .ok()
                .filter(|read| read.item.is_some())
            })
            .await;
        }
    }
    let status = status_via(&account, west_node)
        .await
        .expect("west answers status");
    assert_eq!(status.epoch, 1, "no failover without a meta group");
    account.local.faults().heal();
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_failsafe_a_meta_group_loss_stops_writes_within_a_ttl() {
    writes_without_the_meta_group(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failsafe_keeps_writes_while_every_region_confirms_and_stops_them_when_one_cannot() {
    writes_without_the_meta_group(true).await;
}
