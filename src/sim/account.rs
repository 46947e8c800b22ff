//! The account of a simulation as the verify runner sees it: its
//! configuration, the fault layer its nodes share, and the hosts the
//! nemesis crashes, restarts and pauses.
//!
//! Crashing and restarting a host is the simulation's to do (`Sim::crash`,
//! `Sim::bounce`), between two of its steps: the runner, on its own
//! simulated host, only asks for it here and the driver carries it out at
//! the next step. The runner holds links itself (turmoil's `hold`): every
//! link of a paused node's host, and every link between two nodes' hosts
//! that the fault layer cuts, so a cut is a network partition as well as
//! the fault layer's refusal. A held link delivers what it held once
//! released, as TCP's retransmissions do after a real partition heals
//! (turmoil's own partitions drop segments, which its TCP never resends).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::AccountConfig;
use crate::fault::Faults;
use crate::ids::NodeId;
use crate::verify::cluster::AccountOwner;

/// What the driver must do to a host at its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAction {
    Crash(IpAddr),
    Restart(IpAddr),
}

/// Host actions asked for and not yet carried out, in order. A std lock:
/// held to push or drain, never across an `.await`.
#[derive(Clone, Default)]
pub struct HostActions(Arc<Mutex<Vec<HostAction>>>);

impl HostActions {
    fn push(&self, action: HostAction) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(action);
    }

    pub fn drain(&self) -> Vec<HostAction> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

pub struct SimAccount {
    account: AccountConfig,
    faults: Faults,
    /// Each node's host.
    hosts: BTreeMap<NodeId, IpAddr>,
    /// The host the runner itself runs on (the workloads' clients).
    runner_host: IpAddr,
    actions: HostActions,
    /// Nodes crashed and not yet restarted.
    crashed: BTreeSet<NodeId>,
    paused: BTreeSet<NodeId>,
    /// Host pairs (lower address first) whose link is held.
    held: BTreeSet<(IpAddr, IpAddr)>,
}

impl SimAccount {
    pub fn new(
        account: AccountConfig,
        faults: Faults,
        hosts: BTreeMap<NodeId, IpAddr>,
        runner_host: IpAddr,
        actions: HostActions,
    ) -> Self {
        Self {
            account,
            faults,
            hosts,
            runner_host,
            actions,
            crashed: BTreeSet::new(),
            paused: BTreeSet::new(),
            held: BTreeSet::new(),
        }
    }

    pub fn account(&self) -> &AccountConfig {
        &self.account
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.hosts.contains_key(&id) && !self.crashed.contains(&id) && !self.paused.contains(&id)
    }

    /// The node's host stops at once, as if the machine lost power: its
    /// tasks and connections are gone; its in-memory storage stays.
    pub fn crash_node(&mut self, id: NodeId) {
        if let Some(host) = self.hosts.get(&id) {
            self.actions.push(HostAction::Crash(*host));
            self.crashed.insert(id);
        }
    }

    /// The node starts again on its host, on the storage it left.
    pub fn restart_node(&mut self, id: NodeId) {
        if let Some(host) = self.hosts.get(&id) {
            self.actions.push(HostAction::Restart(*host));
            self.crashed.remove(&id);
        }
    }

    /// Every message to or from the node's host waits until it resumes.
    pub fn pause_node(&mut self, id: NodeId) {
        if self.hosts.contains_key(&id) {
            self.paused.insert(id);
            self.sync_holds();
        }
    }

    pub fn resume_node(&mut self, id: NodeId) {
        self.paused.remove(&id);
        self.sync_holds();
    }

    /// Holds the links the fault layer cuts and those of paused nodes,
    /// and releases every other: called after each change of either.
    pub fn sync_holds(&mut self) {
        let wanted = self.links_to_hold();
        for (a, b) in wanted.difference(&self.held) {
            turmoil::hold(*a, *b);
        }
        for (a, b) in self.held.difference(&wanted) {
            turmoil::release(*a, *b);
        }
        self.held = wanted;
    }

    fn links_to_hold(&self) -> BTreeSet<(IpAddr, IpAddr)> {
        let pair = |a: IpAddr, b: IpAddr| (a.min(b), a.max(b));
        let mut held: BTreeSet<(IpAddr, IpAddr)> = self
            .faults
            .links()
            .iter()
            .filter(|l| l.cut)
            .filter_map(|l| Some(pair(*self.hosts.get(&l.from)?, *self.hosts.get(&l.to)?)))
            .collect();
        let all = self.hosts.values().copied().chain([self.runner_host]);
        for node in &self.paused {
            let Some(host) = self.hosts.get(node) else {
                continue;
            };
            held.extend(all.clone().filter(|h| h != host).map(|h| pair(*host, h)));
        }
        held
    }
}

/// The verify runner drives the simulated account through its trait.
impl AccountOwner for SimAccount {
    fn account(&self) -> &AccountConfig {
        SimAccount::account(self)
    }

    fn is_up(&self, id: NodeId) -> bool {
        SimAccount::is_up(self, id)
    }

    fn faults(&self) -> &Faults {
        SimAccount::faults(self)
    }

    fn sync_faults(&mut self) {
        self.sync_holds();
    }

    fn crash_node(&mut self, id: NodeId) {
        SimAccount::crash_node(self, id);
    }

    fn restart_node(&mut self, id: NodeId) {
        SimAccount::restart_node(self, id);
    }

    fn pause_node(&mut self, id: NodeId) {
        SimAccount::pause_node(self, id);
    }

    fn resume_node(&mut self, id: NodeId) {
        SimAccount::resume_node(self, id);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn host(i: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 0, i))
    }

    fn account(faults: &Faults) -> SimAccount {
        let hosts = (1..=4).map(|i| (NodeId(u64::from(i)), host(i))).collect();
        let config =
            crate::local::LocalOptions::new(std::path::Path::new("/unused")).account_config(&[]);
        SimAccount::new(
            config,
            faults.clone(),
            hosts,
            host(100),
            HostActions::default(),
        )
    }

    #[test]
    fn cut_links_and_every_link_of_a_paused_node_are_held() {
        let faults = Faults::new(1);
        let mut sim = account(&faults);
        let nodes: Vec<NodeId> = (1..=4).map(NodeId).collect();
        faults.isolate(NodeId(1), &nodes);
        let isolated: BTreeSet<_> = (2..=4).map(|i| (host(1), host(i))).collect();
        assert_eq!(sim.links_to_hold(), isolated);

        sim.paused.insert(NodeId(3));
        let mut both = isolated.clone();
        both.extend([(host(2), host(3)), (host(3), host(4)), (host(3), host(100))]);
        assert_eq!(sim.links_to_hold(), both);

        faults.heal();
        sim.paused.clear();
        assert!(sim.links_to_hold().is_empty());
        assert!(sim.is_up(NodeId(3)));
    }
}
