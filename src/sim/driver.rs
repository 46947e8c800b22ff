//! Runs one seed: an account on simulated hosts, the verify runner (the
//! workloads, the nemesis, settling, the read-out and every checker) on a
//! host of its own, all in simulated time on this thread.
//!
//! What the seed decides, and so what a replay repeats: turmoil's message
//! latencies, openraft's election timeouts (`raft::runtime`), the
//! workloads' choices, the nemesis's schedule and the fault layer's drops.
//! Time is simulated (`clock`), storage is in memory
//! (`storage::backend`), and the network is turmoil's (`transport`).
//!
//! The trace of a run is its history (every operation with its simulated
//! times), the faults the nemesis injected with their simulated times,
//! and the verdicts: two runs of one seed produce the same trace.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use crate::clock::SIMULATION_EPOCH_MS;
use crate::config::AccountConfig;
use crate::fault::{FaultInjection, Faults};
use crate::ids::NodeId;
use crate::local::LocalOptions;
use crate::raft::runtime;
use crate::server::{Listeners, Node};
use crate::sim::account::{HostAction, HostActions, SimAccount};
use crate::storage::backend;
use crate::verify::cluster::Cluster;
use crate::verify::history::write_op;
use crate::verify::runner::{self, VerifyError, VerifyOptions, VerifyReport};

/// Ports every node host listens on (each host has an address of its own).
const CLIENT_PORT: u16 = 7000;
const PEER_PORT: u16 = 7001;
/// Latency of one simulated message, within these bounds (turmoil draws
/// it from the seed): a datacenter network. Regions add the WAN round
/// trip on top (`geo.wan_rtt_ms`, through the fault layer).
const LATENCY_MIN: Duration = Duration::from_micros(200);
const LATENCY_MAX: Duration = Duration::from_millis(5);
/// Segments a simulated socket buffers; far above what a run keeps in
/// flight, so the simulated network never refuses one.
const TCP_CAPACITY: usize = 1 << 16;
/// Simulated time a run may take beyond its workload: settling, the
/// read-out and the checkers' gRPC calls are bounded by their own
/// timeouts, well within this.
const SETTLE_ALLOWANCE: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("the simulation failed: {0}")]
    Simulation(String),
}

pub struct SimReport {
    pub verify: VerifyReport,
    /// What a replay of the seed must reproduce exactly.
    pub trace: String,
    /// Simulated time the whole run took.
    pub simulated: Duration,
    /// Steps (ticks) the simulation took.
    pub steps: u64,
}

/// Distinguishes the in-memory data of runs in one process.
static RUN: AtomicU64 = AtomicU64::new(0);

/// Runs `options.seed` in a simulation. `options.processes` is ignored
/// (every node is a simulated host); `options.data_dir` only names the
/// in-memory databases, and the history is written to
/// `options.history_path` as in any verify run.
pub fn run(options: &VerifyOptions) -> Result<SimReport, SimError> {
    let root = options.data_dir.join(format!(
        "sim-{}-{}",
        options.seed,
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    runtime::seed_thread(options.seed);
    let result = run_seeded(options, root.clone());
    runtime::unseed_thread();
    backend::forget_memory(&root);
    result
}

/// One seeded run: the node hosts and the runner's host on a simulation
/// built from the seed, stepped until the runner is done.
fn run_seeded(options: &VerifyOptions, root: PathBuf) -> Result<SimReport, SimError> {
    let mut local = options.local_options();
    local.data_dir = root;
    local.storage.in_memory = true;
    let hosts: BTreeMap<NodeId, IpAddr> = (0..local.node_count())
        .map(|i| (NodeId(i as u64 + 1), node_host(i)))
        .collect();
    let addresses: Vec<(SocketAddr, SocketAddr)> = hosts
        .values()
        .map(|ip| {
            (
                SocketAddr::new(*ip, CLIENT_PORT),
                SocketAddr::new(*ip, PEER_PORT),
            )
        })
        .collect();
    let account = local.account_config(&addresses);
    let faults = Faults::new(options.seed);

    let mut sim = simulation(options);
    add_node_hosts(&mut sim, &local, &account, &hosts, &faults);
    let actions = HostActions::default();
    let runner_host = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    let cluster = SimAccount::new(account, faults, hosts, runner_host, actions.clone());
    let outcome = add_runner(&mut sim, runner_host, cluster, options);
    let steps = step_to_the_end(&mut sim, &actions)?;

    let simulated = sim.elapsed();
    let verify = outcome
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| SimError::Simulation("the runner ended without a report".into()))??;
    let trace = trace_of(&verify, simulated);
    Ok(SimReport {
        verify,
        trace,
        simulated,
        steps,
    })
}

/// Where the runner's host leaves its report when it is done.
type Outcome = Arc<Mutex<Option<Result<VerifyReport, VerifyError>>>>;

/// A simulation whose randomness, start time, length and network come
/// from the seed and the constants above.
fn simulation(options: &VerifyOptions) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(options.seed)
        .epoch(UNIX_EPOCH + Duration::from_millis(SIMULATION_EPOCH_MS))
        .simulation_duration(options.duration + SETTLE_ALLOWANCE)
        .min_message_latency(LATENCY_MIN)
        .max_message_latency(LATENCY_MAX)
        .tcp_capacity(TCP_CAPACITY)
        .build()
}

