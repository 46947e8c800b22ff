//! The nemesis: faults on a schedule drawn from a seed, injected into the
//! account of a verify run (real processes, or nodes in this process). The same seed draws the same schedule (which fault,
//! on which node, for how long); which node leads at the moment a fault
//! starts depends on timing, so a replay repeats the plan, not every
//! interleaving (the deterministic simulation in issue 5 closes that gap).
//!
//! With several regions, region faults alternate with node faults (a
//! region fault first): a read region cut off from the rest of the
//! account, or one region's links to the others slowed down. With one
//! region the schedule is node faults only, as before regions existed, so
//! an old seed still draws its old plan.
//!
//! Each fault is undone before the next one starts, and everything is
//! healed when the schedule ends.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use crate::fault::Faults;
use crate::ids::{NodeId, RegionId};
use crate::verify::cluster::Cluster;

/// Quiet time between faults, and how long a fault lasts.
const GAP_MS: (u64, u64) = (500, 1500);
const HOLD_MS: (u64, u64) = (1000, 3000);
/// Latency added by a delay fault.
const DELAY_MS: u64 = 50;
/// Share of messages a drop fault loses.
const DROP_PROBABILITY: f64 = 0.3;
/// Latency added, each way, to every link of a delayed region. The low end
/// keeps the region online but trailing; past about 40 ms (with the
/// runner's 100 ms heartbeat and 20 ms WAN) the meta group's appends to the
/// region no longer arrive within a heartbeat, so the region loses its
/// lease and is taken out until the delay ends, like a slow cut.
const REGION_DELAY_MS: (u64, u64) = (10, 150);
/// Share of messages lost, each way, between a degraded region and the
/// others (beside its delay).
const REGION_DROP_PROBABILITY: f64 = 0.1;
/// How far, either way, a skewed clock is off: from well inside the
/// bounded-staleness T verify runs with (1 s) to three times it.
const CLOCK_SKEW_MS: (i64, i64) = (200, 3000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// One node cut off from all others.
    IsolateNode(usize),
    /// One node cut off one way: with `true` it hears nothing from the
    /// others (deaf: its heartbeats still go out, answers never come
    /// back), with `false` nothing it sends arrives (mute).
    OneWayNode(usize, bool),
    /// Whoever leads when the fault starts, cut off.
    IsolateLeader,
    /// Two halves that cannot reach each other.
    SplitHalves,
    /// Extra latency on every link of one node.
    DelayNode(usize),
    /// Random loss on every link of one node.
    DropNode(usize),
    /// One node stopped (killed with SIGKILL when it is a process), then
    /// started again on its data.
    RestartNode(usize),
    /// One node's process stopped with SIGSTOP, then continued: alive to
    /// the kernel, silent to its peers (a long GC pause, a stuck VM).
    PauseNode(usize),
    /// A region (by index in priority order, never 0: the first write
    /// region) cut off from every other region, meta group included. After
    /// a failover it may be the write region.
    CutRegion(usize),
    /// Whichever region takes the writes when the fault starts, cut off:
    /// if it stays cut off longer than its lease, writes fail over.
    CutWriteRegion,
    /// Whichever region takes the writes, cut off from the meta group's
    /// voters only: it cannot renew its lease, while its links to the
    /// other regions' remaining nodes still carry the geo log.
    CutWriteRegionFromMeta,
    /// Extra latency, in ms each way, and 10% message loss on every link
    /// between one region and the others, geo log streams included.
    DegradeRegion(usize, u64),
    /// One node's wall clock off by this many ms (ahead or behind): its
    /// hybrid logical clock and every wall-clock reading it makes (lag
    /// ages, transition ages). Leases run on monotonic clocks.
    SkewClock(usize, i64),
}

impl Fault {
    pub fn is_region_fault(&self) -> bool {
        matches!(
            self,
            Fault::CutRegion(_)
                | Fault::DegradeRegion(..)
                | Fault::CutWriteRegion
                | Fault::CutWriteRegionFromMeta
        )
    }
}

/// The account as the nemesis sees it.
#[derive(Debug, Clone)]
pub struct Topology {
    pub nodes: Vec<NodeId>,
    /// Each region and its nodes, in priority order: the write region first.
    pub regions: Vec<(RegionId, Vec<NodeId>)>,
}

