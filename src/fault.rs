//! The fault layer: tests (and `meridian dev`) cut, delay or drop traffic
//! between nodes. Every node-to-node message of the replica transport asks
//! it for a verdict first. Rules are directed (`from -> to`), so one-way
//! partitions are expressible; drops use a seeded RNG so a run replays.
//! It also skews nodes' wall clocks: each node registers its clock
//! ([`Faults::register_clock`]) and follows the offset set for it.
//!
//! Who may steer it: the process that owns the nodes (tests, `meridian
//! verify`) through a [`Faults`] handle, and, on nodes of an in-process
//! account only ([`FaultInjection::InProcess`]), a client through
//! `Admin.Fault` (`meridian fault isolate REGION`, `meridian fault heal`).
//! A deployed node (`meridian server`) has no faults and refuses that RPC.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::AccountConfig;
use crate::hlc::Hlc;
use crate::ids::{NodeId, RegionId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Deliver { delay: Duration },
    Drop,
}

/// The rules, and the pure decision over them.
#[derive(Debug)]
pub struct FaultRules {
    cut: HashSet<(NodeId, NodeId)>,
    /// Links whose geo streams (shipping, fetching) carry nothing, while
    /// calls still pass: a region that lags without losing its lease.
    stalled_streams: HashSet<(NodeId, NodeId)>,
    delay: HashMap<(NodeId, NodeId), Duration>,
    drop_probability: HashMap<(NodeId, NodeId), f64>,
    /// Milliseconds each skewed node's wall clock is off by.
    clock_offsets: HashMap<NodeId, i64>,
    /// The clocks of the nodes that follow this layer.
    clocks: HashMap<NodeId, Arc<Hlc>>,
    rng: StdRng,
}

