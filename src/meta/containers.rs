//! The account's containers in the meta state (DESIGN.md "Containers"):
//! the rule that creates one, pure like the rest of `MetaState::apply`.
//!
//! Invariant: a container's policy never changes once created. Creating
//! it again with the same policy changes nothing and succeeds, so a write
//! that creates its container implicitly (`lww`) may propose the creation
//! again after a lost answer or from several nodes at once.

use crate::container::{self, ContainerPolicy, ContainerSpec, CreateDecision};
use crate::meta::{MetaRefusal, MetaReply, MetaState};

impl MetaState {
    /// The container `name`, if it exists.
    pub fn container(&self, name: &str) -> Option<ContainerSpec> {
        self.containers.get(name).map(|policy| ContainerSpec {
            name: name.to_string(),
            policy: policy.clone(),
        })
    }

    /// Every container, in name order.
    pub fn container_list(&self) -> Vec<ContainerSpec> {
        self.containers
            .iter()
            .map(|(name, policy)| ContainerSpec {
                name: name.clone(),
                policy: policy.clone(),
            })
            .collect()
    }

    /// What creating `requested` comes to in this state (`check_create`),
    /// with a change of policy as the meta group refuses it. A node asks
    /// its own copy first: a container is never removed and its policy
    /// never changes, so a copy that has it answers exactly.
    pub fn creation(&self, requested: &ContainerSpec) -> Result<CreateDecision, MetaRefusal> {
        let existing = self.container(&requested.name);
        container::check_create(existing.as_ref(), requested).map_err(|_| {
            MetaRefusal::ContainerPolicyFixed {
                container: requested.name.clone(),
                existing: existing.map(|e| e.policy).unwrap_or_default(),
                requested: requested.policy.clone(),
            }
        })
    }

    /// Creates `name` with `policy` unless it exists: with the same
    /// policy that is success, with another a refusal.
    pub(super) fn create_container(&mut self, name: String, policy: ContainerPolicy) -> MetaReply {
        if !self.is_formed() {
            return MetaReply::Refused(MetaRefusal::NotFormed);
        }
        let requested = ContainerSpec { name, policy };
        match self.creation(&requested) {
            Ok(CreateDecision::Create) => {
                self.containers.insert(requested.name, requested.policy);
                MetaReply::Done
            }
            Ok(CreateDecision::AlreadyExists) => MetaReply::Done,
            Err(refusal) => MetaReply::Refused(refusal),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::consistency::Consistency;
    use crate::container::ContainerPolicy;
    use crate::meta::{MetaCommand, MetaRefusal, MetaReply, MetaState};

    fn formed() -> MetaState {
        crate::meta::testing::formed(&["west", "east"], Consistency::Session)
    }

    fn create(s: &mut MetaState, name: &str, policy: &str) -> MetaReply {
        s.apply(MetaCommand::CreateContainer {
            name: name.into(),
            policy: policy.parse().expect("a valid policy"),
        })
    }

    #[test]
    fn a_container_is_created_once_with_its_policy() {
        let mut s = formed();
        assert_eq!(s.container("jobs"), None);
        assert_eq!(create(&mut s, "jobs", "lww:/priority"), MetaReply::Done);
        assert_eq!(create(&mut s, "hits", "counter"), MetaReply::Done);
        let jobs = s.container("jobs").expect("created");
        assert_eq!(jobs.policy.to_string(), "lww:/priority");
        let names: Vec<String> = s.container_list().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["hits", "jobs"], "listed in name order");
    }

    #[test]
    fn creating_again_with_the_same_policy_changes_nothing() {
        let mut s = formed();
        create(&mut s, "orders", "lww --no-feed-for-lww");
        let before = s.clone();
        assert_eq!(
            create(&mut s, "orders", "lww --no-feed-for-lww"),
            MetaReply::Done
        );
        assert_eq!(s, before);
    }

    #[test]
    fn a_policy_change_is_refused_and_changes_nothing() {
        let mut s = formed();
        create(&mut s, "orders", "lww");
        let before = s.clone();
        for other in ["counter", "lww:/p", "lww --no-feed-for-lww", "custom"] {
            let reply = create(&mut s, "orders", other);
            assert_eq!(
                reply,
                MetaReply::Refused(MetaRefusal::ContainerPolicyFixed {
                    container: "orders".into(),
                    existing: ContainerPolicy::default(),
                    requested: other.parse().unwrap(),
                }),
                "{other}"
            );
            assert_eq!(s, before, "{other}");
        }
    }

    #[test]
    fn containers_leave_the_persisted_meta_state_as_it_was() {
        // The meta state machine stores containers under a key of their
        // own; the state's bytes stay those of a state without them, so
        // a state persisted before containers existed still decodes.
        let mut s = formed();
        let old_bytes = crate::codec::encode(&s);
        create(&mut s, "orders", "custom");
        assert_eq!(crate::codec::encode(&s), old_bytes);
        let back: MetaState = crate::codec::decode("meta state", &old_bytes).unwrap();
        assert!(back.containers.is_empty());
    }

    #[test]
    fn no_container_before_the_account_is_formed() {
        let mut s = MetaState::default();
        assert_eq!(
            create(&mut s, "orders", "lww"),
            MetaReply::Refused(MetaRefusal::NotFormed)
        );
        assert!(s.containers.is_empty());
    }
}
