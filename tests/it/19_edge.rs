//! The client port's edges as a client in another language meets them:
//! reflection in both versions listing only what the port serves, health
//! per service, over-limit requests named like any other invalid argument,
//! `meridian dev`'s base port, and a paused node that must not reset its
//! clients when it resumes.

use std::time::Duration;

use meridian::consistency::Consistency;
use meridian::limits::VALUE_BYTES_MAX;
use meridian::wire::pb::v1 as pb;
use meridian::wire::pb::v1::kv_client::KvClient;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_reflection::pb::{v1, v1alpha};

use crate::procs::{DevProc, ProcRegion, run_meridian, wait_for_leader};
use crate::support::*;

/// What the client port of a node of a region serves.
const API_SERVICES: [&str; 4] = [
    "meridian.v1.Kv",
    "meridian.v1.Admin",
    "meridian.v1.Conflicts",
    "meridian.v1.Faults",
];

fn channel_to(endpoint: &str) -> Channel {
    Endpoint::from_shared(endpoint.to_string())
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}

async fn list_v1(channel: Channel) -> Vec<String> {
    use v1::server_reflection_request::MessageRequest;
    use v1::server_reflection_response::MessageResponse;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = v1::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1 reflection")
        .into_inner();
    match replies.message().await.expect("v1 stream") {
        Some(v1::ServerReflectionResponse {
            message_response: Some(MessageResponse::ListServicesResponse(list)),
            ..
        }) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("v1 list_services answered {other:?}"),
    }
}

async fn list_v1alpha(channel: Channel) -> Vec<String> {
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha reflection")
        .into_inner();
    match replies.message().await.expect("v1alpha stream") {
        Some(v1alpha::ServerReflectionResponse {
            message_response: Some(MessageResponse::ListServicesResponse(list)),
            ..
        }) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("v1alpha list_services answered {other:?}"),
    }
}

