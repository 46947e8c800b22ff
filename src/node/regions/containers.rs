//! Containers at run time (DESIGN.md "Containers"): creating one through
//! the meta group, and finding the container a write lands in, creating
//! it with the default policy (`lww`) on its first write.
//!
//! A container's policy never changes and a container is never removed,
//! so this node's copy of the meta state, however far it trails, answers
//! exactly for every container it has: only a container it lacks costs a
//! meta round trip, and creating is idempotent, so proposing it again
//! (another node's first write, a lost answer) is harmless.

use std::time::Duration;

use crate::clock::Instant;
use crate::command::WriteOp;
use crate::container::{self, ContainerPolicy, ContainerSpec, CreateDecision};
use crate::error::Error;
use crate::meta::{MetaCommand, MetaRefusal, MetaReply};
use crate::node::regions::handle::Geo;

/// How long a creation waits for this node's copy of the meta state to
/// show the committed container. Short: the container exists either way,
/// and a write must keep its own time for the write itself.
const LOCAL_COPY_WAIT: Duration = Duration::from_secs(1);

impl Geo {
    /// The container `name` as this node's copy of the meta state has it.
    pub fn container(&self, name: &str) -> Option<ContainerSpec> {
        self.inner.meta.watch().borrow().container(name)
    }

    /// Every container this node's copy of the meta state has, by name.
    pub fn containers(&self) -> Vec<ContainerSpec> {
        self.inner.meta.watch().borrow().container_list()
    }

    /// Creates `spec` unless it exists with the same policy; a container
    /// that exists with another policy is refused. Returns once this
    /// node's copy has it (or `timeout` passed), so what this node reads
    /// next sees it.
    pub async fn create_container(
        &self,
        spec: ContainerSpec,
        timeout: Duration,
    ) -> Result<ContainerSpec, Error> {
        match self.propose_container(&spec, timeout).await? {
            None => Ok(spec),
            Some(refusal) => Err(refusal.into()),
        }
    }

    /// A client's write is one its container's policy admits: a put to a
    /// container that does not exist creates it (`lww`) first; a delete
    /// does not, as there is nothing to delete in it. Refusals, such as a
    /// value that is not JSON in an `lww:/path` container, are
    /// INVALID_ARGUMENT, before anything is written.
    pub async fn check_write(
        &self,
        name: &str,
        op: &WriteOp,
        timeout: Duration,
    ) -> Result<(), Error> {
        let checked = match op {
            WriteOp::Put { value, .. } => {
                let spec = self.container_for_write(name, timeout).await?;
                container::check_put(&spec, value)
            }
            WriteOp::Delete { .. } => match self.container(name) {
                Some(spec) => container::check_delete(&spec),
                None => Ok(()),
            },
        };
        checked.map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// The container a put to `name` lands in: the one that exists, or a
    /// new `lww` one. Losing a race to a creation with another policy
    /// gives that container.
    pub async fn container_for_write(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<ContainerSpec, Error> {
        if let Some(spec) = self.container(name) {
            return Ok(spec);
        }
        let spec = ContainerSpec {
            name: name.to_string(),
            policy: ContainerPolicy::default(),
        };
        match self.propose_container(&spec, timeout).await? {
            None => Ok(spec),
            Some(MetaRefusal::ContainerPolicyFixed { existing, .. }) => Ok(ContainerSpec {
                name: name.to_string(),
                policy: existing,
            }),
            Some(refusal) => Err(refusal.into()),
        }
    }

    /// Proposes the creation of `spec` when this node does not know the
    /// container yet (when it does, its copy decides exactly), then waits
    /// for this node's copy to have it. `Some` is the meta group's refusal.
    async fn propose_container(
        &self,
        spec: &ContainerSpec,
        timeout: Duration,
    ) -> Result<Option<MetaRefusal>, Error> {
        match self.inner.meta.watch().borrow().creation(spec) {
            Ok(CreateDecision::Create) => {}
            Ok(CreateDecision::AlreadyExists) => return Ok(None),
            Err(refusal) => return Ok(Some(refusal)),
        }
        let deadline = Instant::now() + timeout;
        let command = MetaCommand::CreateContainer {
            name: spec.name.clone(),
            policy: spec.policy.clone(),
        };
        match self.inner.meta.propose(command, timeout).await {
            Ok(MetaReply::Refused(refusal)) => return Ok(Some(refusal)),
            Ok(_) => {}
            Err(e) => return Err(Error::meta_unavailable(e)),
        }
        // Committed: the container exists with this policy whether or not
        // this node's copy has caught up, so the wait is for later reads
        // here and its end is not an error.
        let mut watch = self.inner.meta.watch();
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .min(LOCAL_COPY_WAIT);
        let _ = tokio::time::timeout(
            remaining,
            watch.wait_for(|m| m.containers.contains_key(&spec.name)),
        )
        .await;
        Ok(None)
    }
}