impl FaultRules {
    pub fn new(seed: u64) -> Self {
        Self {
            cut: HashSet::new(),
            stalled_streams: HashSet::new(),
            delay: HashMap::new(),
            drop_probability: HashMap::new(),
            clock_offsets: HashMap::new(),
            clocks: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn set_clock_offset(&mut self, node: NodeId, offset_ms: i64) {
        if offset_ms == 0 {
            self.clock_offsets.remove(&node);
        } else {
            self.clock_offsets.insert(node, offset_ms);
        }
        if let Some(clock) = self.clocks.get(&node) {
            clock.set_offset_ms(offset_ms);
        }
    }

    pub fn verdict(&mut self, from: NodeId, to: NodeId) -> Verdict {
        let link = (from, to);
        if self.cut.contains(&link) {
            return Verdict::Drop;
        }
        if let Some(p) = self.drop_probability.get(&link)
            && self.rng.gen_bool(*p)
        {
            return Verdict::Drop;
        }
        Verdict::Deliver {
            delay: self.delay.get(&link).copied().unwrap_or_default(),
        }
    }

    /// The verdict on one message of a stream from `from` to `to`.
    pub fn stream_verdict(&mut self, from: NodeId, to: NodeId) -> Verdict {
        if self.stalled_streams.contains(&(from, to)) {
            return Verdict::Drop;
        }
        self.verdict(from, to)
    }
}

/// A cloneable handle on the rules shared by every node of one process.
#[derive(Debug, Clone)]
pub struct Faults {
    /// A std lock: held only to read or change the rules, never across an
    /// `.await`.
    rules: Arc<Mutex<FaultRules>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Self {
            rules: Arc::new(Mutex::new(FaultRules::new(seed))),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut FaultRules) -> T) -> T {
        f(&mut self.rules.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn verdict(&self, from: NodeId, to: NodeId) -> Verdict {
        self.with(|r| r.verdict(from, to))
    }

    /// Drops every message from `from` to `to` (one way).
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.with(|r| r.cut.insert((from, to)));
    }

    pub fn stream_verdict(&self, from: NodeId, to: NodeId) -> Verdict {
        self.with(|r| r.stream_verdict(from, to))
    }

    /// Geo streams from any node of `from` to any node of `to` carry
    /// nothing; calls and raft traffic still pass.
    pub fn stall_streams(&self, from: &[NodeId], to: &[NodeId]) {
        self.with(|r| {
            for &x in from {
                for &y in to {
                    r.stalled_streams.insert((x, y));
                }
            }
        });
    }

    /// Cuts both directions between every node of `a` and every node of `b`.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        self.with(|r| {
            for &x in a {
                for &y in b {
                    r.cut.insert((x, y));
                    r.cut.insert((y, x));
                }
            }
        });
    }

    /// Cuts `node` off from every node in `others`, both ways.
    pub fn isolate(&self, node: NodeId, others: &[NodeId]) {
        let others: Vec<NodeId> = others.iter().copied().filter(|o| *o != node).collect();
        self.partition(&[node], &others);
    }

    pub fn delay(&self, from: NodeId, to: NodeId, delay: Duration) {
        self.with(|r| r.delay.insert((from, to), delay));
    }

    /// Drops each message from `from` to `to` with probability `p` in 0..=1.
    pub fn drop_messages(&self, from: NodeId, to: NodeId, p: f64) {
        assert!(
            (0.0..=1.0).contains(&p),
            "drop probability {p} outside 0..=1"
        );
        self.with(|r| r.drop_probability.insert((from, to), p));
    }

    /// Cuts every node of `inside` off from every other node of `all`,
    /// both ways.
    pub fn cut_off(&self, inside: &[NodeId], all: &[NodeId]) {
        self.partition(inside, &outside(inside, all));
    }

    /// True when every link between `inside` and the rest of `all` is cut,
    /// both ways; false when `inside` is empty or is all of `all`.
    pub fn is_cut_off(&self, inside: &[NodeId], all: &[NodeId]) -> bool {
        let outside = outside(inside, all);
        if inside.is_empty() || outside.is_empty() {
            return false;
        }
        self.with(|r| {
            inside.iter().all(|&x| {
                outside
                    .iter()
                    .all(|&y| r.cut.contains(&(x, y)) && r.cut.contains(&(y, x)))
            })
        })
    }

    /// Carries out a client's request on the nodes of `account` and
    /// returns the regions cut off from the rest afterwards. `Err` is the
    /// caller's mistake (a region the account does not have), in words.
    pub fn apply(
        &self,
        account: &AccountConfig,
        action: &FaultAction,
    ) -> Result<Vec<RegionId>, String> {
        let all: Vec<NodeId> = account.all_nodes().map(|n| n.id).collect();
        match action {
            FaultAction::Isolate(name) => {
                let region = account.region(name).ok_or_else(|| {
                    let known: Vec<&str> =
                        account.regions.iter().map(|r| r.name.as_str()).collect();
                    format!(
                        "{name} is not a region of the account (the regions are {})",
                        known.join(", ")
                    )
                })?;
                let inside: Vec<NodeId> = region.nodes.iter().map(|n| n.id).collect();
                self.cut_off(&inside, &all);
            }
            FaultAction::Heal => self.heal(),
            FaultAction::Replace { links, clocks } => self.replace(links, clocks),
        }
        Ok(account
            .regions
            .iter()
            .filter(|r| {
                let inside: Vec<NodeId> = r.nodes.iter().map(|n| n.id).collect();
                self.is_cut_off(&inside, &all)
            })
            .map(|r| r.name.clone())
            .collect())
    }

    /// Every rule, one entry per directed link that has any.
    pub fn links(&self) -> Vec<LinkRule> {
        self.with(|r| {
            let mut links: Vec<(NodeId, NodeId)> = r
                .cut
                .iter()
                .chain(&r.stalled_streams)
                .chain(r.delay.keys())
                .chain(r.drop_probability.keys())
                .copied()
                .collect();
            links.sort();
            links.dedup();
            links
                .into_iter()
                .map(|link| LinkRule {
                    from: link.0,
                    to: link.1,
                    cut: r.cut.contains(&link),
                    stalled: r.stalled_streams.contains(&link),
                    delay: r.delay.get(&link).copied().unwrap_or_default(),
                    drop_probability: r.drop_probability.get(&link).copied().unwrap_or(0.0),
                })
                .collect()
        })
    }

    /// Node `node`'s wall clock follows this layer from now on (a
    /// restarted node registers its new clock), starting at the offset
    /// set for it.
    pub fn register_clock(&self, node: NodeId, clock: Arc<Hlc>) {
        self.with(|r| {
            clock.set_offset_ms(r.clock_offsets.get(&node).copied().unwrap_or(0));
            r.clocks.insert(node, clock);
        });
    }

    /// Skews node `node`'s wall clock by `offset_ms` (0 undoes it).
    pub fn set_clock_offset(&self, node: NodeId, offset_ms: i64) {
        self.with(|r| r.set_clock_offset(node, offset_ms));
    }

    /// Every skewed node's offset, by node.
    pub fn clock_offsets(&self) -> Vec<(NodeId, i64)> {
        self.with(|r| {
            let mut offsets: Vec<(NodeId, i64)> =
                r.clock_offsets.iter().map(|(n, o)| (*n, *o)).collect();
            offsets.sort();
            offsets
        })
    }

    /// Replaces every rule with `links` and every clock offset with
    /// `clocks`.
    pub fn replace(&self, links: &[LinkRule], clocks: &[(NodeId, i64)]) {
        self.heal();
        self.with(|r| {
            for (node, offset_ms) in clocks {
                r.set_clock_offset(*node, *offset_ms);
            }
            for l in links {
                let link = (l.from, l.to);
                if l.cut {
                    r.cut.insert(link);
                }
                if l.stalled {
                    r.stalled_streams.insert(link);
                }
                if !l.delay.is_zero() {
                    r.delay.insert(link, l.delay);
                }
                if l.drop_probability > 0.0 {
                    r.drop_probability.insert(link, l.drop_probability);
                }
            }
        });
    }

    /// Removes every rule and sets every clock right.
    pub fn heal(&self) {
        self.with(|r| {
            r.cut.clear();
            r.stalled_streams.clear();
            r.delay.clear();
            r.drop_probability.clear();
            for node in r.clock_offsets.keys().copied().collect::<Vec<_>>() {
                r.set_clock_offset(node, 0);
            }
        });
    }
}

