//! Containers as account objects (issue 14, "Account and containers"):
//! created through the meta group with a policy that never changes, listed
//! and shown from any node's copy of the meta state, created `lww` by the
//! first put to a name nobody created, and an `lww:/path` container
//! refusing a value that is not JSON. Once through the Rust client against
//! two in-process regions, once through the `meridian` binary.

use std::time::Duration;

use meridian::client::containers::Container;
use meridian::client::{Client, ClientError, connect_admin};
use meridian::consistency::Consistency;
use serde_json::Value;
use tonic::Code;

use crate::procs::*;
use crate::support::*;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn container(name: &str, policy: &str, feed_for_lww: bool) -> Container {
    Container {
        name: name.into(),
        policy: policy.into(),
        feed_for_lww,
    }
}

/// The code and message of a refused request.
fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (Code, String) {
    let err = result.expect_err("the request must be refused");
    (err.code(), err.to_string())
}

/// Waits until `client`'s node has container `name` (its copy of the meta
/// state may trail the meta group by a moment).
async fn wait_known(client: &Client, name: &str) -> Container {
    wait_for(&format!("container {name} to be known"), || async {
        client.container(name).await.ok()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containers_are_created_once_listed_shown_and_made_by_a_first_put() {
    let account = start_regions(2, 1, |_| {}).await;
    let west_node = account.first_of(&west());
    let east_node = account.first_of(&region("east"));
    account.leader().await;
    let west = connect_admin(&account.local.endpoint(west_node), &[], CALL_TIMEOUT)
        .await
        .expect("connect west");
    let east = connect_admin(&account.local.endpoint(east_node), &[], CALL_TIMEOUT)
        .await
        .expect("connect east");

    phase("create a path container; the node that created it shows it at once");
    let jobs = container("jobs", "lww:/priority", true);
    let created = wait_for("the account to take a container", || async {
        west.create_container("jobs", "lww:/priority", false)
            .await
            .ok()
    })
    .await;
    assert_eq!(created, jobs);
    assert_eq!(west.container("jobs").await.expect("show jobs"), jobs);
    let quiet = west
        .create_container("orders", "lww", true)
        .await
        .expect("create orders");
    assert_eq!(quiet, container("orders", "lww", false));
    assert_eq!(
        west.containers().await.expect("list"),
        vec![jobs.clone(), quiet.clone()],
        "listed by name"
    );

    phase("the same policy again changes nothing; another one is refused");
    assert_eq!(
        west.create_container("jobs", "lww:/priority", false)
            .await
            .expect("again"),
        jobs
    );
    let (code, message) = refused(west.create_container("jobs", "counter", false).await);
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(
        message.contains(
            "container jobs has policy lww:/priority; a policy cannot change (asked for counter)"
        ),
        "{message}"
    );
    let (code, message) = refused(west.create_container("orders", "lww", false).await);
    assert_eq!(
        code,
        Code::FailedPrecondition,
        "the feed flag is part of the policy: {message}"
    );

    phase("bad input is refused and creates nothing");
    let (code, message) = refused(west.create_container("x", "crdt", false).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.contains("unknown conflict policy \"crdt\""),
        "{message}"
    );
    let (code, message) = refused(west.create_container("x", "counter", true).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("lww containers only"), "{message}");
    let (code, _) = refused(west.create_container("no spaces", "lww", false).await);
    assert_eq!(code, Code::InvalidArgument);
    let (code, message) = refused(west.container("x").await);
    assert_eq!(code, Code::NotFound);
    assert!(message.contains("container x not found"), "{message}");

    phase("another region's node learns the containers from the meta group");
    assert_eq!(wait_known(&east, "jobs").await, jobs);

    phase("a first put creates its container lww");
    let mut west_kv = account.client(west_node).await;
    put(&mut west_kv, "fresh", "k", b"not json either")
        .await
        .expect("a put to a new container");
    assert_eq!(
        west.container("fresh").await.expect("made by the put"),
        container("fresh", "lww", true)
    );
    let mut east_kv = account.client(east_node).await;
    put(&mut east_kv, "from-east", "k", b"v")
        .await
        .expect("a put through a read region's node");
    assert_eq!(
        wait_known(&west, "from-east").await,
        container("from-east", "lww", true)
    );

    phase("a path container refuses a value that is not JSON, and writes nothing");
    for kv in [&mut west_kv, &mut east_kv] {
        let err = put(kv, "jobs", "j1", b"not json")
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains("container jobs resolves conflicts by the number at /priority, so values must be JSON"),
            "{err:?}"
        );
    }
    let absent = get(&mut west_kv, "jobs", "j1", Consistency::Strong)
        .await
        .expect("get");
    assert!(absent.item.is_none(), "nothing written: {absent:?}");
    put(&mut west_kv, "jobs", "j1", br#"{"priority": 3}"#)
        .await
        .expect("a JSON value");
}

/// `meridian ARGS --endpoint E`, to completion.
async fn cli(endpoint: &str, args: &[&str]) -> Ran {
    meridian(&[args, &["--endpoint", endpoint]].concat()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_container_commands_create_list_show_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevProc::spawn(dir.path(), &["--replicas", "1"]);
    let endpoint = dev.endpoint("west/n1");
    let e = endpoint.as_str();

    phase("create, once the dev account is up");
    let created = wait_for("the dev account to take a container", || async {
        let ran = cli(
            e,
            &["container", "create", "jobs", "--policy", "lww:/priority"],
        )
        .await;
        (ran.code == 0).then_some(ran.stdout)
    })
    .await;
    assert_eq!(created, "container jobs: policy lww:/priority\n");
    let quiet = cli(
        e,
        &[
            "container",
            "create",
            "orders",
            "--policy",
            "lww",
            "--no-feed-for-lww",
        ],
    )
    .await
    .ok();
    assert_eq!(
        quiet.stdout,
        "container orders: policy lww --no-feed-for-lww\n"
    );

    phase("list and show, as text and JSON");
    let list = cli(e, &["container", "list"]).await.ok().stdout;
    assert_eq!(
        list,
        "NAME    POLICY         FEED\njobs    lww:/priority  yes\norders  lww            no\n"
    );
    let json: Value =
        serde_json::from_str(&cli(e, &["container", "list", "--json"]).await.ok().stdout)
            .expect("--json prints JSON");
    assert_eq!(json["containers"][1]["name"], "orders");
    assert_eq!(json["containers"][1]["feed_for_lww"], false);
    let shown: Value = serde_json::from_str(
        &cli(e, &["container", "show", "jobs", "--json"])
            .await
            .ok()
            .stdout,
    )
    .expect("--json prints JSON");
    assert_eq!(
        shown,
        serde_json::json!({"name": "jobs", "policy": "lww:/priority", "feed_for_lww": true})
    );

    phase("refusals: a policy change, an unknown policy, a missing container");
    let again = cli(
        e,
        &["container", "create", "jobs", "--policy", "lww:/priority"],
    )
    .await;
    assert_eq!(again.ok().stdout, "container jobs: policy lww:/priority\n");
    let change = cli(e, &["container", "create", "jobs", "--policy", "counter"]).await;
    assert_eq!(change.code, 2, "{change:?}");
    assert!(
        change.stderr.contains("a policy cannot change"),
        "{change:?}"
    );
    let unknown = cli(e, &["container", "create", "x", "--policy", "crdt"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("unknown conflict policy"),
        "{unknown:?}"
    );
    let missing = cli(e, &["container", "show", "nope"]).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_eq!(missing.stdout, "container nope not found\n");
}