impl Topology {
    pub fn of(account: &Cluster) -> Self {
        let regions = account
            .regions()
            .into_iter()
            .map(|r| {
                let nodes = account.region_nodes(&r);
                (r, nodes)
            })
            .collect();
        Self {
            nodes: account.node_ids(),
            regions,
        }
    }
}

/// What kinds of fault a schedule may draw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kinds {
    /// Write region cuts, so writes fail over.
    pub failover: bool,
    /// Pauses: the nodes are processes.
    pub pause: bool,
    /// Clock skews.
    pub clock: bool,
}

impl Kinds {
    /// What a run draws: every node fault (pauses when the nodes are
    /// processes) and clock skews, plus write region cuts with `failover`.
    pub fn for_run(failover: bool, processes: bool) -> Kinds {
        Kinds {
            failover,
            pause: processes,
            clock: true,
        }
    }
}

/// The faults `seed` schedules over `nodes` nodes in `regions` regions,
/// each with the gap before it and how long it holds: what a run injects,
/// in order, for as long as its duration allows.
pub fn schedule(
    seed: u64,
    nodes: usize,
    regions: usize,
    kinds: Kinds,
) -> impl Iterator<Item = (Fault, Duration, Duration)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..).map(move |index| draw_nth(&mut rng, index, nodes, regions, kinds))
}

/// The pure part: fault `index` of the schedule `rng` was seeded for,
/// over `nodes` nodes in `regions` regions.
pub fn draw_nth(
    rng: &mut StdRng,
    index: usize,
    nodes: usize,
    regions: usize,
    kinds: Kinds,
) -> (Fault, Duration, Duration) {
    if regions > 1 && index.is_multiple_of(2) {
        draw_region(rng, regions, kinds.failover)
    } else {
        draw(rng, nodes, kinds)
    }
}

/// A node fault, with its gap and hold; pauses and clock skews only when
/// `kinds` asks for them.
pub fn draw(rng: &mut StdRng, nodes: usize, kinds: Kinds) -> (Fault, Duration, Duration) {
    let node = rng.gen_range(0..nodes);
    let choices = 7 + u32::from(kinds.pause) + u32::from(kinds.clock);
    let fault = match rng.gen_range(0..choices) {
        6 => Fault::OneWayNode(node, rng.gen_bool(0.5)),
        7 if kinds.pause => Fault::PauseNode(node),
        7 | 8 => {
            let ms = rng.gen_range(CLOCK_SKEW_MS.0..=CLOCK_SKEW_MS.1);
            Fault::SkewClock(node, if rng.gen_bool(0.5) { ms } else { -ms })
        }
        0 => Fault::IsolateNode(node),
        1 => Fault::IsolateLeader,
        2 => Fault::SplitHalves,
        3 => Fault::DelayNode(node),
        4 => Fault::DropNode(node),
        _ => Fault::RestartNode(node),
    };
    (fault, draw_gap(rng), draw_hold(rng))
}

/// A region fault over `regions` (at least two), with its gap and hold.
/// With `failover`, a third of the region faults cut the write region off;
/// without, the schedule is the one from before write region cuts.
fn draw_region(rng: &mut StdRng, regions: usize, failover: bool) -> (Fault, Duration, Duration) {
    assert!(regions > 1, "region faults need a read region");
    let kind = if failover {
        rng.gen_range(0..3)
    } else {
        2 * u32::from(!rng.gen_bool(0.5))
    };
    let fault = match kind {
        0 => Fault::CutRegion(rng.gen_range(1..regions)),
        1 if rng.gen_bool(0.5) => Fault::CutWriteRegion,
        1 => Fault::CutWriteRegionFromMeta,
        _ => {
            let ms = rng.gen_range(REGION_DELAY_MS.0..=REGION_DELAY_MS.1);
            Fault::DegradeRegion(rng.gen_range(0..regions), ms)
        }
    };
    (fault, draw_gap(rng), draw_hold(rng))
}

fn draw_gap(rng: &mut StdRng) -> Duration {
    Duration::from_millis(rng.gen_range(GAP_MS.0..=GAP_MS.1))
}

fn draw_hold(rng: &mut StdRng) -> Duration {
    Duration::from_millis(rng.gen_range(HOLD_MS.0..=HOLD_MS.1))
}

/// One fault as it happened, for the summary.
#[derive(Debug, Clone)]
pub struct FaultEvent {
    pub fault: Fault,
    /// The region a region fault hit.
    pub region: Option<RegionId>,
    pub target: Vec<NodeId>,
    pub started_ms: u64,
    pub ended_ms: u64,
}

