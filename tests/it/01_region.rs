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
