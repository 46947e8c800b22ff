//! The fault layer: tests (and `meridian dev`) cut, delay or drop traffic
//! between nodes. Every node-to-node message of the replica transport asks
//! it for a verdict first. Rules are directed (`from -> to`), so one-way
//! partitions are expressible; drops use a seeded RNG so a run replays.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::ids::NodeId;

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
    rng: StdRng,
}

impl FaultRules {
    pub fn new(seed: u64) -> Self {
        Self {
            cut: HashSet::new(),
            stalled_streams: HashSet::new(),
            delay: HashMap::new(),
            drop_probability: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
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

    /// Removes every rule.
    pub fn heal(&self) {
        self.with(|r| {
            r.cut.clear();
            r.stalled_streams.clear();
            r.delay.clear();
            r.drop_probability.clear();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
