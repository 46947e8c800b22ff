//! `meridian verify`: start an account, run every workload under the
//! nemesis, heal, let it quiesce, read the final state, and run every
//! checker on the recorded history.
//!
//! The account is real `meridian server` processes (`VerifyOptions::
//! processes`: faults through each process's fault layer, kill -9 and
//! SIGSTOP) or every node in this process (faults through the shared
//! fault layer, restarts by stop/start). With several regions the first is
//! the write region: writes go to its nodes, reads to any node of any
//! region, and the nemesis adds region faults. The account enforces
//! bounded staleness with small K and T, and the staleness checker judges
//! the bounded reads with the same K and T. Settling and the convergence
//! check go through `Admin.Status` (with state digests) either way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Instant;

use tokio::sync::Mutex;

use tokio_stream::StreamExt;

use crate::client::status::AccountStatus;
use crate::client::{Client, NODE_STATE_RUNNING, ReadOptions, ScanRange};
use crate::conflict::ConflictKind;
use crate::consistency::Consistency;
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId, ReplicaId};
use crate::local::{LocalAccount, LocalOptions};
use crate::verify::cluster::{Cluster, agreed_leader};
use crate::verify::durability::AccountedWrite;
use crate::verify::history::{HistoryError, Op, write_op};
use crate::verify::nemesis::{self, FaultEvent};
use crate::verify::procs::ProcAccount;
use crate::verify::staleness::{self, RegionFigures};
use crate::verify::workload::{
    self, CONTAINER, Clients, Process, REGISTER_KEYS, Recorder, SET_KEY, SET_PREFIX,
};
use crate::verify::{checks, durability};

pub use crate::verify::checks::CheckResult;

/// How long healing, quiescence and the final read-out may take.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounded staleness as the runner configures it by default: small, so
/// the throttling and the checker both have something to do. T is below
/// the read lease a cut-off region keeps using (ttl - margin, 1250 ms),
/// so a region's read lease alone cannot keep its reads within T: its
/// freshness must (`geo::freshness`).
pub const STALENESS_DEFAULT: staleness::Params = staleness::Params {
    versions_max: 5,
    lag_ms_max: 1000,
};
/// Region leases short enough that a region cut off for a nemesis hold
/// (1–3 s) is taken out of the strong set within it; the ratios are as
/// in `LeaseConfig`'s validation (renew + margin < ttl).
const REGION_LEASE_TTL_MS: u64 = 1500;
const REGION_LEASE_RENEW_MS: u64 = 250;
const REGION_LEASE_MARGIN_MS: u64 = 250;
/// A cross-region round trip long enough that read regions trail.
pub const WAN_RTT_MS_DEFAULT: u64 = 20;

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub seed: u64,
    pub duration: Duration,
    pub regions: usize,
    pub replicas: usize,
    pub nemesis: bool,
    /// The nemesis also cuts the write region off, so writes fail over.
    pub failover_faults: bool,
    /// The account default; a workload whose level is stronger is skipped.
    pub default_consistency: Consistency,
    /// K and T: enforced by the account, judged by the staleness checker.
    pub staleness: staleness::Params,
    /// Simulated round trip between regions.
    pub wan_rtt_ms: u64,
    pub data_dir: PathBuf,
    pub history_path: PathBuf,
    /// Run each node as a `meridian server` process of this binary;
    /// `None` runs them all in this process.
    pub processes: Option<PathBuf>,
    /// Each workload process pauses this long before each operation.
    pub think_time: Duration,
    /// The nemesis's gaps and holds are multiplied by this (1: as drawn):
    /// a short simulated run still sees several faults.
    pub fault_time_scale: f64,
}

impl VerifyOptions {
    /// One region of four nodes under the nemesis, strong by default.
    pub fn new(seed: u64, duration: Duration, data_dir: PathBuf, history_path: PathBuf) -> Self {
        Self {
            seed,
            duration,
            regions: 1,
            replicas: 4,
            nemesis: true,
            failover_faults: false,
            default_consistency: Consistency::Strong,
            staleness: STALENESS_DEFAULT,
            wan_rtt_ms: WAN_RTT_MS_DEFAULT,
            data_dir,
            history_path,
            processes: None,
            think_time: Duration::ZERO,
            fault_time_scale: 1.0,
        }
    }

