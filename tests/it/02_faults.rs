//! Faults inside one region: a killed leader, one node cut off, a region
//! split in half. Nothing acknowledged is ever lost.

use std::time::Instant;

use meridian::consistency::Consistency;
use meridian::ids::NodeId;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_elects_a_new_one_and_writes_continue() {
    let mut account = start_region(4).await;
    let old = account.leader().await;
    let survivor = account.others(old)[0];
    let mut client = account.client(survivor).await;
    put_many(&mut client, "c", "before-", 20).await;

    phase("stop the leader; write through a survivor until one is accepted");
    let killed_at = Instant::now();
    account.local.stop_node(old).await;
    let mut attempts = 0;
    loop {
        attempts += 1;
        if put(&mut client, "c", "after-kill", b"x").await.is_ok() {
            break;
        }
        assert!(
            killed_at.elapsed() < DEADLINE,
            "no write accepted within {DEADLINE:?} of the leader's death"
        );
    }
    let window = killed_at.elapsed();
    println!("write unavailability after killing the leader: {window:?} ({attempts} attempts)");

    phase("a new leader among the survivors; earlier writes all present");
    let new = account.leader().await;
    assert_ne!(new, old);
    assert!(holds_all(&account, survivor, "c", "before-", 20).await);

    phase("the old leader rejoins and catches up");
    account.local.restart_node(old).await.expect("restart");
    wait_for("the old leader to hold every write", || {
        let account = &account;
        async move {
            holds_all(account, old, "c", "before-", 20)
                .await
                .then_some(())
        }
    })
    .await;
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_follower_cannot_commit_and_catches_up_by_log() {
    let account = start_region(4).await;
    let leader = account.leader().await;
    let isolated = account.others(leader)[0];
    let mut via_leader = account.client(leader).await;

    phase("isolate one follower; the other three keep committing");
    account.isolate(isolated);
    put_many(&mut via_leader, "c", "k", 30).await;
    let token = put(&mut via_leader, "c", "last", b"x")
        .await
        .expect("put")
        .session_token;

    phase("the isolated node cannot commit a write");
    let mut via_isolated = account.client(isolated).await;
    let err = put(&mut via_isolated, "c", "from-isolated", b"x")
        .await
        .expect_err("isolated write must fail");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");

    phase("a SESSION read with a token it has not reached is refused, not stale");
    let err = via_isolated
        .get(meridian::wire::pb::v1::GetRequest {
            container: "c".into(),
            key: "last".into(),
            consistency: meridian::wire::pb::v1::Consistency::Session as i32,
            session_token: token,
        })
        .await
        .expect_err("session read below token");
    assert_eq!(error_name(&err), "READ_SESSION_NOT_AVAILABLE", "{err}");
    assert!(
        get(&mut via_isolated, "c", "k0", Consistency::Eventual)
            .await
            .unwrap()
            .item
            .is_none()
    );

    phase("heal: the follower catches up by log");
    account.local.faults().heal();
    wait_for("the healed follower to hold every write", || {
        let account = &account;
        async move {
            holds_all(account, isolated, "c", "k", 30)
                .await
                .then_some(())
        }
    })
    .await;
    assert!(
        get(&mut via_leader, "c", "from-isolated", Consistency::Strong)
            .await
            .unwrap()
            .item
            .is_none()
    );
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_behind_the_purged_log_catches_up_by_snapshot() {
    let account = start_with(4, |o| {
        o.raft.snapshot_after_entries = 40;
        o.raft.logs_to_keep_after_snapshot = 10;
    })
    .await;
    let leader = account.leader().await;
    let isolated = account.others(leader)[0];
    account.isolate(isolated);

    phase("write past several snapshots while one follower is cut off");
    let mut c = account.client(leader).await;
    put_many(&mut c, "c", "k", 200).await;
    wait_for("the leader to purge log the follower lacks", || {
        let s = account.status(leader);
        let lagging = account.status(isolated).last_log_index;
        async move { (s.purged_index.unwrap_or(0) > lagging).then_some(()) }
    })
    .await;

    phase("heal: the follower installs a snapshot, then holds everything");
    account.local.faults().heal();
    wait_for("a snapshot on the healed follower", || {
        let s = account.status(isolated);
        async move { (s.snapshot_index.unwrap_or(0) > 0).then_some(()) }
    })
    .await;
    wait_for("the healed follower to hold every write", || {
        let account = &account;
        async move {
            holds_all(account, isolated, "c", "k", 200)
                .await
                .then_some(())
        }
    })
    .await;
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_two_split_acknowledges_nothing_and_loses_nothing() {
    let account = start_region(4).await;
    let leader = account.leader().await;
    let ids = account.local.node_ids();
    let mut c = account.client(leader).await;
    put_many(&mut c, "c", "acked-", 20).await;

    phase("split the region into two halves of two");
    let (half_a, half_b): (Vec<NodeId>, Vec<NodeId>) = {
        let mut others = account.others(leader);
        let a = vec![leader, others.remove(0)];
        (a, others)
    };
    account.local.faults().partition(&half_a, &half_b);

    phase("no side acknowledges a write");
    for node in &ids {
        let mut c = account.client(*node).await;
        let result = put(&mut c, "c", &format!("split-{node}"), b"x").await;
        let err = result.expect_err("a minority must not acknowledge a write");
        assert!(
            matches!(
                err.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ),
            "{node}: {err}"
        );
    }

    phase("heal: every acknowledged write is present and writes resume");
    account.local.faults().heal();
    let leader = account.leader().await;
    let mut c = account.client(leader).await;
    wait_for("writes to resume after healing", || {
        let mut c = c.clone();
        async move { put(&mut c, "c", "healed", b"x").await.ok() }
    })
    .await;
    for node in &ids {
        wait_for(&format!("{node} to hold every acknowledged write"), || {
            let account = &account;
            async move {
                holds_all(account, *node, "c", "acked-", 20)
                    .await
                    .then_some(())
            }
        })
        .await;
    }
    let strong = get(&mut c, "c", "acked-19", Consistency::Strong)
        .await
        .expect("strong read");
    assert!(strong.item.is_some());
    account.local.stop().await;
}
