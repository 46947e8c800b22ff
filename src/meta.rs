//! The meta group's state and the pure rule that changes it (DESIGN.md
//! "The meta group and failover"). The meta group is a second raft group
//! (`raft::meta_replica`); every node holds a copy of this state, as a
//! voter or a learner, so every node can read it.
//!
//! What lives here: the account settings, the failover priorities, the
//! epoch and write region, per region its place in the strong set
//! (`RegionState`), the node that last renewed its lease and the GLSN it
//! had applied then; and failover: the change of write region under way
//! (`Transition`), pause, a scheduled switchover, and the history of
//! epoch changes (what `patronictl history` shows).
//!
//! A change of write region takes two commits: `BeginTransition` fences
//! the write region (its renewals come back fenced, so it stops taking
//! writes), then the new write region, once it holds every entry of the
//! old epoch that any reachable region holds, commits `CompleteTransition`
//! with that fork GLSN: epoch + 1, the new write region, a history record.
//!
//! The account's containers and their conflict policies live here too
//! (DESIGN.md "Containers"); their rule is `containers`.
//!
//! One concept, one file: the state and its rule are about 590 lines; the
//! rest are the exhaustive tests of the pure rule. Why a command is
//! refused is `refusal`.

pub mod containers;
pub mod refusal;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use refusal::{MetaRefusal, PriorityProblem};

use crate::config::{AccountConfig, WriteMode};
use crate::consistency::Consistency;
use crate::container::ContainerPolicy;
use crate::glsn::{EPOCH_INITIAL, Glsn};
use crate::ids::{NodeId, RegionId};

/// A region's place in the strong set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionState {
    /// In the strong set: strong writes wait for it, and its leader may
    /// serve strong and bounded reads while its lease is valid.
    Online,
    /// Renewing its lease again after being taken out: strong writes
    /// already wait for it, but it serves no strong or bounded read until
    /// the write region reports it caught up and it is marked online.
    Joining,
    /// Taken out of the strong set after its lease expired.
    Offline,
}

impl RegionState {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionState::Online => "online",
            RegionState::Joining => "joining",
            RegionState::Offline => "offline",
        }
    }

    /// Strong writes wait for the region's acknowledgement.
    pub fn in_ack_wait(self) -> bool {
        matches!(self, RegionState::Online | RegionState::Joining)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionMeta {
    pub state: RegionState,
    /// The node that last renewed the region's lease (its leader then).
    pub lease_holder: Option<NodeId>,
    /// Renewals committed so far; grows by one each.
    pub renewals: u64,
    /// What the region had applied at its last renewal: the meta group's
    /// view of its lag, for choosing a failover target.
    pub applied: Glsn,
}

/// The account settings the meta group holds (from the configuration of
/// the node that formed the group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    pub name: String,
    pub write_mode: WriteMode,
    pub default_consistency: Consistency,
    pub max_staleness_ops: u64,
    pub max_staleness_ms: u64,
    /// Service-managed failover is on.
    pub failover: bool,
    pub max_lag_on_failover: u64,
}

/// Why the write region changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// Service-managed: the write region's lease expired.
    Failover,
    /// Manual (`meridian failover --to`, or a new first priority).
    Switchover,
}

impl ChangeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeReason::Failover => "failover",
            ChangeReason::Switchover => "switchover",
        }
    }
}

/// One change of write region, as the history records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochChange {
    /// The epoch that began.
    pub epoch: u64,
    /// The last GLSN of the old epoch kept in the new history; the new
    /// epoch's writes continue from its LSN.
    pub fork: Glsn,
    pub reason: ChangeReason,
    pub from: RegionId,
    pub to: RegionId,
    /// Wall clock (ms since the Unix epoch) at the commit's proposal.
    pub at_ms: u64,
}

/// A change of write region under way: `from` is fenced, `to` is catching
/// up to the fork.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: RegionId,
    pub to: RegionId,
    pub reason: ChangeReason,
    pub started_ms: u64,
}