/// The nodes of `all` that are not in `inside`.
fn outside(inside: &[NodeId], all: &[NodeId]) -> Vec<NodeId> {
    all.iter()
        .copied()
        .filter(|n| !inside.contains(n))
        .collect()
}

/// What a client may ask of an in-process account's fault layer.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Cut every link between the region and the rest of the account.
    Isolate(RegionId),
    /// Remove every rule.
    Heal,
    /// Replace every rule with these links and clock offsets.
    Replace {
        links: Vec<LinkRule>,
        clocks: Vec<(NodeId, i64)>,
    },
}

/// The rules of one directed link: what [`Faults::links`] lists and
/// [`Faults::replace`] installs, so one process can steer the fault
/// layers of others.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRule {
    pub from: NodeId,
    pub to: NodeId,
    pub cut: bool,
    pub stalled: bool,
    pub delay: Duration,
    pub drop_probability: f64,
}

/// Whether a node's fault layer exists and who may steer it.
#[derive(Debug, Clone)]
pub enum FaultInjection {
    /// A deployed node (`meridian server`): nothing is injected, and
    /// `Admin.Fault` is refused.
    Off,
    /// A node of an in-process account (`meridian dev`, tests): the layer
    /// every node of the process shares, which clients may also steer
    /// through `Admin.Fault`.
    InProcess(Faults),
    /// A `meridian server` that `meridian verify` started (with
    /// [`FAULT_INJECTION_ENV`] set): a layer of its own, which verify
    /// steers through `Faults.Apply` with every rule it keeps.
    Steered(Faults),
}

/// Set in the environment of the `meridian server` processes `meridian
/// verify` starts, and only there: the node then keeps a fault layer and
/// carries out `Faults.Apply`. A deployed node must never have it.
pub const FAULT_INJECTION_ENV: &str = "MERIDIAN_FAULT_INJECTION";

impl FaultInjection {
    /// What `meridian server` runs with: off, unless the environment
    /// names [`FAULT_INJECTION_ENV`].
    pub fn for_server() -> FaultInjection {
        if std::env::var_os(FAULT_INJECTION_ENV).is_some() {
            tracing::warn!(
                "{FAULT_INJECTION_ENV} is set: this node obeys Faults.Apply (a verify run, not a deployment)"
            );
            FaultInjection::Steered(Faults::default())
        } else {
            FaultInjection::Off
        }
    }

