//! The client API's contract: optimistic concurrency, limits, consistency
//! rules, scans and paging, reflection and health.

use meridian::consistency::Consistency;
use meridian::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use meridian::wire::pb::v1 as pb;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replaces_with_the_same_etag_exactly_one_wins() {
    let account = start_region(4).await;
    account.leader().await;
    let ids = account.local.node_ids();
    let mut c = account.client(ids[0]).await;
    let etag = put(&mut c, "c", "contended", b"v0")
        .await
        .expect("put")
        .etag;

    phase("16 clients replace with the same if_match through every node");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut client = account.client(ids[i % ids.len()]).await;
        let etag = etag.clone();
        tasks.push(tokio::spawn(async move {
            client
                .replace(pb::ReplaceRequest {
                    container: "c".into(),
                    key: "contended".into(),
                    value: format!("writer-{i}").into_bytes(),
                    if_match: Some(etag),
                    ..Default::default()
                })
                .await
        }));
    }
    let mut wins = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.expect("task") {
            Ok(_) => wins.push(i),
            Err(e) => assert_eq!(e.code(), tonic::Code::FailedPrecondition, "writer {i}: {e}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one replace must win, got {wins:?}");
    let item = get(&mut c, "c", "contended", Consistency::Strong)
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item.value, format!("writer-{}", wins[0]).as_bytes());

    phase("create fails on a present key; replace and delete on an absent one");
    let err = c
        .create(pb::CreateRequest {
            container: "c".into(),
            key: "contended".into(),
            value: b"x".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let err = c
        .replace(pb::ReplaceRequest {
            container: "c".into(),
            key: "absent".into(),
            value: b"x".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = c
        .delete(pb::DeleteRequest {
            container: "c".into(),
            key: "contended".into(),
            if_match: Some(etag),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::FailedPrecondition,
        "stale etag delete"
    );
    c.delete(pb::DeleteRequest {
        container: "c".into(),
        key: "contended".into(),
        if_match: Some(item.etag),
        ..Default::default()
    })
    .await
    .expect("delete with the current etag");
    assert!(
        get(&mut c, "c", "contended", Consistency::Strong)
            .await
            .unwrap()
            .item
            .is_none()
    );
    account.local.stop().await;
}

fn invalid(result: Result<impl std::fmt::Debug, tonic::Status>, names: &str) {
    let err = result.expect_err("must be refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(
        err.message().contains(names),
        "message {:?} should name {names:?}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_a_clear_invalid_argument_and_changes_nothing() {
    let account = start_with(4, |o| o.default_consistency = Consistency::Session).await;
    let leader = account.leader().await;
    let mut c = account.client(leader).await;
    let before = account.status(leader).applied_glsn;

    phase("each limit, one past it");
    invalid(
        put(&mut c, "c", &"k".repeat(KEY_BYTES_MAX + 1), b"x").await,
        "2048",
    );
    invalid(
        put(&mut c, "c", "k", &vec![0u8; VALUE_BYTES_MAX + 1]).await,
        "2097152",
    );
    invalid(put(&mut c, &"c".repeat(256), "k", b"x").await, "255");
    invalid(
        put(&mut c, "no/slash", "k", b"x").await,
        "allowed characters",
    );
    invalid(put(&mut c, "c", "", b"x").await, "key is empty");

    phase("a key and a value exactly at the limits are accepted");
    put(
        &mut c,
        "c",
        &"k".repeat(KEY_BYTES_MAX),
        &vec![7u8; VALUE_BYTES_MAX],
    )
    .await
    .expect("at the limits");

    phase("malformed session token, unknown consistency, too-strong consistency");
    let bad_token = c
        .get(pb::GetRequest {
            container: "c".into(),
            key: "k".into(),
            session_token: "garbage".into(),
            ..Default::default()
        })
        .await;
    invalid(bad_token, "session token");
    let bad_level = c
        .get(pb::GetRequest {
            container: "c".into(),
            key: "k".into(),
            consistency: 42,
            ..Default::default()
        })
        .await;
    invalid(bad_level, "consistency");
    invalid(
        get(&mut c, "c", "k", Consistency::Strong).await,
        "stronger than the account default session",
    );
    get(&mut c, "c", "k", Consistency::Eventual)
        .await
        .expect("weaker than the default is honoured");

    phase("nothing was written by the refused requests");
    let after = account.status(leader).applied_glsn;
    assert_eq!(
        after.lsn,
        before.lsn + 1,
        "only the at-the-limit put applied"
    );
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scans_page_by_prefix_and_range() {
    let account = start_region(4).await;
    let leader = account.leader().await;
    let mut c = account.client(leader).await;
    for i in 0..25 {
        put(&mut c, "c", &format!("user/{i:03}"), b"u")
            .await
            .unwrap();
    }
    put(&mut c, "c", "zeta", b"z").await.unwrap();
    put(&mut c, "other", "user/999", b"o").await.unwrap();

    phase("a prefix scan in pages of 10 sees each key once, in order");
    let mut seen = Vec::new();
    let mut continuation = String::new();
    loop {
        let page = c
            .scan(pb::ScanRequest {
                container: "c".into(),
                prefix: "user/".into(),
                limit: 10,
                continuation: continuation.clone(),
                consistency: pb::Consistency::Strong as i32,
                ..Default::default()
            })
            .await
            .expect("scan")
            .into_inner();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.into_iter().map(|i| i.key));
        if page.continuation.is_empty() {
            break;
        }
        continuation = page.continuation;
    }
    let expected: Vec<String> = (0..25).map(|i| format!("user/{i:03}")).collect();
    assert_eq!(seen, expected);

    phase("a range scan is start-inclusive and end-exclusive");
    let page = c
        .scan(pb::ScanRequest {
            container: "c".into(),
            start: "user/010".into(),
            end: "user/013".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<String> = page.items.into_iter().map(|i| i.key).collect();
    assert_eq!(keys, ["user/010", "user/011", "user/012"]);
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    let account = start_region(1).await;
    let node = account.leader().await;
    let channel = tonic::transport::Endpoint::from_shared(account.local.endpoint(node))
        .unwrap()
        .connect_lazy();

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "meridian.v1.Kv".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let reply = replies.message().await.expect("stream").expect("one reply");
    let listed = format!("{:?}", reply.message_response);
    assert!(
        listed.contains("meridian.v1.Kv") && listed.contains("meridian.v1.Admin"),
        "{listed}"
    );
    account.local.stop().await;
}
