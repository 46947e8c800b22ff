//! The meta group's state and the pure rule that changes it (DESIGN.md
//! "The meta group and failover"). The meta group is a second raft group
//! (`raft::meta_replica`); every node holds a copy of this state, as a
//! voter or a learner, so every node can read it.
//!
//! What lives here: the account settings, the failover priorities, the
//! epoch and write region, and per region its place in the strong set
//! (`RegionState`) and the node that last renewed its lease.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{AccountConfig, WriteMode};
use crate::consistency::Consistency;
use crate::glsn::EPOCH_INITIAL;
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Forms the account's meta state; ignored once formed, so every node
    /// may propose it.
    Init {
        settings: AccountSettings,
        priorities: Vec<RegionId>,
    },
    /// A region leader renews its region's lease. An offline region that
    /// renews becomes joining.
    RenewLease {
        region: RegionId,
        node: NodeId,
    },
    SetPriorities(Vec<RegionId>),
    /// Moves a region from `from` to `to`; refused when the region is not
    /// in `from` (so a stale decision never undoes a newer one).
    SetRegionState {
        region: RegionId,
        from: RegionState,
        to: RegionState,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    Done,
    /// A renewal committed; the region's state at that commit.
    Renewed {
        state: RegionState,
    },
    Refused(String),
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
            } => {
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
                        };
                        (r.clone(), meta)
                    })
                    .collect();
                self.priorities = priorities;
                MetaReply::Done
            }
            MetaCommand::RenewLease { region, node } => {
                let Some(meta) = self.regions.get_mut(&region) else {
                    return MetaReply::Refused(format!("unknown region {region}"));
                };
                if meta.state == RegionState::Offline {
                    meta.state = RegionState::Joining;
                }
                meta.lease_holder = Some(node);
                meta.renewals += 1;
                MetaReply::Renewed { state: meta.state }
            }
            MetaCommand::SetPriorities(order) => match self.check_priorities(&order) {
                Ok(()) => {
                    self.priorities = order;
                    MetaReply::Done
                }
                Err(why) => MetaReply::Refused(why),
            },
            MetaCommand::SetRegionState { region, from, to } => {
                if self.is_write_region(&region) && to != RegionState::Online {
                    return MetaReply::Refused(format!(
                        "{region} is the write region; it leaves the strong set only by failover"
                    ));
                }
                match self.regions.get_mut(&region) {
                    None => MetaReply::Refused(format!("unknown region {region}")),
                    Some(meta) if meta.state != from => MetaReply::Refused(format!(
                        "{region} is {}, not {}",
                        meta.state.as_str(),
                        from.as_str()
                    )),
                    Some(meta) => {
                        meta.state = to;
                        MetaReply::Done
                    }
                }
            }
        }
    }

    /// A priority order must name every region of the account exactly once.
    pub fn check_priorities(&self, order: &[RegionId]) -> Result<(), String> {
        let mut problems = Vec::new();
        for (i, r) in order.iter().enumerate() {
            if !self.regions.contains_key(r) {
                problems.push(format!("{r} is not a region of the account"));
            } else if order[..i].contains(r) {
                problems.push(format!("{r} is listed twice"));
            }
        }
        for r in self.regions.keys() {
            if !order.contains(r) {
                problems.push(format!("{r} is missing"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            let known: Vec<&str> = self.regions.keys().map(RegionId::as_str).collect();
            Err(format!(
                "invalid priorities: {} (the regions are {}; name each exactly once)",
                problems.join("; "),
                known.join(", ")
            ))
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
        let mut s = MetaState::default();
        s.apply(MetaCommand::Init {
            settings: AccountSettings {
                name: "dev".into(),
                write_mode: WriteMode::SingleWrite,
                default_consistency: Consistency::Strong,
                max_staleness_ops: 10,
                max_staleness_ms: 1000,
            },
            priorities: vec![r("west"), r("east"), r("north")],
        });
        s
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
        });
        assert_eq!(
            reply,
            MetaReply::Renewed {
                state: RegionState::Joining
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
        assert!(why.contains("mars is not a region"), "{why}");
        assert!(why.contains("east is listed twice"), "{why}");
        assert!(why.contains("west is missing"), "{why}");
        assert_eq!(s.priorities[0], r("east"), "unchanged after a refusal");
    }
}
