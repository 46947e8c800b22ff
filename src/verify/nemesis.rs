//! The nemesis: faults on a schedule drawn from a seed, injected into an
//! in-process account. The same seed draws the same schedule (which fault,
//! on which node, for how long); which node leads at the moment a fault
//! starts depends on timing, so a replay repeats the plan, not every
//! interleaving (the deterministic simulation in issue 5 closes that gap).
//!
//! Each fault is undone before the next one starts, and everything is
//! healed when the schedule ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use crate::ids::NodeId;
use crate::local::LocalAccount;
use crate::raft::replica::Role;

/// Quiet time between faults, and how long a fault lasts.
const GAP_MS: (u64, u64) = (500, 1500);
const HOLD_MS: (u64, u64) = (1000, 3000);
/// Latency added by a delay fault.
const DELAY_MS: u64 = 50;
/// Share of messages a drop fault loses.
const DROP_PROBABILITY: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// One node cut off from all others.
    IsolateNode(usize),
    /// Whoever leads when the fault starts, cut off.
    IsolateLeader,
    /// Two halves that cannot reach each other.
    SplitHalves,
    /// Extra latency on every link of one node.
    DelayNode(usize),
    /// Random loss on every link of one node.
    DropNode(usize),
    /// One node stopped, then started again on its data.
    RestartNode(usize),
}

/// The pure part: the `i`-th fault of the schedule for `seed`.
pub fn draw(rng: &mut StdRng, nodes: usize) -> (Fault, Duration, Duration) {
    let node = rng.gen_range(0..nodes);
    let fault = match rng.gen_range(0..6) {
        0 => Fault::IsolateNode(node),
        1 => Fault::IsolateLeader,
        2 => Fault::SplitHalves,
        3 => Fault::DelayNode(node),
        4 => Fault::DropNode(node),
        _ => Fault::RestartNode(node),
    };
    let gap = Duration::from_millis(rng.gen_range(GAP_MS.0..=GAP_MS.1));
    let hold = Duration::from_millis(rng.gen_range(HOLD_MS.0..=HOLD_MS.1));
    (fault, gap, hold)
}

/// One fault as it happened, for the summary.
#[derive(Debug, Clone)]
pub struct FaultEvent {
    pub fault: Fault,
    pub target: Vec<NodeId>,
    pub started_ms: u64,
    pub ended_ms: u64,
}

/// Runs the schedule until `deadline`; returns what it did.
pub async fn run(
    account: Arc<Mutex<LocalAccount>>,
    seed: u64,
    started: Instant,
    deadline: Instant,
) -> Vec<FaultEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let nodes = account.lock().await.node_ids();
    loop {
        let (fault, gap, hold) = draw(&mut rng, nodes.len());
        if Instant::now() + gap + hold >= deadline {
            break;
        }
        tokio::time::sleep(gap).await;
        let started_ms = started.elapsed().as_millis() as u64;
        let target = inject(&account, fault, &nodes).await;
        tracing::info!(?fault, ?target, "nemesis: fault on");
        tokio::time::sleep(hold).await;
        undo(&account, fault, &target).await;
        tracing::info!(?fault, "nemesis: fault off");
        events.push(FaultEvent {
            fault,
            target,
            started_ms,
            ended_ms: started.elapsed().as_millis() as u64,
        });
    }
    events
}

async fn inject(account: &Arc<Mutex<LocalAccount>>, fault: Fault, nodes: &[NodeId]) -> Vec<NodeId> {
    let mut account = account.lock().await;
    let faults = account.faults().clone();
    match fault {
        Fault::IsolateNode(i) => {
            faults.isolate(nodes[i], nodes);
            vec![nodes[i]]
        }
        Fault::IsolateLeader => {
            let leader = account
                .running()
                .find(|n| n.replica().status().role == Role::Leader)
                .map(|n| n.node_id());
            if let Some(l) = leader {
                faults.isolate(l, nodes);
            }
            leader.into_iter().collect()
        }
        Fault::SplitHalves => {
            let (a, b) = nodes.split_at(nodes.len() / 2);
            faults.partition(a, b);
            a.to_vec()
        }
        Fault::DelayNode(i) | Fault::DropNode(i) => {
            for other in nodes.iter().filter(|n| **n != nodes[i]) {
                for (from, to) in [(nodes[i], *other), (*other, nodes[i])] {
                    if let Fault::DelayNode(_) = fault {
                        faults.delay(from, to, Duration::from_millis(DELAY_MS));
                    } else {
                        faults.drop_messages(from, to, DROP_PROBABILITY);
                    }
                }
            }
            vec![nodes[i]]
        }
        Fault::RestartNode(i) => {
            account.stop_node(nodes[i]).await;
            vec![nodes[i]]
        }
    }
}

async fn undo(account: &Arc<Mutex<LocalAccount>>, fault: Fault, target: &[NodeId]) {
    let mut account = account.lock().await;
    account.faults().heal();
    if let Fault::RestartNode(_) = fault {
        for node in target {
            if let Err(e) = account.restart_node(*node).await {
                tracing::error!(%node, "nemesis could not restart the node: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_schedule() {
        let plan = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| draw(&mut rng, 4)).collect::<Vec<_>>()
        };
        assert_eq!(plan(42), plan(42));
        assert_ne!(plan(42), plan(43));
        let faults: std::collections::HashSet<_> = plan(42)
            .into_iter()
            .map(|(f, _, _)| std::mem::discriminant(&f))
            .collect();
        assert!(faults.len() >= 4, "a schedule mixes kinds of fault");
    }
}