    /// The layer the node's transport asks for verdicts: an empty one,
    /// never changed, when injection is off.
    pub fn faults(&self) -> Faults {
        match self {
            FaultInjection::Off => Faults::default(),
            FaultInjection::InProcess(faults) | FaultInjection::Steered(faults) => faults.clone(),
        }
    }

    /// The layer clients may steer, if any.
    pub fn steerable(&self) -> Option<Faults> {
        match self {
            FaultInjection::Off => None,
            FaultInjection::InProcess(faults) | FaultInjection::Steered(faults) => {
                Some(faults.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_clock_follows_its_offset_through_replace_heal_and_restart() {
        let f = Faults::new(1);
        let n1 = Arc::new(Hlc::default());
        let n2 = Arc::new(Hlc::default());
        f.register_clock(NodeId(1), n1.clone());
        f.register_clock(NodeId(2), n2.clone());
        let ahead = |c: &Hlc| c.wall_ms() as i64 - crate::hlc::wall_ms() as i64;

        f.set_clock_offset(NodeId(1), 5_000);
        assert!((4_900..=5_100).contains(&ahead(&n1)));
        assert!(ahead(&n2).abs() < 100, "only n1 is skewed");

        // Another layer's rules, as verify pushes them to a process.
        let other = Faults::new(2);
        let n2_elsewhere = Arc::new(Hlc::default());
        other.register_clock(NodeId(2), n2_elsewhere.clone());
        other.replace(&[], &[(NodeId(2), -3_000)]);
        assert!((-3_100..=-2_900).contains(&ahead(&n2_elsewhere)));
        assert_eq!(other.clock_offsets(), vec![(NodeId(2), -3_000)]);

        // A node restarted while skewed starts skewed.
        let n1_again = Arc::new(Hlc::default());
        f.register_clock(NodeId(1), n1_again.clone());
        assert!((4_900..=5_100).contains(&ahead(&n1_again)));

        f.heal();
        assert!(ahead(&n1_again).abs() < 100);
        assert!(f.clock_offsets().is_empty());
    }

    #[test]
    fn links_replace_into_the_same_rules() {
        let f = Faults::new(1);
        f.partition(&[NodeId(1)], &[NodeId(2)]);
        f.stall_streams(&[NodeId(3)], &[NodeId(4)]);
        f.delay(NodeId(2), NodeId(3), Duration::from_millis(70));
        f.drop_messages(NodeId(4), NodeId(1), 0.25);
        let links = f.links();
        assert_eq!(links.len(), 5, "{links:?}");
        let other = Faults::new(2);
        other.cut(NodeId(9), NodeId(8));
        other.replace(&links, &[]);
        assert_eq!(other.links(), links);
        assert_eq!(other.verdict(NodeId(2), NodeId(1)), Verdict::Drop);
        assert_ne!(other.verdict(NodeId(9), NodeId(8)), Verdict::Drop);
        assert_eq!(
            other.verdict(NodeId(2), NodeId(3)),
            Verdict::Deliver {
                delay: Duration::from_millis(70)
            }
        );
    }

    #[test]
    fn partitions_are_two_way_and_cuts_one_way() {
        let f = Faults::new(1);
        f.partition(&[NodeId(1)], &[NodeId(2), NodeId(3)]);
        f.cut(NodeId(4), NodeId(5));
        assert_eq!(f.verdict(NodeId(1), NodeId(2)), Verdict::Drop);
        assert_eq!(f.verdict(NodeId(3), NodeId(1)), Verdict::Drop);
        assert_ne!(f.verdict(NodeId(2), NodeId(3)), Verdict::Drop);
        assert_eq!(f.verdict(NodeId(4), NodeId(5)), Verdict::Drop);
        assert_ne!(f.verdict(NodeId(5), NodeId(4)), Verdict::Drop);
        f.heal();
        assert_ne!(f.verdict(NodeId(1), NodeId(2)), Verdict::Drop);
    }

    #[test]
    fn drops_replay_from_the_seed() {
        let run = |seed| {
            let f = Faults::new(seed);
            f.drop_messages(NodeId(1), NodeId(2), 0.5);
            (0..64)
                .map(|_| f.verdict(NodeId(1), NodeId(2)) == Verdict::Drop)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert!(run(7).iter().any(|d| *d) && run(7).iter().any(|d| !*d));
    }

    #[test]
    fn delays_apply_per_link() {
        let f = Faults::new(0);
        f.delay(NodeId(1), NodeId(2), Duration::from_millis(40));
        assert_eq!(
            f.verdict(NodeId(1), NodeId(2)),
            Verdict::Deliver {
                delay: Duration::from_millis(40)
            }
        );
        assert_eq!(
            f.verdict(NodeId(2), NodeId(1)),
            Verdict::Deliver {
                delay: Duration::ZERO
            }
        );
    }

    fn account_of_three() -> AccountConfig {
        let toml = r#"
            [node]
            id = 1
            data_dir = "/tmp/unused"
            [account]
            name = "a"
            [[account.regions]]
            name = "west"
            nodes = [{ id = 1, client_addr = "127.0.0.1:1", peer_addr = "127.0.0.1:2" },
                     { id = 2, client_addr = "127.0.0.1:3", peer_addr = "127.0.0.1:4" }]
            [[account.regions]]
            name = "east"
            nodes = [{ id = 3, client_addr = "127.0.0.1:5", peer_addr = "127.0.0.1:6" }]
            [[account.regions]]
            name = "north"
            nodes = [{ id = 4, client_addr = "127.0.0.1:7", peer_addr = "127.0.0.1:8" }]
        "#;
        crate::config::Config::from_toml(toml)
            .expect("a valid account")
            .account
    }

    #[test]
    fn isolating_a_region_cuts_it_off_and_heal_restores_it() {
        let account = account_of_three();
        let f = Faults::new(0);
        let isolated = f
            .apply(&account, &FaultAction::Isolate(RegionId::new("west")))
            .unwrap();
        assert_eq!(isolated, [RegionId::new("west")]);
        assert_eq!(f.verdict(NodeId(2), NodeId(3)), Verdict::Drop);
        assert_eq!(f.verdict(NodeId(4), NodeId(1)), Verdict::Drop);
        // Inside the region and among the others, traffic still flows.
        assert_ne!(f.verdict(NodeId(1), NodeId(2)), Verdict::Drop);
        assert_ne!(f.verdict(NodeId(3), NodeId(4)), Verdict::Drop);
        let both = f
            .apply(&account, &FaultAction::Isolate(RegionId::new("north")))
            .unwrap();
        // With two of three regions cut off, east hears from no one either.
        let all = ["west", "east", "north"].map(RegionId::new);
        assert_eq!(both, all);
        assert_eq!(f.apply(&account, &FaultAction::Heal).unwrap(), []);
        assert_ne!(f.verdict(NodeId(2), NodeId(3)), Verdict::Drop);
    }

    #[test]
    fn an_unknown_region_is_refused_with_the_regions_listed() {
        let f = Faults::new(0);
        let err = f
            .apply(
                &account_of_three(),
                &FaultAction::Isolate(RegionId::new("mars")),
            )
            .unwrap_err();
        assert_eq!(
            err,
            "mars is not a region of the account (the regions are west, east, north)"
        );
    }

    #[test]
    fn a_one_way_cut_is_not_a_cut_off_region() {
        let f = Faults::new(0);
        let all = [NodeId(1), NodeId(2), NodeId(3)];
        f.cut(NodeId(1), NodeId(2));
        f.cut(NodeId(1), NodeId(3));
        assert!(!f.is_cut_off(&[NodeId(1)], &all));
        f.cut_off(&[NodeId(1)], &all);
        assert!(f.is_cut_off(&[NodeId(1)], &all));
        assert!(!f.is_cut_off(&all, &all), "nothing is outside");
        assert!(!f.is_cut_off(&[], &all));
    }

    #[test]
    fn injection_off_gives_an_empty_layer_no_client_can_steer() {
        assert!(FaultInjection::Off.steerable().is_none());
        let shared = Faults::new(0);
        let injection = FaultInjection::InProcess(shared.clone());
        injection.steerable().unwrap().cut(NodeId(1), NodeId(2));
        assert_eq!(shared.verdict(NodeId(1), NodeId(2)), Verdict::Drop);
        assert_eq!(
            injection.faults().verdict(NodeId(1), NodeId(2)),
            Verdict::Drop
        );
    }
}
