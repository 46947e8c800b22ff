//! Scans as a contract (issue 15): pages bounded in bytes, so items at the
//! value limit come back through any gRPC client with a 4 MiB receive
//! limit; continuations a server did not issue for this scan refused as
//! INVALID_ARGUMENT; and `meridian scan` exiting non-zero when it fails.

use meridian::client::{Client, ClientError, ReadOptions, ScanRange};
use meridian::limits::VALUE_BYTES_MAX;
use meridian::wire::pb::v1 as pb;

use crate::procs::cli;
use crate::support::*;

/// A value at the limit whose bytes say which key it belongs to.
fn big_value(i: u8) -> Vec<u8> {
    vec![b'a' + i; VALUE_BYTES_MAX]
}

/// Every page of a scan of `container` through a raw gRPC client with
/// tonic's default 4 MiB receive limit, as a client in another language
/// would have.
async fn raw_scan_pages(endpoint: &str, container: &str) -> Vec<pb::ScanResponse> {
    let mut c = connect(endpoint).await;
    let mut pages = Vec::new();
    let mut continuation = String::new();
    loop {
        let page = c
            .scan(pb::ScanRequest {
                container: container.into(),
                continuation: continuation.clone(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("page {} of the scan: {e}", pages.len()))
            .into_inner();
        assert!(!page.items.is_empty(), "a page before the end is empty");
        continuation = page.continuation.clone();
        pages.push(page);
        if continuation.is_empty() {
            return pages;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scan_returns_items_at_the_value_limit_page_by_page() {
    let account = start_region(1).await;
    let endpoint = account.local.endpoint(account.leader().await);
    let client = Client::connect(&endpoint).await.expect("connect");

    phase("three values at the 2 MiB limit and two small ones");
    for i in 0..3u8 {
        let key = format!("big{i}");
        client
            .put("large", &key, big_value(i), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
    for key in ["small0", "small1"] {
        client
            .put("large", key, b"s".to_vec(), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
    let expected = ["big0", "big1", "big2", "small0", "small1"];

    phase("a raw client with a 4 MiB receive limit gets every item");
    let pages = raw_scan_pages(&endpoint, "large").await;
    let keys: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.items)
        .map(|i| i.key.clone())
        .collect();
    assert_eq!(keys, expected);
    assert!(
        pages.len() >= 3,
        "2 MiB values must not share a page: {}",
        pages.len()
    );
    for item in pages.iter().flat_map(|p| &p.items).take(3) {
        let i = item.key.as_bytes()[3] - b'0';
        assert!(item.value == big_value(i), "{} came back changed", item.key);
    }

    phase("client::Client pages through the same items");
    let mut keys = Vec::new();
    let mut continuation = String::new();
    loop {
        let page = client
            .scan(
                "large",
                &ScanRange::default(),
                0,
                &continuation,
                &ReadOptions::default(),
            )
            .await
            .expect("scan page");
        keys.extend(page.items.into_iter().map(|i| i.key));
        if page.continuation.is_empty() {
            break;
        }
        continuation = page.continuation;
    }
    assert_eq!(keys, expected);

    phase("`meridian scan` prints every item and exits 0");
    let (ok, stdout, stderr) = cli(&["scan", "large", "--json", "--endpoint", &endpoint]).await;
    assert!(ok, "meridian scan failed: {stderr}");
    let printed: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    let keys: Vec<&str> = printed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(printed["complete"], true);

    phase("a reader that goes away ends `meridian scan` quietly, with exit 0");
    // Megabytes of output overflow the pipe long before the scan ends, so
    // the write that finds the pipe closed is certain.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["scan", "large", "--endpoint", &endpoint])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn meridian scan");
    drop(child.stdout.take());
    let out = child.wait_with_output().await.expect("meridian scan");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("meridian:"), "{stderr}");
    account.local.stop().await;
}

/// The status of a scan of `container` with `continuation`, which must fail.
async fn refused(client: &Client, container: &str, continuation: &str) -> String {
    match client
        .scan(
            container,
            &ScanRange::default(),
            1,
            continuation,
            &ReadOptions::default(),
        )
        .await
    {
        Err(e @ ClientError::Server { .. }) => {
            assert_eq!(
                e.code(),
                tonic::Code::InvalidArgument,
                "{continuation:?}: {e}"
            );
            assert_eq!(
                e.error_name(),
                Some("INVALID_ARGUMENT"),
                "{continuation:?}: {e}"
            );
            assert!(e.to_string().contains("continuation"), "{e}");
            e.to_string()
        }
        other => panic!("continuation {continuation:?} was not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_or_foreign_scan_continuation_is_invalid_argument() {
    let account = start_region(1).await;
    let endpoint = account.local.endpoint(account.leader().await);
    let client = Client::connect(&endpoint).await.expect("connect");
    for key in ["k1", "k2", "k3"] {
        client
            .put("c", key, b"v".to_vec(), &Default::default())
            .await
            .expect("put");
        client
            .put("d", key, b"v".to_vec(), &Default::default())
            .await
            .expect("put");
    }
    let first = client
        .scan("c", &ScanRange::default(), 1, "", &ReadOptions::default())
        .await
        .expect("first page");
    assert!(!first.continuation.is_empty());

    phase("malformed continuations are refused with the reason");
    for bad in ["k1", "garbage", "1.zz.0000000000000000", "1.6b31"] {
        let message = refused(&client, "c", bad).await;
        assert!(message.contains("malformed"), "{message}");
    }
    let huge = "1.".to_string() + &"6b".repeat(10_000) + ".0000000000000000";
    refused(&client, "c", &huge).await;

    phase("a continuation altered, or from another container, is refused");
    let altered = first.continuation.replacen("6b31", "6b32", 1);
    assert_ne!(altered, first.continuation);
    assert!(
        refused(&client, "c", &altered)
            .await
            .contains("not issued for this scan")
    );
    assert!(
        refused(&client, "d", &first.continuation)
            .await
            .contains("not issued for this scan")
    );

    phase("the continuation as issued still continues where it left off");
    let next = client
        .scan(
            "c",
            &ScanRange::default(),
            1,
            &first.continuation,
            &ReadOptions::default(),
        )
        .await
        .expect("second page");
    let keys: Vec<&str> = next.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["k2"]);
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_meridian_scan_exits_non_zero_with_the_error_on_stderr() {
    let account = start_region(1).await;
    let endpoint = account.local.endpoint(account.leader().await);

    phase("an invalid container name");
    let (ok, _, stderr) = cli(&["scan", "no spaces", "--endpoint", &endpoint]).await;
    assert!(!ok, "a refused scan exited 0");
    assert!(stderr.contains("container name"), "{stderr}");
    assert!(stderr.contains("INVALID_ARGUMENT"), "{stderr}");

    phase("a server that is gone");
    account.local.stop().await;
    let (ok, _, stderr) = cli(&["scan", "c", "--endpoint", &endpoint, "--deadline", "2s"]).await;
    assert!(!ok, "a scan against a stopped server exited 0");
    assert!(stderr.contains("meridian:"), "{stderr}");
}
