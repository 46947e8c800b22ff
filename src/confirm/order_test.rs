//! Order independence of the confirmation rule, by property test.
//!
//! Each case simulates an account: 3–5 regions, 1–3 containers of every
//! policy, 1–4 keys. At each step a region takes a client write (its base is
//! its view: the hub's confirmed log as far as it received it, plus its own
//! tentative writes), or the hub confirms the next write of an origin, or a
//! region receives more of the hub's log. That gives a set of writes with
//! realistic bases. The set is then confirmed at fresh hubs in many random
//! orders that keep per-origin order and base order, and every order must
//! give the same items, the same feed, and a delta stream that rebuilds the
//! feed. The accounting property (every write is the current version, seen
//! by a later write of its key, merged into a CRDT, or in the feed once) is
//! checked against models computed from the writes alone.
//!
//! Run it longer with `PROPTEST_CASES=5000 cargo nextest run -E
//! 'test(/order_test/)'`. A failure prints the minimal run and persists its
//! seed under `proptest-regressions/`; `PROPTEST_RNG_SEED=N` replays a seed.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::container::{ContainerPolicy, ContainerSpec};
use crate::crdt::{CrdtOp, CrdtRead, CrdtRequest, CrdtValue};
use crate::dot::{Dot, VersionVector};
use crate::ids::RegionId;

use super::feed::{self, Feed};
use super::hub::{Confirmation, Current, Hub, ItemKey};
use super::write::{PutKind, Write, WriteOp};

const REGION_NAMES: [&str; 5] = ["east", "west", "north", "south", "central"];
const POLICIES: [&str; 7] = [
    "lww",
    "lww:/priority",
    "lww --no-feed-for-lww",
    "custom",
    "counter",
    "set",
    "register",
];
const MEMBERS: [&str; 3] = ["a", "b", "c"];
/// Orders tried per case, besides the simulated hub's own.
const ORDERS_PER_CASE: usize = 12;
/// About 5 s in a debug build.
const CASES_DEFAULT: u32 = 256;

#[derive(Debug, Clone)]
enum Step {
    Write {
        region: usize,
        container: usize,
        key: usize,
        choice: u8,
        ts_step: u8,
    },
    Confirm {
        region: usize,
    },
    Receive {
        region: usize,
        share: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..5usize, 0..21usize, 0..4usize, any::<u8>(), 0..3u8).prop_map(
            |(region, container, key, choice, ts_step)| Step::Write {
                region,
                container,
                key,
                choice,
                ts_step
            }
        ),
        3 => (0..5usize).prop_map(|region| Step::Confirm { region }),
        2 => (0..5usize, any::<u8>()).prop_map(|(region, share)| Step::Receive { region, share }),
    ]
}

/// The shape of an account and what happens in it.
#[derive(Debug, Clone)]
struct Run {
    regions: usize,
    containers_per_policy: usize,
    keys: usize,
    steps: Vec<Step>,
    order_seeds: Vec<u64>,
}

fn run() -> impl Strategy<Value = Run> {
    (
        3..=5usize,
        1..=3usize,
        1..=4usize,
        prop::collection::vec(step(), 1..80),
        prop::collection::vec(any::<u64>(), ORDERS_PER_CASE),
    )
        .prop_map(
            |(regions, containers_per_policy, keys, steps, order_seeds)| Run {
                regions,
                containers_per_policy,
                keys,
                steps,
                order_seeds,
            },
        )
}

/// One region of the simulated account.
struct Region {
    name: RegionId,
    /// The hub's confirmed log applied as far as received.
    replica: Hub,
    received: usize,
    /// Every write this region took, in LSN order (LSN = index + 1).
    own: Vec<Write>,
    hlc: u64,
}

struct Account {
    specs: Vec<ContainerSpec>,
    keys: usize,
    regions: Vec<Region>,
    hub: Hub,
    log: Vec<Write>,
    /// The `by` of every `incr` a client sent, by the write's dot: the
    /// counter model's input.
    counter_by: BTreeMap<Dot, i64>,
}

fn hub_with(specs: &[ContainerSpec]) -> Hub {
    let mut hub = Hub::new();
    for spec in specs {
        hub.create_container(spec).expect("fresh containers");
    }
    hub
}