/// Runs the schedule until `deadline`, each gap and hold multiplied by
/// `time_scale`; returns what it did.
pub async fn run(
    account: Arc<Mutex<Cluster>>,
    failover: bool,
    seed: u64,
    time_scale: f64,
    started: Instant,
    deadline: Instant,
) -> Vec<FaultEvent> {
    assert!(
        time_scale > 0.0 && time_scale.is_finite(),
        "a nemesis time scale is positive"
    );
    let mut events = Vec::new();
    let (topology, kinds) = {
        let account = account.lock().await;
        let kinds = Kinds::for_run(failover, account.can_pause());
        (Topology::of(&account), kinds)
    };
    let (nodes, regions) = (topology.nodes.len(), topology.regions.len());
    for (fault, gap, hold) in schedule(seed, nodes, regions, kinds) {
        let (gap, hold) = (scaled(gap, time_scale), scaled(hold, time_scale));
        if Instant::now() + gap + hold >= deadline {
            break;
        }
        tokio::time::sleep(gap).await;
        let started_ms = started.elapsed().as_millis() as u64;
        let target = inject(&account, fault, &topology).await;
        let region = region_of(fault, &topology, &target);
        tracing::info!(?fault, ?region, ?target, "nemesis: fault on");
        tokio::time::sleep(hold).await;
        undo(&account, fault, &target).await;
        tracing::info!(?fault, "nemesis: fault off");
        events.push(FaultEvent {
            fault,
            region,
            target,
            started_ms,
            ended_ms: started.elapsed().as_millis() as u64,
        });
    }
    events
}

/// `d` times `scale`, in whole milliseconds (as the schedule draws
/// them), so a scale of 1 keeps the drawn times exactly.
fn scaled(d: Duration, scale: f64) -> Duration {
    Duration::from_millis((d.as_millis() as f64 * scale).round() as u64)
}

fn region_of(fault: Fault, topology: &Topology, target: &[NodeId]) -> Option<RegionId> {
    match fault {
        Fault::CutRegion(r) | Fault::DegradeRegion(r, _) => Some(topology.regions[r].0.clone()),
        Fault::CutWriteRegion | Fault::CutWriteRegionFromMeta => topology
            .regions
            .iter()
            .find(|(_, nodes)| target.first().is_some_and(|t| nodes.contains(t)))
            .map(|(name, _)| name.clone()),
        _ => None,
    }
}

/// Injects `fault` into the account and returns the nodes it targets.
async fn inject(account: &Arc<Mutex<Cluster>>, fault: Fault, topology: &Topology) -> Vec<NodeId> {
    let mut account = account.lock().await;
    let faults = account.faults().clone();
    let nodes = &topology.nodes;
    let target = match fault {
        Fault::IsolateNode(i) => {
            faults.isolate(nodes[i], nodes);
            vec![nodes[i]]
        }
        Fault::OneWayNode(i, deaf) => {
            cut_one_way(&faults, nodes, nodes[i], deaf);
            vec![nodes[i]]
        }
        Fault::IsolateLeader => isolate_leader(&account, &faults, nodes).await,
        Fault::SplitHalves => {
            let (a, b) = nodes.split_at(nodes.len() / 2);
            faults.partition(a, b);
            a.to_vec()
        }
        Fault::DelayNode(i) | Fault::DropNode(i) => {
            let delay = matches!(fault, Fault::DelayNode(_));
            slow_node_links(&faults, nodes, nodes[i], delay);
            vec![nodes[i]]
        }
        Fault::RestartNode(i) => {
            account.stop_node(nodes[i]).await;
            vec![nodes[i]]
        }
        Fault::PauseNode(i) => {
            account.pause_node(nodes[i]);
            vec![nodes[i]]
        }
        Fault::SkewClock(i, ms) => {
            faults.set_clock_offset(nodes[i], ms);
            vec![nodes[i]]
        }
        Fault::CutRegion(r) => {
            let inside = &topology.regions[r].1;
            faults.cut_off(inside, nodes);
            inside.clone()
        }
        Fault::CutWriteRegion => {
            let inside = write_region_nodes(&account, topology).await;
            faults.cut_off(&inside, nodes);
            inside
        }
        Fault::CutWriteRegionFromMeta => {
            cut_write_region_from_meta(&account, &faults, topology).await
        }
        Fault::DegradeRegion(r, ms) => {
            let inside = &topology.regions[r].1;
            degrade_region_links(&faults, nodes, inside, Duration::from_millis(ms));
            inside.clone()
        }
    };
    account.publish_faults().await;
    target
}

