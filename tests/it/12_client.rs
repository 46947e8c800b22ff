//! The routed client (issue 4, item 7) against three regions of four
//! nodes with failover on: it writes through a read region's endpoint,
//! reads in its preferred region and moves on when that region is cut off
//! or its node stops, keeps read-your-writes across regions, reports a
//! write whose outcome is unknown as such instead of retrying it, and
//! carries on across a failover, where a session whose write the failover
//! lost is told so.

use std::time::{Duration, Instant};

use meridian::client::retry::DEADLINE_DEFAULT;
use meridian::client::{Client, ClientError, ClientOptions, ReadOptions, WriteOptions};
use meridian::config::LeaseConfig;
use meridian::consistency::Consistency;
use meridian::glsn::SessionToken;
use meridian::ids::{NodeId, ReplicaId};

use crate::procs::cli;
use crate::support::*;

fn served(s: &Option<ReplicaId>) -> (String, NodeId) {
    let s = s.as_ref().expect("served_by");
    (s.region.to_string(), s.node)
}

fn routed(endpoint: String, preferred: &[&str], deadline: Duration) -> ClientOptions {
    ClientOptions {
        endpoints: vec![endpoint],
        preferred_regions: preferred.iter().map(|r| r.to_string()).collect(),
        deadline,
    }
}

