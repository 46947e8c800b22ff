//! The account of a simulation as the verify runner sees it: its
//! configuration, the fault layer its nodes share, and the hosts the
//! nemesis crashes, restarts and pauses.
//!
//! Crashing and restarting a host is the simulation's to do (`Sim::crash`,
//! `Sim::bounce`), between two of its steps: the runner, on its own
//! simulated host, only asks for it here and the driver carries it out at
//! the next step. A pause holds every link of the node's host (turmoil's
//! `hold`), which the runner can do itself.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::AccountConfig;
use crate::fault::Faults;
use crate::ids::NodeId;

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
    /// Nodes crashed or paused, not yet back.
    down: BTreeSet<NodeId>,
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
            down: BTreeSet::new(),
        }
    }

    pub fn account(&self) -> &AccountConfig {
        &self.account
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.hosts.contains_key(&id) && !self.down.contains(&id)
    }

    /// The node's host stops at once, as if the machine lost power: its
    /// tasks and connections are gone; its in-memory storage stays.
    pub fn crash_node(&mut self, id: NodeId) {
        if let Some(host) = self.hosts.get(&id) {
            self.actions.push(HostAction::Crash(*host));
            self.down.insert(id);
        }
    }

    /// The node starts again on its host, on the storage it left.
    pub fn restart_node(&mut self, id: NodeId) {
        if let Some(host) = self.hosts.get(&id) {
            self.actions.push(HostAction::Restart(*host));
            self.down.remove(&id);
        }
    }

    /// Every message to or from the node's host waits until it resumes.
    pub fn pause_node(&mut self, id: NodeId) {
        if let Some(host) = self.hosts.get(&id) {
            for other in self.others(*host) {
                turmoil::hold(*host, other);
            }
            self.down.insert(id);
        }
    }

    pub fn resume_node(&mut self, id: NodeId) {
        if let Some(host) = self.hosts.get(&id) {
            for other in self.others(*host) {
                turmoil::release(*host, other);
            }
            self.down.remove(&id);
        }
    }

    /// Every other host, the runner's included.
    fn others(&self, host: IpAddr) -> Vec<IpAddr> {
        self.hosts
            .values()
            .copied()
            .chain([self.runner_host])
            .filter(|h| *h != host)
            .collect()
    }
}