/// Cuts `node`'s links to every other node in one direction: deaf (it
/// hears nobody) or mute (nobody hears it).
fn cut_one_way(faults: &Faults, nodes: &[NodeId], node: NodeId, deaf: bool) {
    for other in nodes.iter().filter(|n| **n != node) {
        if deaf {
            faults.cut(*other, node);
        } else {
            faults.cut(node, *other);
        }
    }
}

/// Isolates the leader the account reports (the lowest id if several
/// claim it); returns it, or nothing when no node answers.
async fn isolate_leader(account: &Cluster, faults: &Faults, nodes: &[NodeId]) -> Vec<NodeId> {
    let status = account.status(None, false).await;
    let leader = status.and_then(|s| {
        s.nodes
            .iter()
            .filter(|n| n.role == "leader")
            .map(|n| n.node_id)
            .min()
    });
    if let Some(l) = leader {
        faults.isolate(l, nodes);
    }
    leader.into_iter().collect()
}

/// Delays, or drops a share of, every message between `node` and the
/// other nodes, both ways.
fn slow_node_links(faults: &Faults, nodes: &[NodeId], node: NodeId, delay: bool) {
    for other in nodes.iter().filter(|n| **n != node) {
        for (from, to) in [(node, *other), (*other, node)] {
            if delay {
                faults.delay(from, to, Duration::from_millis(DELAY_MS));
            } else {
                faults.drop_messages(from, to, DROP_PROBABILITY);
            }
        }
    }
}

/// Partitions the write region's nodes from the meta voters outside it;
/// returns the write region's nodes.
async fn cut_write_region_from_meta(
    account: &Cluster,
    faults: &Faults,
    topology: &Topology,
) -> Vec<NodeId> {
    let inside = write_region_nodes(account, topology).await;
    let voters: Vec<NodeId> = account
        .account()
        .meta_voters()
        .into_iter()
        .filter(|v| !inside.contains(v))
        .collect();
    faults.partition(&inside, &voters);
    inside
}

/// Delays every link between `inside` (a region's nodes) and the other
/// nodes by `delay` each way, and drops a share of its messages.
fn degrade_region_links(faults: &Faults, nodes: &[NodeId], inside: &[NodeId], delay: Duration) {
    for x in inside {
        for y in nodes.iter().filter(|n| !inside.contains(n)) {
            for (from, to) in [(*x, *y), (*y, *x)] {
                faults.delay(from, to, delay);
                faults.drop_messages(from, to, REGION_DROP_PROBABILITY);
            }
        }
    }
}

/// The nodes of the region the newest meta view names as the write
/// region (none when no node answers).
async fn write_region_nodes(account: &Cluster, topology: &Topology) -> Vec<NodeId> {
    let write_region = account.write_region().await.map(|(r, _)| r);
    topology
        .regions
        .iter()
        .find(|(name, _)| Some(name) == write_region.as_ref())
        .map(|(_, inside)| inside.clone())
        .unwrap_or_default()
}