impl Account {
    fn new(run: &Run) -> Self {
        let mut specs = Vec::new();
        for policy in POLICIES {
            for i in 0..run.containers_per_policy {
                let name: String = policy.chars().filter(|c| c.is_ascii_alphabetic()).collect();
                specs.push(ContainerSpec {
                    name: format!("{name}{i}"),
                    policy: policy.parse().expect("a valid policy"),
                });
            }
        }
        let regions = REGION_NAMES[..run.regions]
            .iter()
            .map(|name| Region {
                name: RegionId::new(*name),
                replica: hub_with(&specs),
                received: 0,
                own: Vec::new(),
                hlc: 0,
            })
            .collect();
        Self {
            hub: hub_with(&specs),
            specs,
            keys: run.keys,
            regions,
            log: Vec::new(),
            counter_by: BTreeMap::new(),
        }
    }

    fn step(&mut self, step: &Step) {
        match *step {
            Step::Write {
                region,
                container,
                key,
                choice,
                ts_step,
            } => {
                let spec = &self.specs[container % self.specs.len()];
                let key = format!("k{}", key % self.keys);
                let index = region % self.regions.len();
                let region = &mut self.regions[index];
                let (write, request) = take_write(region, spec, key, choice, ts_step);
                if let Some(CrdtRequest::Incr { by }) = request {
                    self.counter_by.insert(write.dot.clone(), by);
                }
                region.own.push(write);
            }
            Step::Confirm { region } => {
                let region = &self.regions[region % self.regions.len()];
                let next = self.hub.confirmed().get(&region.name) as usize;
                if let Some(write) = region.own.get(next) {
                    let outcome = self.hub.confirm(write);
                    assert!(
                        matches!(outcome, Ok(Confirmation::Applied { .. })),
                        "the live hub confirms {}: {outcome:?}",
                        write.dot
                    );
                    self.log.push(write.clone());
                }
            }
            Step::Receive { region, share } => {
                let index = region % self.regions.len();
                let region = &mut self.regions[index];
                let missing = self.log.len() - region.received;
                let upto = region.received + (missing * (usize::from(share) + 1)).div_ceil(256);
                for write in &self.log[region.received..upto] {
                    let outcome = region.replica.confirm(write);
                    assert!(matches!(outcome, Ok(Confirmation::Applied { .. })));
                    region.hlc = region.hlc.max(write.ts);
                }
                region.received = upto;
            }
        }
    }

    fn all_writes(&self) -> Vec<&Write> {
        self.regions.iter().flat_map(|r| r.own.iter()).collect()
    }
}

/// A region takes a client write from its view of the key.
fn take_write(
    region: &mut Region,
    spec: &ContainerSpec,
    key: String,
    choice: u8,
    ts_step: u8,
) -> (Write, Option<CrdtRequest>) {
    let lsn = region.own.len() as u64 + 1;
    let dot = Dot::new(region.name.clone(), lsn);
    let mut base = region.replica.confirmed().clone();
    if lsn > 1 {
        base.observe(&Dot::new(region.name.clone(), lsn - 1));
    }
    region.hlc += u64::from(ts_step);
    let pending: Vec<&Write> = region
        .own
        .iter()
        .filter(|w| w.dot.lsn > region.replica.confirmed().get(&region.name))
        .filter(|w| w.container == spec.name && w.key == key)
        .collect();
    let mut sent = None;
    let op = match spec.policy.crdt_kind() {
        Some(kind) => {
            let mut view = match region.replica.item(&spec.name, &key) {
                Some(Current::Crdt(value)) => value,
                _ => CrdtValue::new(kind),
            };
            for w in &pending {
                let WriteOp::Crdt(op) = &w.op else {
                    unreachable!("a CRDT container only takes CRDT operations");
                };
                view.apply(op)
                    .expect("own pending operations apply causally");
            }
            let request = crdt_request(&spec.policy, choice, &dot);
            let op = view
                .prepare(&region.name, &request)
                .expect("small requests");
            sent = Some(request);
            WriteOp::Crdt(op)
        }
        None if choice.is_multiple_of(4) => WriteOp::Delete,
        None => {
            let live = match pending.last() {
                Some(w) => matches!(w.op, WriteOp::Put { .. }),
                None => matches!(
                    region.replica.item(&spec.name, &key),
                    Some(Current::Version(v)) if !v.is_tombstone()
                ),
            };
            WriteOp::Put {
                value: put_value(&spec.policy, choice, &dot),
                kind: if live {
                    PutKind::Replace
                } else {
                    PutKind::Insert
                },
            }
        }
    };
    let write = Write {
        dot,
        ts: region.hlc,
        container: spec.name.clone(),
        key,
        op,
        base,
    };
    (write, sent)
}