    pub fn local_options(&self) -> LocalOptions {
        let mut local = LocalOptions::new(&self.data_dir);
        local.regions = self.regions;
        local.replicas = self.replicas;
        local.seed = self.seed;
        local.default_consistency = self.default_consistency;
        local.max_staleness_ops = self.staleness.versions_max;
        local.max_staleness_ms = self.staleness.lag_ms_max;
        local.transport.request_timeout_ms = 2000;
        local.reads.session_wait_ms = 300;
        if self.regions > 1 {
            local.geo.wan_rtt_ms = self.wan_rtt_ms;
            local.leases.ttl_ms = REGION_LEASE_TTL_MS;
            local.leases.renew_ms = REGION_LEASE_RENEW_MS;
            local.leases.safety_margin_ms = REGION_LEASE_MARGIN_MS;
        }
        local
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("starting the account: {0}")]
    Start(String),
    #[error("the account did not settle after the faults: {0}")]
    Settle(String),
    #[error("the recorded history is malformed: {0}")]
    History(#[from] HistoryError),
    #[error("writing the history file {path}: {reason}")]
    HistoryFile { path: PathBuf, reason: String },
}

/// What the staleness checker measured, by the region that served reads.
pub struct StalenessFigures {
    pub params: staleness::Params,
    pub write_region: RegionId,
    pub regions: BTreeMap<RegionId, RegionFigures>,
}

impl StalenessFigures {
    /// Bounded reads judged that a read region served.
    pub fn reads_judged_outside_write_region(&self) -> usize {
        staleness::reads_judged_outside(&self.regions, &self.write_region)
    }
}

pub struct VerifyReport {
    pub seed: u64,
    pub operations: usize,
    pub faults: Vec<FaultEvent>,
    pub checks: Vec<CheckResult>,
    pub staleness: StalenessFigures,
    /// Writes the conflict feed says failovers lost (UNREPLICATED_WRITE),
    /// which the durability checker accepts in place of the writes.
    pub lost_to_failover: usize,
    /// Epoch changes during the run (failovers and switchovers).
    pub epoch_changes: u64,
    pub history_path: PathBuf,
    /// The recorded history, as written to `history_path`.
    pub history: Vec<Op>,
}

impl VerifyReport {
    pub fn violations(&self) -> usize {
        self.checks.iter().map(|c| c.verdict.violations.len()).sum()
    }
}

pub async fn run(options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let account = start(options).await?;
    run_on(account, options).await
}

/// Starts the account `options` describe: processes or in-process nodes.
async fn start(options: &VerifyOptions) -> Result<Cluster, VerifyError> {
    Ok(match &options.processes {
        Some(exe) => Cluster::Processes(
            ProcAccount::start(options.local_options(), exe.clone())
                .await
                .map_err(VerifyError::Start)?,
        ),
        None => Cluster::InProcess(
            LocalAccount::start(options.local_options())
                .await
                .map_err(|e| VerifyError::Start(e.to_string()))?,
        ),
    })
}

/// Runs every workload under the nemesis on a started account, settles
/// it, stops it and judges the history. The simulation (`sim`) starts its
/// own account and comes in here.
pub async fn run_on(
    account: Cluster,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let write_region = wait_for_leaders(&account).await?;
    let clients = connect_all(&account, &write_region).await?;
    let account = Arc::new(Mutex::new(account));
    let plan = Plan::for_default(options.default_consistency);
    let (recorder, faults) = run_workloads(&account, &clients, &plan, options).await;
    let read_out = settle_and_read_out(account, &clients, &plan).await?;
    let epoch_changes = read_out.settled.epoch.saturating_sub(1);

    let ops = recorder.ops();
    write_history(&options.history_path, &ops)?;
    let durability_params = durability::Params {
        final_state: &read_out.final_state,
        accounted: &read_out.lost,
    };
    let (checks, staleness) = checks::run_checkers(
        &ops,
        durability_params,
        &read_out.settled.digests,
        &options.staleness,
        |level| plan.skipped(level),
    )?;
    Ok(VerifyReport {
        seed: options.seed,
        operations: ops.len(),
        faults,
        checks,
        staleness: StalenessFigures {
            params: options.staleness,
            write_region,
            regions: staleness,
        },
        lost_to_failover: read_out.lost.len(),
        epoch_changes,
        history_path: options.history_path.clone(),
        history: ops,
    })
}

/// Waits for a leader in every region; returns the write region (the
/// first).
async fn wait_for_leaders(account: &Cluster) -> Result<RegionId, VerifyError> {
    let regions = account.regions();
    for region in &regions {
        account
            .wait_for_leader(region, SETTLE_TIMEOUT)
            .await
            .ok_or_else(|| VerifyError::Start(format!("no leader elected in {region}")))?;
    }
    Ok(regions[0].clone())
}

/// Runs the workloads `plan` allows until the deadline, with the nemesis
/// injecting faults meanwhile when `options` ask for it; returns what the
/// workloads recorded and the faults injected.
async fn run_workloads(
    account: &Arc<Mutex<Cluster>>,
    clients: &Clients,
    plan: &Plan,
    options: &VerifyOptions,
) -> (Arc<Recorder>, Vec<FaultEvent>) {
    let started = Instant::now();
    let deadline = started + options.duration;
    let recorder = Arc::new(Recorder::default());
    let workloads = spawn_workloads(plan, clients, &recorder, deadline, options);
    let faults = if options.nemesis {
        nemesis::run(
            account.clone(),
            options.failover_faults,
            options.seed,
            options.fault_time_scale,
            started,
            deadline,
        )
        .await
    } else {
        Vec::new()
    };
    for w in workloads {
        let _ = w.await;
    }
    (recorder, faults)
}

/// What the account holds once the run is over.
struct ReadOut {
    settled: Settled,
    /// The final state of the keys the durability checker judges.
    final_state: BTreeMap<String, BTreeSet<String>>,
    /// The writes the conflict feed says failovers lost.
    lost: Vec<AccountedWrite>,
}

/// Settles the account, reads its final state and the writes failovers
/// lost, and stops it (also when settling or reading fails).
async fn settle_and_read_out(
    account: Arc<Mutex<Cluster>>,
    clients: &Clients,
    plan: &Plan,
) -> Result<ReadOut, VerifyError> {
    let mut account = Arc::try_unwrap(account)
        .map_err(|_| VerifyError::Settle("the nemesis still holds the account".into()))?
        .into_inner();
    let settled = settle(&mut account).await;
    let read_out = match settled {
        Ok(settled) => {
            let final_state =
                read_final_state(&clients.write_region[0], plan.read_out_level()).await;
            let lost = read_lost_writes(&account, &settled.write_region).await;
            final_state.and_then(|final_state| {
                lost.map(|lost| ReadOut {
                    settled,
                    final_state,
                    lost,
                })
            })
        }
        Err(e) => Err(e),
    };
    account.stop().await;
    read_out
}

/// Direct clients, one per node, and the write region's among them: the
/// nemesis decides which nodes fail, and the history records what the node
/// each process picked did, with no retries in between. (Running the
/// workloads through routed clients would check the client's own retry
/// rules too; that is a separate run.)
async fn connect_all(account: &Cluster, write_region: &RegionId) -> Result<Clients, VerifyError> {
    let in_write_region: BTreeSet<NodeId> =
        account.region_nodes(write_region).into_iter().collect();
    let mut clients = Clients {
        all: Vec::new(),
        write_region: Vec::new(),
    };
    for node in account.node_ids() {
        let client = Client::connect_direct(&account.endpoint(node))
            .await
            .map_err(|e| VerifyError::Start(e.to_string()))?;
        if in_write_region.contains(&node) {
            clients.write_region.push(client.clone());
        }
        clients.all.push(client);
    }
    Ok(clients)
}

/// Which workloads run: those whose level the account default allows.
struct Plan {
    default: Consistency,
}

impl Plan {
    fn for_default(default: Consistency) -> Self {
        Self { default }
    }