async fn value_of(client: &Client, key: &str, opts: &ReadOptions) -> (Vec<u8>, String, NodeId) {
    let read = client
        .get("c", key, opts)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"));
    let (region, node) = served(&read.served_by);
    (read.item.expect("found").value, region, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routed_client_survives_cuts_stops_and_failover_and_reports_unknown_writes() {
    // The default leases, as the failover tests use: shorter ones can
    // lapse on a loaded machine and move the writes before the last phase.
    let mut account = start_regions(3, 4, |o| {
        o.failover.enabled = true;
        o.leases = LeaseConfig::default();
    })
    .await;
    // The client comes in through an east node that is neither east's
    // leader (stopping it later must not cost east its read lease) nor a
    // meta voter (the lowest id: stopping it must keep the meta majority).
    let east_leader = account
        .local
        .wait_for_leader(&region("east"), DEADLINE)
        .await
        .expect("an east leader");
    let entry = account.local.region_nodes(&region("east"))[1..]
        .iter()
        .copied()
        .find(|n| *n != east_leader)
        .expect("two east nodes besides the voter");
    let seed = account.local.endpoint(entry);
    let client = Client::connect_with(routed(seed.clone(), &["east", "north"], DEADLINE_DEFAULT))
        .await
        .expect("connect through east");
    let opts = WriteOptions::default();
    let strong = ReadOptions::default();

    phase("a client that came in through east writes in west and reads in east");
    let first = wait_for("a first write, routed to west", || async {
        client.put("c", "k", b"v1".to_vec(), &opts).await.ok()
    })
    .await;
    assert_eq!(served(&first.served_by).0, "west");
    account.wait_region_state("east", "online").await;
    account.wait_region_state("north", "online").await;
    let (value, at, node) = value_of(&client, "k", &strong).await;
    assert_eq!((value.as_slice(), at.as_str()), (&b"v1"[..], "east"));
    assert_eq!(node, entry, "the node it came in through comes first");

    phase("the CLI routes too, and --no-forward shows NOT_WRITE_REGION");
    let (ok, out, err) = cli(&["put", "c", "cli", "x", "--endpoint", &seed, "--json"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"region\": \"west\""), "{out}");
    let (ok, _, err) = cli(&["put", "c", "cli", "y", "--endpoint", &seed, "--no-forward"]).await;
    assert!(!ok);
    assert!(
        err.contains("NOT_WRITE_REGION, write region: west"),
        "{err}"
    );
    let (ok, out, err) = cli(&["get", "c", "cli", "--endpoint", &seed, "--json"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"region\": \"east\""), "{out}");

    phase("east cut off: strong reads move to north");
    account.local.cut_region(&region("east"));
    account.wait_region_state("east", "offline").await;
    let (value, at, _) = value_of(&client, "k", &strong).await;
    assert_eq!((value.as_slice(), at.as_str()), (&b"v1"[..], "north"));

    phase("a session read east cannot serve is answered by the write region");
    let second = client
        .put("c", "k", b"v2".to_vec(), &opts)
        .await
        .expect("write with east out of the strong set");
    let token: SessionToken = second.session_token.parse().expect("token");
    let east_only = Client::connect_with(routed(seed.clone(), &["east"], DEADLINE))
        .await
        .expect("connect");
    let session = ReadOptions {
        consistency: Some(Consistency::Session),
        session_token: Some(token),
    };
    let (value, at, _) = value_of(&east_only, "k", &session).await;
    assert_eq!((value.as_slice(), at.as_str()), (&b"v2"[..], "west"));

    phase("healed: reads come back to east");
    account.local.faults().heal();
    account.wait_region_state("east", "online").await;
    let reader = wait_for("a strong read served by east again", || async {
        let (_, at, node) = value_of(&client, "k", &strong).await;
        (at == "east").then_some(node)
    })
    .await;
    assert!(
        account
            .local
            .region_nodes(&region("east"))
            .contains(&reader)
    );

    phase("the east node reads went to stops: reads carry on through another");
    account.local.stop_node(reader).await;
    let (value, at, node) = value_of(&client, "k", &strong).await;
    assert_eq!((value.as_slice(), at.as_str()), (&b"v2"[..], "east"));
    assert_ne!(node, reader);

    phase("the west node writes went to stops: writes carry on through another");
    let writer = served(&second.served_by).1;
    account.local.stop_node(writer).await;
    // At session level the write waits for the write region only: when the
    // stopped node led it, a strong write would also wait for the read
    // regions to resume shipping from the new leader, which can outlast
    // the forwarding node's timeout and end as an unknown outcome.
    let session_write = WriteOptions {
        consistency: Some(Consistency::Session),
        ..opts
    };
    let started = Instant::now();
    let third = client
        .put("c", "k", b"v3".to_vec(), &session_write)
        .await
        .expect("a write after its node stopped");
    eprintln!(
        "the write after {writer} stopped took {:?}",
        started.elapsed()
    );
    let (at, node) = served(&third.served_by);
    assert_eq!(at, "west");
    assert_ne!(node, writer);

    phase("the west leader cut from its region: a write sent to it is an unknown outcome");
    // A client that came in through the leader sends its writes there. Its
    // short deadline ends the write while the leader waits for a quorum.
    let (leader, pinned) = wait_for("a write through the west leader", || async {
        let leader = account.local.wait_for_leader(&west(), DEADLINE).await?;
        let options = routed(account.local.endpoint(leader), &[], Duration::from_secs(2));
        let pinned = Client::connect_with(options).await.ok()?;
        let w = pinned
            .put("c", "via-leader", b"x".to_vec(), &opts)
            .await
            .ok()?;
        (served(&w.served_by).1 == leader).then_some((leader, pinned))
    })
    .await;
    let peers: Vec<NodeId> = account
        .local
        .region_nodes(&west())
        .into_iter()
        .filter(|n| *n != leader && account.local.node(*n).is_some())
        .collect();
    // The leader keeps its links to the meta group, so it keeps its lease
    // and takes the write; it cannot commit it without its region.
    account.local.faults().partition(&[leader], &peers);
    let unknown = pinned.put("c", "unknown", b"?".to_vec(), &opts).await;
    assert!(
        matches!(unknown, Err(ClientError::OutcomeUnknown { .. })),
        "{unknown:?}"
    );
    account.local.faults().heal();

    phase("a session write west never ships, then west is killed");
    let west_nodes = account.local.region_nodes(&west());
    let others: Vec<NodeId> = account
        .local
        .node_ids()
        .into_iter()
        .filter(|n| !west_nodes.contains(n))
        .collect();
    account.local.faults().stall_streams(&west_nodes, &others);
    let doomed = wait_for("a session write acknowledged by west", || async {
        client
            .put("s", "lost", b"x".to_vec(), &session_write)
            .await
            .ok()
    })
    .await;
    assert_eq!(served(&doomed.served_by).0, "west");
    account.local.kill_region(&west()).await;

    phase("the same client writes on: the failover moves it to east, epoch 2");
    let killed_at = Instant::now();
    let after = client
        .put("c", "after", b"v5".to_vec(), &session_write)
        .await
        .expect("a write across the failover, within the default deadline");
    eprintln!(
        "the first write after west was killed took {:?}",
        killed_at.elapsed()
    );
    assert_eq!(served(&after.served_by).0, "east");
    assert_eq!(after.glsn.expect("glsn").epoch, 2);
    let session_read = ReadOptions {
        consistency: Some(Consistency::Session),
        session_token: None,
    };
    let (value, _, _) = value_of(&client, "after", &session_read).await;
    assert_eq!(value, b"v5", "read-your-writes across the failover");

    phase("the session that saw the lost write is told it is lost");
    let lost = client.get("s", "lost", &session_read).await;
    assert!(
        matches!(lost, Err(ClientError::SessionLost { .. })),
        "{lost:?}"
    );
    // A write would otherwise hand the session a token of the new epoch,
    // covering the lost one: it is refused, before anything is applied.
    let carried = client
        .put("s", "past-the-loss", b"y".to_vec(), &session_write)
        .await;
    assert!(
        matches!(carried, Err(ClientError::SessionLost { .. })),
        "{carried:?}"
    );
    client.reset_sessions();
    let fresh = client
        .get("s", "lost", &session_read)
        .await
        .expect("a new session reads");
    assert!(fresh.item.is_none(), "the failover did not keep the write");
    let refused = client
        .get("s", "past-the-loss", &session_read)
        .await
        .expect("a new session reads");
    assert!(refused.item.is_none(), "the refused write was applied");
    account.local.stop().await;
}