/// A switchover to run at a given wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledSwitchover {
    pub to: RegionId,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MetaState {
    /// `None` until the first `Init` commits.
    pub settings: Option<AccountSettings>,
    /// Every region exactly once, first choice first.
    pub priorities: Vec<RegionId>,
    pub epoch: u64,
    pub write_region: Option<RegionId>,
    pub regions: BTreeMap<RegionId, RegionMeta>,
    /// Maintenance mode: no automatic failover (switchover still works).
    pub paused: bool,
    pub transition: Option<Transition>,
    pub scheduled: Option<ScheduledSwitchover>,
    /// Why the last failover attempt found no target, until one starts.
    pub failover_blocked: Option<String>,
    /// Every change of write region, oldest first.
    pub history: Vec<EpochChange>,
    /// Every container by name, with the policy it was created with.
    /// Skipped by serde: the meta state machine stores it under a key of
    /// its own (`raft::meta_machine`), because bincode cannot decode a
    /// field appended to a state persisted before containers existed.
    #[serde(skip)]
    pub containers: BTreeMap<String, ContainerPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Forms the account's meta state; ignored once formed, so every node
    /// may propose it.
    Init {
        settings: AccountSettings,
        priorities: Vec<RegionId>,
    },
    /// A region leader renews its region's lease, reporting what it has
    /// applied. An offline region that renews becomes joining.
    RenewLease {
        region: RegionId,
        node: NodeId,
        applied: Glsn,
    },
    SetPriorities(Vec<RegionId>),
    /// Moves a region from `from` to `to`; refused when the region is not
    /// in `from` (so a stale decision never undoes a newer one).
    SetRegionState {
        region: RegionId,
        from: RegionState,
        to: RegionState,
    },
    /// Fences the write region and names the region to take over.
    BeginTransition {
        to: RegionId,
        reason: ChangeReason,
        at_ms: u64,
    },
    /// The region `to` holds everything up to `fork`: the new epoch begins.
    CompleteTransition {
        to: RegionId,
        fork: Glsn,
        at_ms: u64,
    },
    /// Gives up the transition to `to` (it did not complete in time).
    AbortTransition {
        to: RegionId,
        why: String,
    },
    SetPaused(bool),
    Schedule(Option<ScheduledSwitchover>),
    SetFailoverBlocked(Option<String>),
    /// Creates a container with its policy; the same policy again changes
    /// nothing, another one is refused (a policy is fixed at creation).
    CreateContainer {
        name: String,
        policy: ContainerPolicy,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    Done,
    /// A renewal committed; the region's state at that commit, and whether
    /// the region is the write region being fenced by a transition.
    Renewed {
        state: RegionState,
        fenced: bool,
    },
    /// A transition completed: the epoch that began.
    NewEpoch(u64),
    Refused(MetaRefusal),
}

impl MetaState {
    /// The initial meta state of an account, from its configuration.
    pub fn init_command(account: &AccountConfig) -> MetaCommand {
        MetaCommand::Init {
            settings: AccountSettings {
                name: account.name.clone(),
                write_mode: account.write_mode,
                default_consistency: account.default_consistency,
                max_staleness_ops: account.max_staleness_ops,
                max_staleness_ms: account.max_staleness_ms,
                failover: account.failover.enabled,
                max_lag_on_failover: account.failover.max_lag_on_failover,
            },
            priorities: account.regions.iter().map(|r| r.name.clone()).collect(),
        }
    }

    pub fn is_formed(&self) -> bool {
        self.settings.is_some()
    }

    pub fn region_state(&self, region: &RegionId) -> Option<RegionState> {
        self.regions.get(region).map(|r| r.state)
    }

    pub fn is_write_region(&self, region: &RegionId) -> bool {
        self.write_region.as_ref() == Some(region)
    }

    /// Read regions strong writes wait for.
    pub fn ack_wait_regions(&self) -> Vec<RegionId> {
        self.regions
            .iter()
            .filter(|(r, m)| !self.is_write_region(r) && m.state.in_ack_wait())
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The strong set (online regions, the write region included) holds a
    /// majority of the account's regions.
    pub fn strong_set_has_majority(&self) -> bool {
        let online = self
            .regions
            .values()
            .filter(|m| m.state == RegionState::Online)
            .count();
        online * 2 > self.regions.len()
    }

    /// Applies one committed command. Pure and deterministic: every
    /// replica of the meta group reaches the same state and reply.
    pub fn apply(&mut self, command: MetaCommand) -> MetaReply {
        match command {
            MetaCommand::Init {
                settings,
                priorities,
            } => self.form(settings, priorities),
            MetaCommand::RenewLease {
                region,
                node,
                applied,
            } => self.renew_lease(region, node, applied),
            MetaCommand::BeginTransition { to, reason, at_ms } => {
                self.begin_transition(to, reason, at_ms)
            }
            MetaCommand::CompleteTransition { to, fork, at_ms } => {
                self.complete_transition(to, fork, at_ms)
            }
            MetaCommand::AbortTransition { to, why } => self.abort_transition(to, why),
            MetaCommand::SetPaused(paused) => {
                self.paused = paused;
                MetaReply::Done
            }
            MetaCommand::Schedule(scheduled) => self.schedule(scheduled),
            MetaCommand::SetFailoverBlocked(why) => {
                self.failover_blocked = why;
                MetaReply::Done
            }
            MetaCommand::SetPriorities(order) => self.set_priorities(order),
            MetaCommand::SetRegionState { region, from, to } => {
                self.set_region_state(region, from, to)
            }
            MetaCommand::CreateContainer { name, policy } => self.create_container(name, policy),
        }
    }

    /// Forms the account: its settings, the initial epoch, every region
    /// online and the first by priority as the write region. Does nothing
    /// once formed.
    fn form(&mut self, settings: AccountSettings, priorities: Vec<RegionId>) -> MetaReply {
        if self.is_formed() {
            return MetaReply::Done;
        }
        self.settings = Some(settings);
        self.epoch = EPOCH_INITIAL;
        self.write_region = priorities.first().cloned();
        self.regions = priorities
            .iter()
            .map(|r| {
                let meta = RegionMeta {
                    state: RegionState::Online,
                    lease_holder: None,
                    renewals: 0,
                    applied: Glsn::ZERO,
                };
                (r.clone(), meta)
            })
            .collect();
        self.priorities = priorities;
        MetaReply::Done
    }

    /// Records a region's lease renewal by `node` and what it had applied;
    /// an offline region that renews becomes joining. The reply says
    /// whether the region is the write region a transition fences.
    fn renew_lease(&mut self, region: RegionId, node: NodeId, applied: Glsn) -> MetaReply {
        let fenced = self.transition.as_ref().is_some_and(|t| t.from == region);
        let known = self.region_names();
        let Some(meta) = self.regions.get_mut(&region) else {
            return MetaReply::Refused(MetaRefusal::UnknownRegion { region, known });
        };
        if meta.state == RegionState::Offline {
            meta.state = RegionState::Joining;
        }
        meta.lease_holder = Some(node);
        meta.renewals += 1;
        meta.applied = applied;
        MetaReply::Renewed {
            state: meta.state,
            fenced,
        }
    }

    /// Fences the write region and names `to` to take over, when
    /// `check_target` allows it; a switchover scheduled to `to` is done.
    fn begin_transition(&mut self, to: RegionId, reason: ChangeReason, at_ms: u64) -> MetaReply {
        if let Err(why) = self.check_target(&to) {
            return MetaReply::Refused(why);
        }
        let from = self.write_region.clone().expect("checked by check_target");
        if self.scheduled.as_ref().is_some_and(|s| s.to == to) {
            self.scheduled = None;
        }
        self.failover_blocked = None;
        self.transition = Some(Transition {
            from,
            to,
            reason,
            started_ms: at_ms,
        });
        MetaReply::Done
    }

    /// Ends the transition to `to` at `fork`: the next epoch begins with
    /// `to` as the write region, and the history records the change. After
    /// a failover the old write region is offline.
    fn complete_transition(&mut self, to: RegionId, fork: Glsn, at_ms: u64) -> MetaReply {
        let Some(t) = self.transition.take_if(|t| t.to == to) else {
            return MetaReply::Refused(MetaRefusal::NoTransition { to });
        };
        self.epoch += 1;
        if t.reason == ChangeReason::Failover
            && let Some(old) = self.regions.get_mut(&t.from)
        {
            old.state = RegionState::Offline;
        }
        if let Some(new) = self.regions.get_mut(&to) {
            new.state = RegionState::Online;
        }
        self.write_region = Some(to.clone());
        self.history.push(EpochChange {
            epoch: self.epoch,
            fork,
            reason: t.reason,
            from: t.from,
            to,
            at_ms,
        });
        MetaReply::NewEpoch(self.epoch)
    }

    /// Gives up the transition to `to` and records why failover is blocked.
    fn abort_transition(&mut self, to: RegionId, why: String) -> MetaReply {
        if self.transition.take_if(|t| t.to == to).is_none() {
            return MetaReply::Refused(MetaRefusal::NoTransition { to });
        }
        self.failover_blocked = Some(why);
        MetaReply::Done
    }

    /// Sets or clears the scheduled switchover; its target must pass
    /// `check_target` now.
    fn schedule(&mut self, scheduled: Option<ScheduledSwitchover>) -> MetaReply {
        if let Some(s) = &scheduled
            && let Err(why) = self.check_target(&s.to)
        {
            return MetaReply::Refused(why);
        }
        self.scheduled = scheduled;
        MetaReply::Done
    }

    /// Replaces the failover priorities when `check_priorities` accepts
    /// the order.
    fn set_priorities(&mut self, order: Vec<RegionId>) -> MetaReply {
        match self.check_priorities(&order) {
            Ok(()) => {
                self.priorities = order;
                MetaReply::Done
            }
            Err(why) => MetaReply::Refused(why),
        }
    }

    /// Moves `region` from state `from` to `to`; refused when it is no
    /// longer in `from`, or when it would move the write region out of
    /// online.
    fn set_region_state(
        &mut self,
        region: RegionId,
        from: RegionState,
        to: RegionState,
    ) -> MetaReply {
        if self.is_write_region(&region) && to != RegionState::Online {
            return MetaReply::Refused(MetaRefusal::WriteRegionStaysOnline { region });
        }
        let known = self.region_names();
        match self.regions.get_mut(&region) {
            None => MetaReply::Refused(MetaRefusal::UnknownRegion { region, known }),
            Some(meta) if meta.state != from => MetaReply::Refused(MetaRefusal::StateChanged {
                region,
                state: meta.state,
                expected: from,
            }),
            Some(meta) => {
                meta.state = to;
                MetaReply::Done
            }
        }
    }

    /// Whether `to` may take over writes now: it exists, is online, is not
    /// already the write region, and no other transition is under way.
    pub fn check_target(&self, to: &RegionId) -> Result<(), MetaRefusal> {
        let Some(from) = &self.write_region else {
            return Err(MetaRefusal::NotFormed);
        };
        let Some(meta) = self.regions.get(to) else {
            return Err(MetaRefusal::UnknownRegion {
                region: to.clone(),
                known: self.region_names(),
            });
        };
        if let Some(t) = &self.transition {
            return Err(MetaRefusal::TransitionUnderWay {
                reason: t.reason,
                from: t.from.clone(),
                to: t.to.clone(),
            });
        }
        if from == to {
            return Err(MetaRefusal::AlreadyWriteRegion { region: to.clone() });
        }
        if meta.state != RegionState::Online {
            return Err(MetaRefusal::NotOnline {
                region: to.clone(),
                state: meta.state,
            });
        }
        Ok(())
    }

    /// The account's regions, in name order.
    fn region_names(&self) -> Vec<RegionId> {
        self.regions.keys().cloned().collect()
    }

    /// The region service-managed failover moves writes to: the first
    /// region by priority that is online and lags the most advanced region
    /// by at most `max_lag_on_failover` operations (in a strong account
    /// every online region qualifies: it has every strong write). `Err`
    /// says why there is none.
    pub fn choose_failover(&self) -> Result<RegionId, String> {
        let Some(settings) = &self.settings else {
            return Err("the account is not formed yet".into());
        };
        let strong = settings.default_consistency == Consistency::Strong;
        let head = self.regions.values().map(|m| m.applied).max();
        let head = head.unwrap_or(Glsn::ZERO);
        let mut skipped = Vec::new();
        for region in &self.priorities {
            if self.is_write_region(region) {
                continue;
            }
            let Some(meta) = self.regions.get(region) else {
                continue;
            };
            let lag = head.lsn.saturating_sub(meta.applied.lsn);
            if meta.state != RegionState::Online {
                skipped.push(format!("{region} is {}", meta.state.as_str()));
            } else if let Some(fork) = self.diverged(meta.applied) {
                // Its state holds writes the history dropped: taking over
                // from it would mix them into the new epoch.
                skipped.push(format!(
                    "{region} holds writes past the fork {fork} and must re-join first"
                ));
            } else if !strong && lag > settings.max_lag_on_failover {
                skipped.push(format!(
                    "{region} lags {lag} operations (max_lag_on_failover is {})",
                    settings.max_lag_on_failover
                ));
            } else {
                return Ok(region.clone());
            }
        }
        if skipped.is_empty() {
            skipped.push("there is no other region".into());
        }
        Err(format!("no region can take over: {}", skipped.join("; ")))
    }

    /// The first change of write region after `epoch`.
    pub fn change_after(&self, epoch: u64) -> Option<&EpochChange> {
        self.history.iter().find(|c| c.epoch > epoch)
    }

    /// The fork of the first change of write region after `epoch`: the last
    /// GLSN of `epoch` (or earlier) the later history kept.
    pub fn fork_after(&self, epoch: u64) -> Option<Glsn> {
        self.change_after(epoch).map(|c| c.fork)
    }

    /// When a region (or a session) that reached `applied` holds writes the
    /// history no longer has: the fork it went past.
    pub fn diverged(&self, applied: Glsn) -> Option<Glsn> {
        self.fork_after(applied.epoch)
            .filter(|fork| applied.lsn > fork.lsn)
    }

    /// A priority order must name every region of the account exactly once.
    pub fn check_priorities(&self, order: &[RegionId]) -> Result<(), MetaRefusal> {
        let mut problems = Vec::new();
        for (i, r) in order.iter().enumerate() {
            if !self.regions.contains_key(r) {
                problems.push(PriorityProblem::NotARegion(r.clone()));
            } else if order[..i].contains(r) {
                problems.push(PriorityProblem::ListedTwice(r.clone()));
            }
        }
        for r in self.regions.keys() {
            if !order.contains(r) {
                problems.push(PriorityProblem::Missing(r.clone()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MetaRefusal::BadPriorities {
                problems,
                known: self.region_names(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str) -> RegionId {
        RegionId::new(name)
    }

    fn formed() -> MetaState {
        testing::formed(&["west", "east", "north"], Consistency::Strong)
    }

    #[test]
    fn init_forms_once_with_the_first_region_writing() {
        let mut s = formed();
        assert_eq!(s.write_region, Some(r("west")));
        assert_eq!(s.epoch, EPOCH_INITIAL);
        assert!(s.strong_set_has_majority());
        let again = MetaState::init_command(&crate::config::AccountConfig {
            name: "other".into(),
            default_consistency: Consistency::Eventual,
            write_mode: WriteMode::SingleWrite,
            max_staleness_ops: 1,
            max_staleness_ms: 100,
            regions: vec![],
            meta_voters: vec![],
            witnesses: vec![],
            leases: Default::default(),
            failover: Default::default(),
        });
        let before = s.clone();
        assert_eq!(s.apply(again), MetaReply::Done);
        assert_eq!(s, before, "a second Init changes nothing");
    }

    #[test]
    fn a_region_leaves_and_rejoins_the_strong_set_in_steps() {
        let mut s = formed();
        let out = MetaCommand::SetRegionState {
            region: r("east"),
            from: RegionState::Online,
            to: RegionState::Offline,
        };
        assert_eq!(s.apply(out.clone()), MetaReply::Done);
        assert_eq!(s.ack_wait_regions(), vec![r("north")]);
        // Repeating a stale decision is refused, not re-applied.
        assert!(matches!(s.apply(out), MetaReply::Refused(_)));
        // Renewing again makes it joining: waited for, not yet online.
        let reply = s.apply(MetaCommand::RenewLease {
            region: r("east"),
            node: NodeId(5),
            applied: Glsn::ZERO,
        });
        assert_eq!(
            reply,
            MetaReply::Renewed {
                state: RegionState::Joining,
                fenced: false
            }
        );
        assert_eq!(s.ack_wait_regions(), vec![r("east"), r("north")]);
        s.apply(MetaCommand::SetRegionState {
            region: r("east"),
            from: RegionState::Joining,
            to: RegionState::Online,
        });
        assert_eq!(s.region_state(&r("east")), Some(RegionState::Online));
    }

    #[test]
    fn losing_two_of_three_regions_loses_the_majority() {
        let mut s = formed();
        for region in ["east", "north"] {
            s.apply(MetaCommand::SetRegionState {
                region: r(region),
                from: RegionState::Online,
                to: RegionState::Offline,
            });
        }
        assert!(!s.strong_set_has_majority());
    }

    #[test]
    fn the_write_region_is_never_taken_out() {
        let mut s = formed();
        let reply = s.apply(MetaCommand::SetRegionState {
            region: r("west"),
            from: RegionState::Online,
            to: RegionState::Offline,
        });
        assert!(matches!(reply, MetaReply::Refused(_)));
    }

    #[test]
    fn priorities_name_every_region_once() {
        let mut s = formed();
        assert_eq!(
            s.apply(MetaCommand::SetPriorities(vec![
                r("east"),
                r("west"),
                r("north")
            ])),
            MetaReply::Done
        );
        assert_eq!(s.priorities[0], r("east"));
        let MetaReply::Refused(why) = s.apply(MetaCommand::SetPriorities(vec![
            r("east"),
            r("mars"),
            r("east"),
        ])) else {
            panic!("accepted a bad order");
        };
        let why = why.to_string();
        assert!(why.contains("mars is not a region"), "{why}");
        assert!(why.contains("east is listed twice"), "{why}");
        assert!(why.contains("west is missing"), "{why}");
        assert_eq!(s.priorities[0], r("east"), "unchanged after a refusal");
    }

    fn renew(s: &mut MetaState, region: &str, lsn: u64) -> MetaReply {
        s.apply(MetaCommand::RenewLease {
            region: r(region),
            node: NodeId(1),
            applied: Glsn::new(s.epoch, lsn),
        })
    }

    /// Begins a transition to `to` and completes it at `fork`.
    fn change_write_region(s: &mut MetaState, to: &str, reason: ChangeReason, fork: Glsn) {
        s.apply(MetaCommand::BeginTransition {
            to: r(to),
            reason,
            at_ms: 1,
        });
        let next = s.epoch + 1;
        assert_eq!(
            s.apply(MetaCommand::CompleteTransition {
                to: r(to),
                fork,
                at_ms: 2,
            }),
            MetaReply::NewEpoch(next)
        );
    }

    fn set_state(s: &mut MetaState, region: &str, to: RegionState) {
        let from = s.region_state(&r(region)).unwrap();
        s.apply(MetaCommand::SetRegionState {
            region: r(region),
            from,
            to,
        });
    }

    /// Every combination of state and lag for the two read regions, in
    /// both priority orders and both consistency kinds, against the rule
    /// written out longhand.
    #[test]
    fn failover_picks_the_first_online_region_within_the_lag_bound() {
        let states = [
            RegionState::Online,
            RegionState::Joining,
            RegionState::Offline,
        ];
        let lags = [0u64, 100, 101, 5000];
        for strong in [false, true] {
            for order in [["west", "east", "north"], ["north", "west", "east"]] {
                for (e_state, n_state) in states
                    .iter()
                    .flat_map(|a| states.iter().map(move |b| (*a, *b)))
                {
                    for (e_lag, n_lag) in
                        lags.iter().flat_map(|a| lags.iter().map(move |b| (*a, *b)))
                    {
                        let mut s = formed();
                        if strong {
                            s.settings.as_mut().unwrap().default_consistency = Consistency::Strong;
                        } else {
                            s.settings.as_mut().unwrap().default_consistency = Consistency::Session;
                        }
                        s.apply(MetaCommand::SetPriorities(
                            order.iter().map(|x| r(x)).collect(),
                        ));
                        renew(&mut s, "west", 10_000);
                        renew(&mut s, "east", 10_000 - e_lag);
                        renew(&mut s, "north", 10_000 - n_lag);
                        set_state(&mut s, "east", e_state);
                        set_state(&mut s, "north", n_state);
                        let qualifies = |state: RegionState, lag: u64| {
                            state == RegionState::Online && (strong || lag <= 100)
                        };
                        let expected = order
                            .iter()
                            .filter(|x| **x != "west")
                            .find(|x| match **x {
                                "east" => qualifies(e_state, e_lag),
                                _ => qualifies(n_state, n_lag),
                            })
                            .map(|x| r(x));
                        let got = s.choose_failover();
                        assert_eq!(
                            got.clone().ok(),
                            expected,
                            "strong={strong} order={order:?} east={e_state:?}/{e_lag} north={n_state:?}/{n_lag}: {got:?}"
                        );
                        if let Err(why) = got {
                            assert!(why.contains("east") && why.contains("north"), "{why}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lag_is_measured_from_the_most_advanced_region() {
        let mut s = formed();
        s.settings.as_mut().unwrap().default_consistency = Consistency::Session;
        // The write region's last report is older than east's.
        renew(&mut s, "west", 50);
        renew(&mut s, "east", 400);
        renew(&mut s, "north", 250);
        s.apply(MetaCommand::SetPriorities(vec![
            r("west"),
            r("north"),
            r("east"),
        ]));
        // North is first but 150 behind east, the most advanced.
        assert_eq!(s.choose_failover(), Ok(r("east")));
        set_state(&mut s, "east", RegionState::Offline);
        let why = s.choose_failover().unwrap_err();
        assert!(why.contains("north lags 150"), "{why}");
        assert!(why.contains("east is offline"), "{why}");
    }

    #[test]
    fn a_region_holding_writes_past_a_fork_is_skipped_until_it_has_re_joined() {
        let mut s = formed();
        s.settings.as_mut().unwrap().default_consistency = Consistency::Session;
        // West wrote up to e1:30 while cut off; east took over at e1:20 and
        // wrote on to e2:40; north followed east.
        change_write_region(&mut s, "east", ChangeReason::Failover, Glsn::new(1, 20));
        set_state(&mut s, "west", RegionState::Online);
        s.apply(MetaCommand::RenewLease {
            region: r("west"),
            node: NodeId(1),
            applied: Glsn::new(1, 30),
        });
        renew(&mut s, "east", 40);
        renew(&mut s, "north", 40);
        // East is lost next: west comes first by priority, and lags by no
        // LSN, but its state holds e1:21..30, which the history dropped.
        assert_eq!(s.choose_failover(), Ok(r("north")));
        set_state(&mut s, "north", RegionState::Offline);
        let why = s.choose_failover().unwrap_err();
        assert!(
            why.contains("west holds writes past the fork e1:20 and must re-join first"),
            "{why}"
        );
        // Re-joined (re-synced to east's history): it qualifies again.
        renew(&mut s, "west", 40);
        assert_eq!(s.choose_failover(), Ok(r("west")));
    }

    #[test]
    fn a_transition_fences_then_begins_a_new_epoch_with_its_fork() {
        let mut s = formed();
        renew(&mut s, "west", 7);
        assert!(matches!(
            s.apply(MetaCommand::BeginTransition {
                to: r("mars"),
                reason: ChangeReason::Switchover,
                at_ms: 1,
            }),
            MetaReply::Refused(_)
        ));
        assert_eq!(
            s.apply(MetaCommand::BeginTransition {
                to: r("east"),
                reason: ChangeReason::Failover,
                at_ms: 1,
            }),
            MetaReply::Done
        );
        assert_eq!(
            renew(&mut s, "west", 7),
            MetaReply::Renewed {
                state: RegionState::Online,
                fenced: true
            }
        );
        assert_eq!(
            renew(&mut s, "north", 7),
            MetaReply::Renewed {
                state: RegionState::Online,
                fenced: false
            }
        );
        // A second transition while one is under way is refused.
        let refused = s.apply(MetaCommand::BeginTransition {
            to: r("north"),
            reason: ChangeReason::Switchover,
            at_ms: 2,
        });
        assert!(
            matches!(refused, MetaReply::Refused(ref w) if w.to_string().contains("already under way"))
        );
        // Only the named region can complete it.
        assert!(matches!(
            s.apply(MetaCommand::CompleteTransition {
                to: r("north"),
                fork: Glsn::new(1, 7),
                at_ms: 3
            }),
            MetaReply::Refused(_)
        ));
        assert_eq!(
            s.apply(MetaCommand::CompleteTransition {
                to: r("east"),
                fork: Glsn::new(1, 9),
                at_ms: 3
            }),
            MetaReply::NewEpoch(2)
        );
        assert_eq!(s.write_region, Some(r("east")));
        assert_eq!(s.region_state(&r("west")), Some(RegionState::Offline));
        assert_eq!(s.transition, None);
        assert_eq!(
            s.history,
            vec![EpochChange {
                epoch: 2,
                fork: Glsn::new(1, 9),
                reason: ChangeReason::Failover,
                from: r("west"),
                to: r("east"),
                at_ms: 3,
            }]
        );
        // West had applied e1:12 when it was cut off: three writes past the
        // fork are not in the new history; e1:9 and earlier are.
        assert_eq!(s.diverged(Glsn::new(1, 12)), Some(Glsn::new(1, 9)));
        assert_eq!(s.diverged(Glsn::new(1, 9)), None);
        assert_eq!(s.diverged(Glsn::new(2, 40)), None);
    }

    #[test]
    fn a_switchover_keeps_the_old_region_online_and_an_abort_unfences() {
        let mut s = formed();
        s.apply(MetaCommand::BeginTransition {
            to: r("north"),
            reason: ChangeReason::Switchover,
            at_ms: 1,
        });
        s.apply(MetaCommand::AbortTransition {
            to: r("north"),
            why: "north did not catch up".into(),
        });
        assert_eq!(s.transition, None);
        assert_eq!(
            s.failover_blocked.as_deref(),
            Some("north did not catch up")
        );
        assert!(matches!(
            renew(&mut s, "west", 1),
            MetaReply::Renewed { fenced: false, .. }
        ));
        change_write_region(&mut s, "north", ChangeReason::Switchover, Glsn::new(1, 1));
        assert_eq!(s.region_state(&r("west")), Some(RegionState::Online));
        assert_eq!(s.epoch, 2);
        // Lost to a later fork: the first change after epoch 1 decides.
        change_write_region(&mut s, "east", ChangeReason::Switchover, Glsn::new(2, 5));
        assert_eq!(s.fork_after(1), Some(Glsn::new(1, 1)));
        assert_eq!(s.fork_after(2), Some(Glsn::new(2, 5)));
        assert_eq!(s.fork_after(3), None);
    }

    #[test]
    fn only_an_online_other_region_can_take_over() {
        let mut s = formed();
        assert!(
            s.check_target(&r("west"))
                .unwrap_err()
                .to_string()
                .contains("already the write region")
        );
        set_state(&mut s, "east", RegionState::Offline);
        assert!(
            s.check_target(&r("east"))
                .unwrap_err()
                .to_string()
                .contains("offline")
        );
        assert!(
            s.check_target(&r("mars"))
                .unwrap_err()
                .to_string()
                .contains("not a region")
        );
        assert!(s.check_target(&r("north")).is_ok());
        let refused = s.apply(MetaCommand::Schedule(Some(ScheduledSwitchover {
            to: r("east"),
            at_ms: 10,
        })));
        assert!(matches!(refused, MetaReply::Refused(_)));
    }
}
