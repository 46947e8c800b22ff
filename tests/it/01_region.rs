//! One region of four replicas: election, replication to every node,
//! linearizable reads after acknowledged writes.

use meridian::consistency::Consistency;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_any_node_reach_every_node() {
    let account = start_region(4).await;

    phase("a leader is elected");
    let leader = account.leader().await;
    let ids = account.local.node_ids();
    assert_eq!(ids.len(), 4);

    phase("write through every node, including followers");
    for (i, id) in ids.iter().enumerate() {
        let mut c = account.client(*id).await;
        let resp = put(
            &mut c,
            "users",
            &format!("k{i}"),
            format!("v{i}").as_bytes(),
        )
        .await
        .expect("put");
        assert!(!resp.etag.is_empty());
        assert!(
            resp.session_token.starts_with('e'),
            "{}",
            resp.session_token
        );
    }

    phase("every node serves every write at EVENTUAL once applied");
    for id in &ids {
        let mut c = account.client(*id).await;
        for i in 0..ids.len() {
            let key = format!("k{i}");
            let item = wait_for(&format!("{key} on {id}"), || {
                let mut c = c.clone();
                let key = key.clone();
                async move {
                    get(&mut c, "users", &key, Consistency::Eventual)
                        .await
                        .ok()?
                        .item
                }
            })
            .await;
            assert_eq!(item.value, format!("v{i}").as_bytes());
        }
        let _ = &mut c;
    }

    phase("a STRONG read right after an acknowledged write sees it, on every node");
    for round in 0..20 {
        for id in &ids {
            let mut writer = account.client(leader).await;
            let value = format!("r{round}-{id}");
            put(&mut writer, "users", "hot", value.as_bytes())
                .await
                .expect("put");
            let mut reader = account.client(*id).await;
            let got = get(&mut reader, "users", "hot", Consistency::Strong)
                .await
                .expect("strong get");
            assert_eq!(
                got.item.expect("present").value,
                value.as_bytes(),
                "stale strong read on {id}"
            );
            assert_eq!(got.served_by.unwrap().node_id, id.0);
        }
    }
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_every_node_and_lag_falls_to_zero() {
    use meridian::wire::pb::v1 as pb;
    use meridian::wire::pb::v1::admin_client::AdminClient;

    let mut account = start_region(4).await;
    let leader = account.leader().await;
    let follower = account.others(leader)[0];
    let mut c = account.client(leader).await;
    put_many(&mut c, "c", "k", 20).await;
    let endpoint = account.local.endpoint(follower);
    let admin = || {
        let endpoint = endpoint.clone();
        async move {
            let channel = tonic::transport::Endpoint::from_shared(endpoint)
                .unwrap()
                .connect_lazy();
            AdminClient::new(channel)
                .status(pb::StatusRequest::default())
                .await
                .expect("status")
                .into_inner()
        }
    };

    phase("asked through a follower, status lists four running nodes and one leader");
    let status = wait_for("lag 0 on every node", || async {
        let s = admin().await;
        s.nodes
            .iter()
            .all(|n| n.lag_entries == Some(0))
            .then_some(s)
    })
    .await;
    assert_eq!(status.account, "dev");
    assert_eq!(status.nodes.len(), 4);
    assert_eq!(
        status.nodes.iter().filter(|n| n.role == "leader").count(),
        1
    );
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.state == "running" && n.region == "west")
    );
    let leader_row = status.nodes.iter().find(|n| n.role == "leader").unwrap();
    assert_eq!(leader_row.node_id, leader.0);
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.applied_index == leader_row.last_log_index)
    );

    phase("a stopped node shows as unreachable");
    let stopped = account
        .others(leader)
        .into_iter()
        .find(|n| *n != follower)
        .unwrap();
    account.local.stop_node(stopped).await;
    let s = admin().await;
    let row = s.nodes.iter().find(|n| n.node_id == stopped.0).unwrap();
    assert_eq!(row.state, "unreachable");
    assert_eq!(row.lag_entries, None);
    account.local.stop().await;
}
