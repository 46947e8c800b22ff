//! Conversions between `pb::` messages and domain types, in one place.

use crate::consistency::Consistency;
use std::time::Duration;

use crate::container::{ContainerError, ContainerPolicy, ContainerSpec};

use crate::fault::{FaultAction, LinkRule};
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};
use crate::wire::pb::v1 as pb;

impl From<Glsn> for pb::Glsn {
    fn from(g: Glsn) -> Self {
        pb::Glsn {
            epoch: g.epoch,
            lsn: g.lsn,
        }
    }
}

impl From<pb::Glsn> for Glsn {
    fn from(g: pb::Glsn) -> Self {
        Glsn::new(g.epoch, g.lsn)
    }
}

impl From<Consistency> for pb::Consistency {
    fn from(c: Consistency) -> Self {
        match c {
            Consistency::Strong => pb::Consistency::Strong,
            Consistency::BoundedStaleness => pb::Consistency::BoundedStaleness,
            Consistency::Session => pb::Consistency::Session,
            Consistency::ConsistentPrefix => pb::Consistency::ConsistentPrefix,
            Consistency::Eventual => pb::Consistency::Eventual,
        }
    }
}

/// Decodes the wire's consistency field: `None` means "the account default".
/// An unknown number is an error rather than a silent default.
pub fn consistency_from_wire(raw: i32) -> Result<Option<Consistency>, String> {
    match pb::Consistency::try_from(raw) {
        Ok(pb::Consistency::Unspecified) => Ok(None),
        Ok(pb::Consistency::Strong) => Ok(Some(Consistency::Strong)),
        Ok(pb::Consistency::BoundedStaleness) => Ok(Some(Consistency::BoundedStaleness)),
        Ok(pb::Consistency::Session) => Ok(Some(Consistency::Session)),
        Ok(pb::Consistency::ConsistentPrefix) => Ok(Some(Consistency::ConsistentPrefix)),
        Ok(pb::Consistency::Eventual) => Ok(Some(Consistency::Eventual)),
        Err(_) => Err(format!("unknown consistency value {raw}")),
    }
}

/// Decodes `Admin.Fault`'s request; a missing action or region is an
/// error in words.
pub fn fault_action_from_wire(request: &pb::FaultRequest) -> Result<FaultAction, String> {
    match pb::FaultAction::try_from(request.action) {
        Ok(pb::FaultAction::Isolate) if request.region.trim().is_empty() => {
            Err("isolate needs the region to cut off".into())
        }
        Ok(pb::FaultAction::Isolate) => {
            Ok(FaultAction::Isolate(RegionId::new(request.region.trim())))
        }
        Ok(pb::FaultAction::Heal) => Ok(FaultAction::Heal),
        Ok(pb::FaultAction::Replace) => {
            let links = request
                .links
                .iter()
                .map(link_rule_from_wire)
                .collect::<Result<_, _>>()?;
            let clocks = request
                .clocks
                .iter()
                .map(|c| (NodeId(c.node_id), c.offset_ms))
                .collect();
            Ok(FaultAction::Replace { links, clocks })
        }
        Ok(pb::FaultAction::Unspecified) => Err("no fault action given (isolate or heal)".into()),
        Err(_) => Err(format!("unknown fault action {}", request.action)),
    }
}

fn link_rule_from_wire(link: &pb::FaultLink) -> Result<LinkRule, String> {
    if !(0.0..=1.0).contains(&link.drop_probability) {
        return Err(format!(
            "drop probability {} of n{} -> n{} is not in [0, 1]",
            link.drop_probability, link.from_node_id, link.to_node_id
        ));
    }
    Ok(LinkRule {
        from: NodeId(link.from_node_id),
        to: NodeId(link.to_node_id),
        cut: link.cut,
        stalled: link.stalled,
        delay: Duration::from_millis(link.delay_ms),
        drop_probability: link.drop_probability,
    })
}

pub fn clock_offset_to_wire((node, offset_ms): (NodeId, i64)) -> pb::ClockOffset {
    pb::ClockOffset {
        node_id: node.0,
        offset_ms,
    }
}