    fn runs(&self, level: Consistency) -> bool {
        level.is_allowed_under(self.default)
    }

    /// STRONG when the account allows it; else its default, which after
    /// settling (every replica has applied everything) reads the same
    /// state from a node of the write region.
    fn read_out_level(&self) -> Consistency {
        if self.runs(Consistency::Strong) {
            Consistency::Strong
        } else {
            self.default
        }
    }

    /// Why a checker of a workload at `level` did not run, if it did not.
    fn skipped(&self, level: Consistency) -> Option<String> {
        (!self.runs(level)).then(|| {
            format!(
                "its workload needs {level}, stronger than the account default {}",
                self.default
            )
        })
    }
}

/// Process ids by workload: 1.. registers, 11.. sessions, 21.. prefix
/// writers, 31.. prefix readers, 41.. appenders, 51.. bounded writers,
/// 61.. bounded readers.
fn spawn_workloads(
    plan: &Plan,
    clients: &Clients,
    recorder: &Arc<Recorder>,
    deadline: Instant,
    options: &VerifyOptions,
) -> Vec<tokio::task::JoinHandle<()>> {
    let process = |id| {
        let mut p = Process::new(
            id,
            clients.clone(),
            recorder.clone(),
            deadline,
            options.seed,
        );
        p.think_time = options.think_time;
        p
    };
    let mut tasks = Vec::new();
    if plan.runs(Consistency::Strong) {
        for id in 1..=3 {
            tasks.push(tokio::spawn(workload::registers(process(id))));
        }
    }
    if plan.runs(Consistency::Session) {
        for id in 11..=13 {
            tasks.push(tokio::spawn(workload::session(process(id))));
        }
        let writers = vec![21, 22];
        for id in &writers {
            tasks.push(tokio::spawn(workload::prefix_writer(process(*id))));
        }
        for id in 31..=32 {
            tasks.push(tokio::spawn(workload::prefix_reader(
                process(id),
                writers.clone(),
            )));
        }
    }
    for id in 41..=42 {
        tasks.push(tokio::spawn(workload::appender(process(id))));
    }
    if plan.runs(Consistency::BoundedStaleness) {
        let writers = vec![51, 52, 53];
        for id in &writers {
            tasks.push(tokio::spawn(workload::bounded_writer(process(*id))));
        }
        // More readers than writers: bounded reads are what the check is
        // about, and most of them land in read regions.
        for id in 61..=66 {
            tasks.push(tokio::spawn(workload::bounded_reader(
                process(id),
                writers.clone(),
            )));
        }
    }
    tasks
}

/// The account once it has settled.
pub struct Settled {
    pub write_region: RegionId,
    pub epoch: u64,
    /// Each replica's state digest.
    pub digests: Vec<(ReplicaId, String)>,
}

/// Heals every fault and waits, through `Admin.Status` of a node of the
/// write region, for a leader every node of its region agrees on in each
/// region and for every replica to apply its region's whole log and
/// everything the write region applied; then asks for every replica's
/// state digest.
pub async fn settle(account: &mut Cluster) -> Result<Settled, VerifyError> {
    account.heal().await;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last_seen = String::from("no node answered");
    let (write_region, epoch) = loop {
        if let Some((write_region, epoch)) = account.write_region().await
            && let Some(status) = account.status(Some(&write_region), false).await
        {
            match caught_up(&status) {
                Ok(()) => break (write_region, epoch),
                Err(why) => last_seen = why,
            }
        }
        if Instant::now() >= deadline {
            return Err(VerifyError::Settle(format!(
                "replicas did not apply the whole log: {last_seen}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = account
        .status(Some(&write_region), true)
        .await
        .ok_or_else(|| VerifyError::Settle(format!("no node of {write_region} answers")))?;
    // Status lists the nodes of every region (never witnesses).
    let digests = status
        .nodes
        .iter()
        .map(|n| {
            let replica = ReplicaId {
                region: n.region.clone(),
                node: n.node_id,
            };
            n.items_digest
                .clone()
                .map(|d| (replica.clone(), d))
                .ok_or_else(|| VerifyError::Settle(format!("{replica} reported no state digest")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Settled {
        write_region,
        epoch,
        digests,
    })
}

/// Every node of every region runs, follows a leader its whole region
/// agrees on, has applied that leader's whole log and the write region
/// leader's GLSN, outside any re-sync; `Err` says what is still missing.
fn caught_up(status: &AccountStatus) -> Result<(), String> {
    let write_region = &status.write_region;
    let head = agreed_leader(status, write_region)
        .and_then(|l| l.applied_glsn)
        .ok_or_else(|| format!("no agreed leader in the write region {write_region}"))?;
    let regions: BTreeSet<&RegionId> = status.nodes.iter().map(|n| &n.region).collect();
    for region in regions {
        let leader =
            agreed_leader(status, region).ok_or_else(|| format!("no agreed leader in {region}"))?;
        for n in status.nodes.iter().filter(|n| n.region == *region) {
            let applied = n.applied_glsn.unwrap_or(Glsn::ZERO);
            if n.state != NODE_STATE_RUNNING {
                return Err(format!("{} is {}", n.node_id, n.state));
            }
            if n.applied_index < leader.last_log_index || applied < head || n.resyncing {
                return Err(format!(
                    "{} applied index {} of {}, {applied} of {head}{}",
                    n.node_id,
                    n.applied_index,
                    leader.last_log_index,
                    if n.resyncing { ", re-syncing" } else { "" }
                ));
            }
        }
    }
    Ok(())
}

/// The writes of the workload's container that failovers lost, as the
/// conflict feed of a running node of the write region lists them (the
/// feed's entries are committed there).
async fn read_lost_writes(
    account: &Cluster,
    write_region: &RegionId,
) -> Result<Vec<AccountedWrite>, VerifyError> {
    let settle = |e: String| VerifyError::Settle(format!("reading the conflict feed: {e}"));
    let node = account
        .region_nodes(write_region)
        .into_iter()
        .find(|n| account.is_up(*n))
        .ok_or_else(|| settle(format!("no node of {write_region} runs")))?;
    let client = Client::connect_direct(&account.endpoint(node))
        .await
        .map_err(|e| settle(e.to_string()))?;
    let mut feed = client
        .conflict_feed("", false)
        .await
        .map_err(|e| settle(e.to_string()))?;
    let mut lost = Vec::new();
    while let Some(message) = feed.next().await {
        let entry = message.map_err(|e| settle(e.to_string()))?.entry;
        if entry.container == CONTAINER && entry.kind == Some(ConflictKind::UnreplicatedWrite) {
            lost.push(accounted_write(
                entry.key,
                String::from_utf8_lossy(&entry.value.unwrap_or_default()).into_owned(),
            ));
        }
    }
    Ok(lost)
}

/// A lost item as the history names the write: a set member's item
/// (`set/<member>`) is an append of the member to the set's key.
fn accounted_write(key: String, value: String) -> AccountedWrite {
    match key.strip_prefix(SET_PREFIX) {
        Some(member) => AccountedWrite {
            key: SET_KEY.to_string(),
            value: member.to_string(),
        },
        None => AccountedWrite { key, value },
    }
}

/// Read-out of every register and of the whole set at `level`, through
/// a node of the write region, retried until it succeeds: the account may
/// still be electing after the last fault.
async fn read_final_state(
    client: &Client,
    level: Consistency,
) -> Result<BTreeMap<String, BTreeSet<String>>, VerifyError> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        match try_read_final_state(client, level).await {
            Ok(state) => return Ok(state),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("final read-out failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(VerifyError::Settle(format!("final read-out: {e}"))),
        }
    }
}

async fn try_read_final_state(
    client: &Client,
    level: Consistency,
) -> Result<BTreeMap<String, BTreeSet<String>>, crate::client::ClientError> {
    let opts = ReadOptions {
        consistency: Some(level),
        session_token: None,
    };
    let mut state = BTreeMap::new();
    for k in 0..REGISTER_KEYS {
        let key = workload::register_key(k);
        let item = client.get(CONTAINER, &key, &opts).await?.item;
        let values = item
            .into_iter()
            .map(|i| String::from_utf8_lossy(&i.value).into_owned())
            .collect();
        state.insert(key, values);
    }
    let range = ScanRange {
        prefix: Some(SET_PREFIX.into()),
        ..Default::default()
    };
    let mut members = BTreeSet::new();
    let mut continuation = String::new();
    loop {
        let page = client
            .scan(CONTAINER, &range, 1000, &continuation, &opts)
            .await?;
        members.extend(
            page.items
                .iter()
                .map(|i| String::from_utf8_lossy(&i.value).into_owned()),
        );
        if page.continuation.is_empty() {
            break;
        }
        continuation = page.continuation;
    }
    state.insert(SET_KEY.to_string(), members);
    Ok(state)
}

fn write_history(path: &Path, ops: &[Op]) -> Result<(), VerifyError> {
    let fail = |e: std::io::Error| VerifyError::HistoryFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    for op in ops {
        write_op(&mut out, op).map_err(fail)?;
    }
    std::io::Write::flush(&mut out).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_set_member_is_accounted_as_an_append_to_the_set() {
        assert_eq!(
            accounted_write("set/p4-7".into(), "p4-7".into()),
            AccountedWrite {
                key: SET_KEY.into(),
                value: "p4-7".into()
            }
        );
        assert_eq!(
            accounted_write("reg/3".into(), "p1-2".into()),
            AccountedWrite {
                key: "reg/3".into(),
                value: "p1-2".into()
            }
        );
    }
}