/// One simulated host per node, each starting its node with the fault
/// layer shared by the whole account (and again after a restart).
fn add_node_hosts(
    sim: &mut turmoil::Sim<'static>,
    local: &LocalOptions,
    account: &AccountConfig,
    hosts: &BTreeMap<NodeId, IpAddr>,
    faults: &Faults,
) {
    for (id, host) in hosts {
        let config = local.node_config(account, *id);
        let injection = FaultInjection::InProcess(faults.clone());
        // turmoil binds only the unspecified address (the host's own).
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let (client, peer) = (
            SocketAddr::new(any, CLIENT_PORT),
            SocketAddr::new(any, PEER_PORT),
        );
        sim.host(*host, move || {
            let (config, injection) = (config.clone(), injection.clone());
            async move {
                let listeners = Listeners::bind(client, peer).await?;
                let _node = Node::start_with(config, listeners, injection).await?;
                // The node runs on its own tasks until the host crashes or
                // the simulation ends.
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
}

/// The runner's host: it drives the verify run against `cluster` and
/// leaves the report in the returned slot.
fn add_runner(
    sim: &mut turmoil::Sim<'static>,
    runner_host: IpAddr,
    cluster: SimAccount,
    options: &VerifyOptions,
) -> Outcome {
    let outcome: Outcome = Arc::default();
    let slot = outcome.clone();
    let verify_options = options.clone();
    sim.client(runner_host, async move {
        let report = runner::run_on(Cluster::Owned(Box::new(cluster)), &verify_options).await;
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        Ok(())
    });
    outcome
}

/// Steps the simulation until every client host is done, crashing and
/// restarting hosts as the runner asks between steps; returns the steps
/// taken.
fn step_to_the_end(
    sim: &mut turmoil::Sim<'static>,
    actions: &HostActions,
) -> Result<u64, SimError> {
    let mut steps = 0u64;
    loop {
        let finished = sim
            .step()
            .map_err(|e| SimError::Simulation(e.to_string()))?;
        steps += 1;
        for action in actions.drain() {
            match action {
                HostAction::Crash(host) => sim.crash(host),
                HostAction::Restart(host) => sim.bounce(host),
            }
        }
        if finished {
            return Ok(steps);
        }
    }
}

/// The host of the `i`th node (from 0).
fn node_host(i: usize) -> IpAddr {
    let i = u8::try_from(i + 1).expect("a simulated account has fewer than 255 nodes");
    IpAddr::V4(Ipv4Addr::new(192, 168, 0, i))
}

/// The history line by line, then the faults and the verdicts, then the
/// simulated time the run took.
fn trace_of(report: &VerifyReport, simulated: Duration) -> String {
    let mut out = Vec::new();
    for op in &report.history {
        write_op(&mut out, op).expect("writing to memory");
    }
    let mut trace = String::from_utf8(out).expect("history lines are UTF-8");
    for f in &report.faults {
        let _ = writeln!(
            trace,
            "fault {:?} region={:?} target={:?} {}..{} ms",
            f.fault, f.region, f.target, f.started_ms, f.ended_ms
        );
    }
    for c in &report.checks {
        let _ = writeln!(
            trace,
            "check {}: {} operations, {} violations",
            c.name,
            c.operations,
            c.verdict.violations.len()
        );
    }
    let _ = writeln!(trace, "simulated {simulated:?}");
    trace
}