pub fn link_rule_to_wire(rule: &LinkRule) -> pb::FaultLink {
    pb::FaultLink {
        from_node_id: rule.from.0,
        to_node_id: rule.to.0,
        cut: rule.cut,
        stalled: rule.stalled,
        delay_ms: rule.delay.as_millis() as u64,
        drop_probability: rule.drop_probability,
    }
}

/// A consistency level as the wire enum's number.
pub fn consistency_to_wire(level: Consistency) -> i32 {
    (match level {
        Consistency::Strong => pb::Consistency::Strong,
        Consistency::BoundedStaleness => pb::Consistency::BoundedStaleness,
        Consistency::Session => pb::Consistency::Session,
        Consistency::ConsistentPrefix => pb::Consistency::ConsistentPrefix,
        Consistency::Eventual => pb::Consistency::Eventual,
    }) as i32
}

impl From<&ContainerSpec> for pb::Container {
    fn from(spec: &ContainerSpec) -> Self {
        pb::Container {
            name: spec.name.clone(),
            policy: spec.policy.name(),
            feed_for_lww: spec.policy.feed_for_lww(),
        }
    }
}

/// A container policy from its wire form: the policy's text, and whether
/// lww losers go to the conflict feed.
pub fn container_policy_from_wire(
    policy: &str,
    feed_for_lww: bool,
) -> Result<ContainerPolicy, ContainerError> {
    let policy: ContainerPolicy = policy.parse()?;
    if feed_for_lww {
        Ok(policy)
    } else {
        policy.without_feed_for_lww()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(action: pb::FaultAction, region: &str) -> pb::FaultRequest {
        pb::FaultRequest {
            action: action as i32,
            region: region.into(),
            ..Default::default()
        }
    }

    #[test]
    fn fault_requests_decode_or_say_what_is_missing() {
        assert_eq!(
            fault_action_from_wire(&request(pb::FaultAction::Isolate, " west ")),
            Ok(FaultAction::Isolate(RegionId::new("west")))
        );
        assert_eq!(
            fault_action_from_wire(&request(pb::FaultAction::Heal, "")),
            Ok(FaultAction::Heal)
        );
        assert!(fault_action_from_wire(&request(pb::FaultAction::Isolate, "")).is_err());
        assert!(fault_action_from_wire(&request(pb::FaultAction::Unspecified, "west")).is_err());
        let unknown = pb::FaultRequest {
            action: 99,
            ..Default::default()
        };
        assert_eq!(
            fault_action_from_wire(&unknown),
            Err("unknown fault action 99".into())
        );
        let rule = LinkRule {
            from: NodeId(1),
            to: NodeId(2),
            cut: true,
            stalled: false,
            delay: Duration::from_millis(30),
            drop_probability: 0.5,
        };
        let mut replace = request(pb::FaultAction::Replace, "");
        replace.links = vec![link_rule_to_wire(&rule)];
        replace.clocks = vec![clock_offset_to_wire((NodeId(3), -1500))];
        assert_eq!(
            fault_action_from_wire(&replace),
            Ok(FaultAction::Replace {
                links: vec![rule],
                clocks: vec![(NodeId(3), -1500)],
            })
        );
        replace.links[0].drop_probability = 1.5;
        assert!(fault_action_from_wire(&replace).is_err());
    }

    #[test]
    fn a_container_round_trips_with_its_feed_flag_as_a_field() {
        for text in ["lww", "lww:/p --no-feed-for-lww", "custom", "counter"] {
            let spec = ContainerSpec {
                name: "c".into(),
                policy: text.parse().unwrap(),
            };
            let wire = pb::Container::from(&spec);
            assert!(!wire.policy.contains("--"), "{wire:?}");
            let back = container_policy_from_wire(&wire.policy, wire.feed_for_lww);
            assert_eq!(back, Ok(spec.policy), "{text}");
        }
        // The flag in the text stays off even when the field leaves it on.
        let quiet = container_policy_from_wire("lww --no-feed-for-lww", true).unwrap();
        assert!(!quiet.feed_for_lww());
        assert!(container_policy_from_wire("set", false).is_err());
        assert!(container_policy_from_wire("crdt", true).is_err());
    }
}