/// Asks v1alpha reflection for the file defining `symbol`: what
/// `grpcurl describe` does.
async fn describe_v1alpha(channel: Channel, symbol: &str) -> bool {
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut replies = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha reflection")
        .into_inner();
    matches!(
        replies.message().await.expect("v1alpha stream"),
        Some(v1alpha::ServerReflectionResponse {
            message_response: Some(MessageResponse::FileDescriptorResponse(_)),
            ..
        })
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_and_v1alpha_list_only_what_the_client_port_serves() {
    let account = start_region(1).await;
    let node = account.leader().await;
    let channel = channel_to(&account.local.endpoint(node));

    phase("both versions list the API, health and reflection, and nothing else");
    let mut expected: Vec<String> = API_SERVICES
        .iter()
        .chain(&[
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    for (version, mut listed) in [
        ("v1", list_v1(channel.clone()).await),
        ("v1alpha", list_v1alpha(channel.clone()).await),
    ] {
        listed.sort();
        assert_eq!(listed, expected, "{version} lists what the port serves");
        assert!(
            !listed.iter().any(|s| s.contains("Replica")),
            "{version} lists the replica transport: {listed:?}"
        );
    }

    phase("every listed service can be described through v1alpha");
    for service in &expected {
        assert!(
            describe_v1alpha(channel.clone(), service).await,
            "no descriptor for {service}"
        );
    }
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_serving_for_every_service_the_port_serves() {
    let account = start_region(1).await;
    let node = account.leader().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel_to(
        &account.local.endpoint(node),
    ));

    phase("the server as a whole and each API service by its full name");
    for service in [""].iter().chain(&API_SERVICES) {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner();
        assert_eq!(reply.status, ServingStatus::Serving as i32, "{service:?}");
    }

    phase("a service the port does not serve is unknown");
    let err = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "meridian.internal.v1.Replica".into(),
        })
        .await
        .expect_err("the client port does not serve the replica transport");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_reports_and_lists_only_what_it_serves() {
    let account = start_with(1, |o| o.witnesses = 1).await;
    account.leader().await;
    let witness = meridian::ids::NodeId(2);
    let channel = channel_to(&account.local.endpoint(witness));
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let check = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };

    phase("the witness as a whole is serving; it serves no API service");
    let reply = wait_for("the witness answering health", || {
        let mut health = health.clone();
        async move { health.check(check("")).await.ok() }
    })
    .await;
    assert_eq!(reply.into_inner().status, ServingStatus::Serving as i32);
    for service in API_SERVICES {
        let err = health
            .check(check(service))
            .await
            .expect_err("a witness holds no items");
        assert_eq!(err.code(), tonic::Code::NotFound, "{service}: {err}");
    }

    phase("its reflection lists health and reflection only");
    let mut listed = list_v1alpha(channel).await;
    listed.sort();
    assert_eq!(
        listed,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
    );
    account.local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_limit_request_is_named_like_a_value_one_byte_over_and_writes_nothing() {
    let account = start_region(1).await;
    let node = account.leader().await;
    // A raw client: no limit of its own on what it sends.
    let mut raw = KvClient::new(channel_to(&account.local.endpoint(node)))
        .max_encoding_message_size(usize::MAX);
    let put_value = |key: &str, bytes: usize| pb::PutRequest {
        container: "c".into(),
        key: key.into(),
        value: vec![7u8; bytes],
        ..Default::default()
    };

    phase("a value one byte over the limit: INVALID_ARGUMENT, named");
    let one_over = raw
        .put(put_value("one-over", VALUE_BYTES_MAX + 1))
        .await
        .expect_err("one byte over is refused");
    assert_eq!(one_over.code(), tonic::Code::InvalidArgument, "{one_over}");
    assert_eq!(error_name(&one_over), "INVALID_ARGUMENT");

    phase("a 5 MiB request: refused before decoding, with the same code and name");
    let huge = raw
        .put(put_value("huge", 5 * 1024 * 1024))
        .await
        .expect_err("5 MiB is refused");
    assert_eq!(huge.code(), tonic::Code::InvalidArgument, "{huge}");
    assert_eq!(error_name(&huge), "INVALID_ARGUMENT", "{huge:?}");
    assert!(huge.message().contains("too large"), "{huge}");

    phase("nothing was written, and the connection still serves");
    let mut client = account.client(node).await;
    for key in ["one-over", "huge"] {
        let reply = get(&mut client, "c", key, Consistency::Strong)
            .await
            .expect("get");
        assert!(reply.item.is_none(), "{key} was written");
    }
    raw.put(put_value("small", 10))
        .await
        .expect("a legal put on the same channel");
    account.local.stop().await;
}

/// A base port with `count` consecutive free ports from it. Another
/// process could take one before dev binds it; dev then fails loudly.
fn free_port_range(count: u16) -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let base = first.local_addr().expect("addr").port();
        if base.checked_add(count).is_none() {
            continue;
        }
        let rest: Option<Vec<_>> = (1..count)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if rest.is_some() {
            return base;
        }
    }
    panic!("no {count} consecutive free ports found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_nodes_serve_on_the_documented_ports_from_the_base_port() {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");

    phase("a base port whose range would pass 65535 is refused");
    let (code, stderr) = run_meridian(&["dev", "--port", "65530", "--regions", "2"]);
    assert_ne!(code, 0, "dev accepted a range past 65535");
    assert!(stderr.contains("--port 65530"), "{stderr}");

    phase("2 regions x 2 nodes from a free base port");
    let base = free_port_range(8);
    let dev = DevProc::spawn_at(dir.path(), base, &["--regions", "2", "--replicas", "2"]);
    for (name, n) in [
        ("west/n1", 1),
        ("west/n2", 2),
        ("east/n3", 3),
        ("east/n4", 4),
    ] {
        let port = base + 2 * (n - 1);
        assert_eq!(dev.endpoint(name), format!("http://127.0.0.1:{port}"));
        let client = connect(&dev.endpoint(name)).await;
        wait_for(&format!("{name} answering on port {port}"), || {
            let mut client = client.clone();
            async move { client.get(get_request("k")).await.ok() }
        })
        .await;
    }
}

/// Calls that time out against the paused node: each leaves a HEADERS and a
/// RST_STREAM waiting in the node's socket.
const TIMED_OUT_CALLS: usize = 150;
/// Calls in flight, with a long deadline, when the node resumes.
const WAITING_CALLS: usize = 8;

fn get_request(key: &str) -> pb::GetRequest {
    pb::GetRequest {
        container: "c".into(),
        key: key.into(),
        consistency: pb::Consistency::Eventual as i32,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_resumes_without_resetting_its_clients() {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let region = ProcRegion::new(dir.path(), 1);
    let node = region.spawn(1);
    wait_for_leader(&region).await;
    let client = KvClient::new(channel_to(&region.endpoint(1)));
    let mut first = client.clone();
    wait_for("a first put", || {
        let mut c = first.clone();
        async move { c.put(put_request()).await.ok() }
    })
    .await;
    first
        .get(get_request("k"))
        .await
        .expect("get before the pause");

    phase("SIGSTOP; calls wait on the node, and many more time out");
    node.signal("STOP");
    let waiting: Vec<_> = (0..WAITING_CALLS)
        .map(|_| {
            let mut c = client.clone();
            tokio::spawn(
                async move { tokio::time::timeout(DEADLINE, c.get(get_request("k"))).await },
            )
        })
        .collect();
    let timed_out = futures::future::join_all((0..TIMED_OUT_CALLS).map(|_| {
        let mut c = client.clone();
        async move {
            tokio::time::timeout(Duration::from_millis(50), c.get(get_request("k")))
                .await
                .is_err()
        }
    }))
    .await;
    assert!(
        timed_out.iter().all(|t| *t),
        "a call was answered by a stopped node"
    );

    phase("SIGCONT: the waiting calls are answered, none reset");
    node.signal("CONT");
    for (i, call) in waiting.into_iter().enumerate() {
        let answer = call.await.expect("task");
        let answer = answer.unwrap_or_else(|_| panic!("waiting call {i} never answered"));
        answer.unwrap_or_else(|e| panic!("waiting call {i} failed on resume: {e}"));
    }
    first
        .get(get_request("k"))
        .await
        .expect("the same channel serves after the resume");
}

fn put_request() -> pb::PutRequest {
    pb::PutRequest {
        container: "c".into(),
        key: "k".into(),
        value: b"v".to_vec(),
        ..Default::default()
    }
}
