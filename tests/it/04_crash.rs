//! Crash safety with real processes: kill -9 every node of a region in
//! the middle of a write load, restart them, and find every acknowledged
//! write.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::procs::*;
use crate::support::*;

const WRITERS: usize = 8;
/// Kill once this many writes are acknowledged: mid-load, not after it.
const ACKED_BEFORE_KILL: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_all_four_mid_load_loses_no_acknowledged_write() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let region = ProcRegion::new(dir.path(), 4);
    let mut procs: Vec<Proc> = region
        .nodes
        .iter()
        .map(|(id, _, _)| region.spawn(*id))
        .collect();

    phase("four processes elect a leader");
    wait_for_leader(&region).await;

    phase("write under load from 8 clients through every node");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut client = connect(&region.endpoint(region.nodes[w % 4].0)).await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            // Bounded: stops at the first failure (the kill) or 10,000 writes.
            for i in 0..10_000 {
                let key = format!("w{w}-{i}");
                if put(&mut client, "crash", &key, key.as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
                acked.lock().unwrap().push(key);
            }
        }));
    }
    wait_for("enough acknowledged writes to kill mid-load", || {
        let n = acked.lock().unwrap().len();
        async move { (n >= ACKED_BEFORE_KILL).then_some(()) }
    })
    .await;

    phase("kill -9 all four processes");
    for p in &mut procs {
        p.kill9();
    }
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
    let acked = acked.lock().unwrap().clone();
    println!("acknowledged before the crash: {}", acked.len());

    phase("restart all four; every acknowledged write is there");
    let _procs: Vec<Proc> = region
        .nodes
        .iter()
        .map(|(id, _, _)| region.spawn(*id))
        .collect();
    wait_for_leader(&region).await;
    let mut client = connect(&region.endpoint(1)).await;
    for key in &acked {
        let item = wait_for(&format!("strong read of {key}"), || {
            let mut c = client.clone();
            async move {
                match get(
                    &mut c,
                    "crash",
                    key,
                    meridian::consistency::Consistency::Strong,
                )
                .await
                {
                    Ok(r) => Some(r.item),
                    Err(_) => None,
                }
            }
        })
        .await;
        let item = item.unwrap_or_else(|| panic!("acknowledged write {key} lost in the crash"));
        assert_eq!(item.value, key.as_bytes());
    }
    let _ = &mut client;
}