async fn undo(account: &Arc<Mutex<Cluster>>, fault: Fault, target: &[NodeId]) {
    let mut account = account.lock().await;
    match fault {
        Fault::RestartNode(_) => {
            for node in target {
                if let Err(e) = account.restart_node(*node).await {
                    tracing::error!(%node, "nemesis could not restart the node: {e}");
                }
            }
        }
        Fault::PauseNode(_) => {
            for node in target {
                account.resume_node(*node);
            }
        }
        _ => {}
    }
    account.heal().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_schedule() {
        let plan = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|_| draw(&mut rng, 4, Kinds::default()))
                .collect::<Vec<_>>()
        };
        assert_eq!(plan(42), plan(42));
        assert_ne!(plan(42), plan(43));
        let faults: std::collections::HashSet<_> = plan(42)
            .into_iter()
            .map(|(f, _, _)| std::mem::discriminant(&f))
            .collect();
        assert!(faults.len() >= 4, "a schedule mixes kinds of fault");
        let one_way: Vec<bool> = (0..20)
            .flat_map(|seed| plan(seed).into_iter())
            .filter_map(|(f, _, _)| match f {
                Fault::OneWayNode(_, deaf) => Some(deaf),
                _ => None,
            })
            .collect();
        assert!(
            one_way.contains(&true) && one_way.contains(&false),
            "one-way cuts go both ways: {one_way:?}"
        );
    }

    #[test]
    fn one_region_draws_the_node_schedule_of_before_regions() {
        let nth = |regions| {
            let mut rng = StdRng::seed_from_u64(7);
            (0..20)
                .map(|i| draw_nth(&mut rng, i, 4, regions, Kinds::default()))
                .collect::<Vec<_>>()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let plain: Vec<_> = (0..20)
            .map(|_| draw(&mut rng, 4, Kinds::default()))
            .collect();
        assert_eq!(nth(1), plain);
        assert_ne!(nth(3), plain);
    }

    #[test]
    fn several_regions_alternate_region_and_node_faults_and_cut_the_write_region_by_role() {
        let mut write_region_cuts = [0, 0];
        for (seed, failover) in (0..100).map(|s| (s, s % 2 == 1)) {
            let mut rng = StdRng::seed_from_u64(seed);
            for i in 0..20 {
                let kinds = Kinds {
                    failover,
                    ..Kinds::default()
                };
                let (fault, _, _) = draw_nth(&mut rng, i, 12, 3, kinds);
                assert_eq!(
                    fault.is_region_fault(),
                    i % 2 == 0,
                    "seed {seed} #{i}: {fault:?}"
                );
                match fault {
                    Fault::CutRegion(r) => assert!((1..3).contains(&r), "{fault:?}"),
                    Fault::CutWriteRegion | Fault::CutWriteRegionFromMeta => {
                        write_region_cuts[usize::from(failover)] += 1
                    }
                    Fault::DegradeRegion(r, ms) => {
                        assert!(r < 3, "{fault:?}");
                        assert!((REGION_DELAY_MS.0..=REGION_DELAY_MS.1).contains(&ms));
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(
            write_region_cuts[0], 0,
            "a write region cut without failover faults"
        );
        assert!(
            write_region_cuts[1] > 50,
            "only {} write region cuts",
            write_region_cuts[1]
        );
    }

    #[test]
    fn failover_faults_cut_the_write_region_off_whole_and_from_the_meta_group_alone() {
        let (mut whole, mut from_meta) = (0, 0);
        for seed in 0..50 {
            for (fault, _, _) in schedule(seed, 12, 3, Kinds::for_run(true, false)).take(20) {
                match fault {
                    Fault::CutWriteRegion => whole += 1,
                    Fault::CutWriteRegionFromMeta => from_meta += 1,
                    _ => {}
                }
            }
        }
        assert!(
            whole > 20 && from_meta > 20,
            "{whole} whole, {from_meta} from the meta group"
        );
        let without: usize = (0..50)
            .flat_map(|seed| schedule(seed, 12, 3, Kinds::for_run(false, false)).take(20))
            .filter(|(f, _, _)| matches!(f, Fault::CutWriteRegionFromMeta))
            .count();
        assert_eq!(without, 0);
    }

    #[test]
    fn clock_skews_and_pauses_are_drawn_only_when_asked_for_and_skews_go_both_ways() {
        let count = |kinds: Kinds| {
            let mut rng = StdRng::seed_from_u64(11);
            let (mut pauses, mut ahead, mut behind) = (0, 0, 0);
            for _ in 0..400 {
                match draw(&mut rng, 12, kinds).0 {
                    Fault::PauseNode(_) => pauses += 1,
                    Fault::SkewClock(node, ms) => {
                        assert!(node < 12);
                        assert!((CLOCK_SKEW_MS.0..=CLOCK_SKEW_MS.1).contains(&ms.abs()));
                        if ms > 0 { ahead += 1 } else { behind += 1 }
                    }
                    _ => {}
                }
            }
            (pauses, ahead, behind)
        };
        assert_eq!(count(Kinds::default()), (0, 0, 0));
        let (pauses, ahead, behind) = count(Kinds::for_run(false, false));
        assert_eq!(pauses, 0);
        assert!(ahead > 10 && behind > 10, "{ahead} ahead, {behind} behind");
        let (pauses, ahead, behind) = count(Kinds::for_run(false, true));
        assert!(pauses > 10 && ahead + behind > 20);
    }
}