/// Values are unique per write. A path container gets numbers that tie
/// often, a missing path, or a non-number.
fn put_value(policy: &ContainerPolicy, choice: u8, dot: &Dot) -> Vec<u8> {
    let json = match (policy, choice % 5) {
        (ContainerPolicy::Lww { path: Some(_), .. }, 1) => {
            format!(r#"{{"other": 1, "by": "{dot}"}}"#)
        }
        (ContainerPolicy::Lww { path: Some(_), .. }, 2) => {
            format!(r#"{{"priority": "high", "by": "{dot}"}}"#)
        }
        (_, n) => format!(r#"{{"priority": {}, "by": "{dot}"}}"#, n % 3),
    };
    json.into_bytes()
}

fn crdt_request(policy: &ContainerPolicy, choice: u8, dot: &Dot) -> CrdtRequest {
    let member = MEMBERS[usize::from(choice) % MEMBERS.len()].to_string();
    match policy {
        ContainerPolicy::Counter => CrdtRequest::Incr {
            by: i64::from(choice % 11) - 5,
        },
        ContainerPolicy::Set if choice & 0x10 == 0 => CrdtRequest::Add { member },
        ContainerPolicy::Set => CrdtRequest::Remove { member },
        _ => CrdtRequest::Write {
            value: dot.to_string().into_bytes(),
        },
    }
}

/// A deterministic generator for the orders, seeded by the case.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What one order of confirmation ended with.
struct Outcome {
    hub: Hub,
    items: BTreeMap<ItemKey, Current>,
    feed: Feed,
    from_deltas: Feed,
    order: Vec<Dot>,
}

/// Confirms every write at a fresh hub, in a random order that keeps each
/// origin's order and confirms a write only after what its base covers;
/// duplicates are sprinkled in and must change nothing.
fn confirm_in_order(specs: &[ContainerSpec], regions: &[Region], seed: u64) -> Outcome {
    let mut rng = XorShift(seed | 1);
    let mut hub = hub_with(specs);
    let mut from_deltas = Feed::new();
    let mut order = Vec::new();
    let mut next = vec![0usize; regions.len()];
    let total: usize = regions.iter().map(|r| r.own.len()).sum();
    while order.len() < total {
        let ready: Vec<usize> = (0..regions.len())
            .filter(|&i| {
                regions[i]
                    .own
                    .get(next[i])
                    .is_some_and(|w| hub.confirmed().covers_vector(&w.base))
            })
            .collect();
        // The unconfirmed write taken first in the simulation is always
        // ready: its base holds only writes taken before it.
        assert!(!ready.is_empty(), "some write is always ready");
        let i = ready[rng.below(ready.len())];
        let write = &regions[i].own[next[i]];
        next[i] += 1;
        match hub.confirm(write) {
            Ok(Confirmation::Applied { feed: deltas, .. }) => {
                deltas.iter().for_each(|d| feed::apply(&mut from_deltas, d));
            }
            other => panic!("confirming {} in a valid order: {other:?}", write.dot),
        }
        order.push(write.dot.clone());
        if rng.below(4) == 0 {
            let again = &order[rng.below(order.len())];
            let origin = regions
                .iter()
                .find(|r| r.name == again.origin)
                .expect("its region");
            let before = hub.clone();
            let outcome = hub.confirm(&origin.own[again.lsn as usize - 1]);
            assert_eq!(outcome, Ok(Confirmation::Duplicate));
            assert!(hub == before, "a duplicate changes nothing");
        }
    }
    Outcome {
        items: hub.items(),
        feed: hub.feed(),
        from_deltas,
        order,
        hub,
    }
}

/// Every write is exactly one of: the current version of its key, seen by a
/// later write of its key, merged into a CRDT, in the feed once; or, in an
/// `lww` container without a feed, lost by policy. CRDT items are compared
/// with models computed from the writes alone.
fn check_accounting(writes: &[&Write], account: &Account, outcome: &Outcome) {
    let specs = &account.specs;
    let mut by_key: BTreeMap<ItemKey, Vec<&Write>> = BTreeMap::new();
    for w in writes {
        by_key
            .entry((w.container.clone(), w.key.clone()))
            .or_default()
            .push(w);
    }
    for ((container, key), key_writes) in &by_key {
        let policy = &specs
            .iter()
            .find(|s| &s.name == container)
            .expect("a container")
            .policy;
        let current = outcome.items.get(&(container.clone(), key.clone()));
        match policy.crdt_kind() {
            Some(_) => check_crdt_model(policy, key_writes, current, &account.counter_by),
            None => {
                for w in key_writes {
                    let seen = key_writes
                        .iter()
                        .any(|o| o.dot != w.dot && o.base.covers(&w.dot));
                    let is_current = matches!(current, Some(Current::Version(v)) if v.dot == w.dot);
                    let in_feed = outcome.feed.contains_key(&w.dot);
                    let lost_quietly = matches!(policy, ContainerPolicy::Lww { feed: false, .. })
                        && !seen
                        && !is_current;
                    let fates = [seen, is_current, in_feed, lost_quietly];
                    assert_eq!(
                        fates.iter().filter(|f| **f).count(),
                        1,
                        "write {} in {container}/{key} ({policy}): seen {seen}, current {is_current}, in feed {in_feed}",
                        w.dot
                    );
                }
            }
        }
    }
    for (id, entry) in &outcome.feed {
        let loser = writes
            .iter()
            .find(|w| &w.dot == id)
            .expect("a feed entry names a write");
        assert_eq!(
            (&loser.container, &loser.key),
            (&entry.container, &entry.key)
        );
    }
}

fn check_crdt_model(
    policy: &ContainerPolicy,
    writes: &[&Write],
    current: Option<&Current>,
    counter_by: &BTreeMap<Dot, i64>,
) {
    let Some(Current::Crdt(value)) = current else {
        panic!("a CRDT key that was written holds a CRDT value: {current:?}");
    };
    let ops: Vec<(&Write, &CrdtOp)> = writes
        .iter()
        .map(|w| match &w.op {
            WriteOp::Crdt(op) => (*w, op),
            other => panic!("a CRDT container took {other:?}"),
        })
        .collect();
    let expected = match policy {
        ContainerPolicy::Counter => {
            CrdtRead::Counter(writes.iter().map(|w| i128::from(counter_by[&w.dot])).sum())
        }
        ContainerPolicy::Set => {
            // A member is in when some add of it was seen by no remove of it.
            let members: BTreeSet<String> = ops
                .iter()
                .filter_map(|(add, op)| match op {
                    CrdtOp::SetAdd { members, .. } => Some((add, members)),
                    _ => None,
                })
                .flat_map(|(add, members)| members.iter().map(move |m| (add, m)))
                .filter(|(add, member)| {
                    !ops.iter().any(|(rm, op)| {
                        matches!(op, CrdtOp::SetRemove { members, .. } if members.contains(member))
                            && rm.base.covers(&add.dot)
                    })
                })
                .map(|(_, m)| m.clone())
                .collect();
            CrdtRead::Set(members.into_iter().collect())
        }
        _ => {
            // The siblings are the writes no other write of the key saw.
            let mut siblings: Vec<Vec<u8>> = ops
                .iter()
                .filter(|(w, _)| {
                    !writes
                        .iter()
                        .any(|o| o.dot != w.dot && o.base.covers(&w.dot))
                })
                .map(|(w, _)| w.dot.to_string().into_bytes())
                .collect();
            siblings.sort();
            CrdtRead::Register(siblings)
        }
    };
    assert_eq!(
        value.read(),
        Ok(expected),
        "{policy} item against its model"
    );
}

fn print_order(order: &[Dot]) -> String {
    let dots: Vec<String> = order.iter().map(Dot::to_string).collect();
    dots.join(" ")
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES_DEFAULT)
}

fn check_run(run: &Run) {
    let mut account = Account::new(run);
    for step in &run.steps {
        account.step(step);
    }
    let writes = account.all_writes();
    let reference = confirm_in_order(&account.specs, &account.regions, run.order_seeds[0]);
    check_accounting(&writes, &account, &reference);
    assert_eq!(
        reference.from_deltas, reference.feed,
        "the deltas rebuild the feed"
    );
    for seed in &run.order_seeds[1..] {
        let other = confirm_in_order(&account.specs, &account.regions, *seed);
        let orders = format!(
            "orders {} and {}",
            print_order(&reference.order),
            print_order(&other.order)
        );
        assert_eq!(
            other.items, reference.items,
            "items differ between {orders}"
        );
        assert_eq!(other.feed, reference.feed, "feeds differ between {orders}");
        assert_eq!(
            other.from_deltas, other.feed,
            "deltas do not rebuild the feed"
        );
        assert_eq!(other.hub.confirmed(), reference.hub.confirmed());
    }
    let confirmed: VersionVector = writes.iter().map(|w| w.dot.clone()).collect();
    assert_eq!(
        reference.hub.confirmed(),
        &confirmed,
        "every write confirmed once"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn confirmation_is_order_independent(run in run()) {
        check_run(&run);
    }
}
