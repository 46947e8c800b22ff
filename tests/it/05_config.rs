//! Start-up refusals: malformed configuration files, and a node pointed at
//! another node's data directory. Clear errors, no panic, nothing lost.

use meridian::consistency::Consistency;
use meridian::fault::FaultInjection;
use meridian::server::{Node, StartError};
use meridian::storage::error::StorageError;

use crate::procs::*;
use crate::support::*;

fn refused(config_text: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config_text).unwrap();
    let (code, stderr) = run_meridian(&["server", "--config", path.to_str().unwrap()]);
    assert_eq!(
        code, 2,
        "exit code for a refused configuration; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "stderr should mention {e:?}:\n{stderr}");
    }
}

#[test]
fn malformed_configurations_are_refused_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let region = ProcRegion::new(dir.path(), 2);
    let good = region.config_text(1);

    phase("a file that does not exist");
    let (code, stderr) = run_meridian(&["server", "--config", "/nonexistent/meridian.toml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read /nonexistent/meridian.toml"),
        "{stderr}"
    );

    phase("TOML syntax and unknown keys");
    refused("[node\nid = 1", &["invalid configuration"]);
    refused(
        &format!("{good}\n[raft]\nheartbeat_ms = 5\n"),
        &["unknown field `heartbeat_ms`"],
    );

    phase("broken relations, all reported at once");
    let broken = format!(
        "{}\n[raft]\nheartbeat_interval_ms = 900\nelection_timeout_min_ms = 800\nelection_timeout_max_ms = 700\n",
        good.replace("id = 2,", "id = 1,")
    );
    refused(
        &broken,
        &[
            "node id 1 is used twice",
            "heartbeat_interval_ms (900) must be less than raft.election_timeout_min_ms (800)",
            "election_timeout_min_ms (800) must be less than raft.election_timeout_max_ms (700)",
        ],
    );
    refused(
        &good.replace("id = 1\ndata_dir", "id = 7\ndata_dir"),
        &["node.id 7 is listed in no region"],
    );
    refused(
        &good.replace(
            "default_consistency = \"strong\"",
            "default_consistency = \"linearizable\"",
        ),
        &["linearizable"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_pointed_at_another_nodes_data_directory_refuses_to_start() {
    let mut account = start_region(4).await;
    let leader = account.leader().await;
    let victim = account.others(leader)[0];
    let intruder = account.others(leader)[1];
    let mut c = account.client(leader).await;
    put_many(&mut c, "c", "k", 10).await;
    account
        .wait_applied(victim, account.status(leader).applied_index)
        .await;

    phase("stop the victim and start another node's config on its directory");
    account.local.stop_node(victim).await;
    let mut config = account.local.config_of(intruder);
    config.node.data_dir = account.local.config_of(victim).node.data_dir;
    config.node.client_listen = Some("127.0.0.1:0".parse().unwrap());
    config.node.peer_listen = Some("127.0.0.1:0".parse().unwrap());
    let err = match Node::start(config, FaultInjection::Off).await {
        Ok(_) => panic!("a node must not start on another node's data directory"),
        Err(e) => e,
    };
    assert!(
        matches!(err, StartError::Storage(StorageError::WrongDataDir { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("west/{victim}")) && text.contains(&format!("west/{intruder}")),
        "{text}"
    );

    phase("the victim restarts on its own directory with its data intact");
    account
        .local
        .restart_node(victim)
        .await
        .expect("restart victim");
    let mut on_victim = account.client(victim).await;
    for i in 0..10 {
        let r = get(&mut on_victim, "c", &format!("k{i}"), Consistency::Eventual)
            .await
            .unwrap();
        assert!(r.item.is_some(), "k{i} lost on {victim}");
    }
    account.local.stop().await;
}
