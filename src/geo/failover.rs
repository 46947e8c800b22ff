//! Failover's decisions (DESIGN.md "The meta group and failover"), pure:
//! the meta leader's step each tick, the write path's fencing check, which
//! region the region taking over fetches the old epoch from, which write
//! region node a read region streams from, and the epoch a re-joining
//! region's lost writes are reported in. The runtime that carries them out
//! is `node::regions::failover`; the safety argument is in its header.

use std::time::Duration;

use crate::error::Error;
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};
use crate::meta::{ChangeReason, MetaCommand, MetaState};

/// A transition that has not completed after this long is given up.
pub const TRANSITION_TIMEOUT: Duration = Duration::from_secs(10);

/// The meta leader's failover step at wall-clock `now_ms`, if any: give
/// up a transition that takes too long, start a due scheduled switchover,
/// or, when the write region's lease has expired, start a failover (or say
/// why none can start, once per reason); clear that reason once the lease
/// is held again.
pub fn failover_step(meta: &MetaState, write_expired: bool, now_ms: u64) -> Option<MetaCommand> {
    let settings = meta.settings.as_ref()?;
    if let Some(t) = &meta.transition {
        let age = now_ms.saturating_sub(t.started_ms);
        (age > TRANSITION_TIMEOUT.as_millis() as u64).then(|| MetaCommand::AbortTransition {
            to: t.to.clone(),
            why: format!(
                "the {} to {} did not complete within {TRANSITION_TIMEOUT:?}",
                t.reason.as_str(),
                t.to
            ),
        })
    } else if let Some(s) = meta.scheduled.as_ref().filter(|s| s.at_ms <= now_ms) {
        Some(MetaCommand::BeginTransition {
            to: s.to.clone(),
            reason: ChangeReason::Switchover,
            at_ms: now_ms,
        })
    } else if write_expired && (!settings.failover || meta.paused) {
        let why = if settings.failover {
            "failover is paused; `meridian resume` lets it happen"
        } else {
            "service-managed failover is off; `meridian failover --to REGION` moves writes"
        };
        let why = format!("the write region's lease expired, but {why}");
        (meta.failover_blocked.as_ref() != Some(&why))
            .then_some(MetaCommand::SetFailoverBlocked(Some(why)))
    } else if write_expired {
        match meta.choose_failover() {
            Ok(to) => Some(MetaCommand::BeginTransition {
                to,
                reason: ChangeReason::Failover,
                at_ms: now_ms,
            }),
            Err(why) => (meta.failover_blocked.as_ref() != Some(&why))
                .then_some(MetaCommand::SetFailoverBlocked(Some(why))),
        }
    } else if meta.failover_blocked.is_some() {
        Some(MetaCommand::SetFailoverBlocked(None))
    } else {
        None
    }
}

/// The write path's fencing check in `region`: its lease is not fenced
/// (`lease_fenced`, from its last renewal) and no transition away from it
/// is under way, and it is the write region.
pub fn check_write_fence(
    meta: &MetaState,
    region: &RegionId,
    lease_fenced: bool,
) -> Result<(), Error> {
    let fenced = lease_fenced || meta.transition.as_ref().is_some_and(|t| &t.from == region);
    if fenced {
        let to = meta
            .transition
            .as_ref()
            .map_or_else(|| "another region".to_string(), |t| t.to.to_string());
        return Err(Error::Unavailable {
            region: Some(region.clone()),
            reason: format!("writes are moving to {to}; retry there shortly"),
        });
    }
    if !meta.is_write_region(region) {
        return Err(Error::NotWriteRegion {
            region: region.clone(),
            write_region: meta.write_region.clone(),
            epoch: meta.epoch,
        });
    }
    Ok(())
}

/// The transition under way names `region` to take over writes, and this
/// node (`leading` it) completes it.
pub fn takes_over(meta: &MetaState, region: &RegionId, leading: bool) -> bool {
    meta.transition.as_ref().is_some_and(|t| &t.to == region) && leading
}

/// Of the regions that answered with (region, leader, applied), the one
/// holding the highest GLSN the history still has (a region past a fork
/// holds writes it dropped). On a tie, the last one answered.
pub fn most_advanced(
    meta: &MetaState,
    reports: impl IntoIterator<Item = (RegionId, NodeId, Glsn)>,
) -> Option<(RegionId, NodeId, Glsn)> {
    reports
        .into_iter()
        .filter(|(_, _, applied)| meta.diverged(*applied).is_none())
        .max_by_key(|(_, _, applied)| *applied)
}

/// The write region node a read region streams from on its `attempt`th
/// try: the last known leader on every other try (it has the newest
/// entries), else the nodes in turn. `None` only for a region without
/// nodes, which the configuration refuses.
pub fn pick_source(hint: Option<NodeId>, nodes: &[NodeId], attempt: usize) -> Option<NodeId> {
    match hint {
        Some(h) if attempt.is_multiple_of(2) => Some(h),
        _ => nodes.get(attempt % nodes.len().max(1)).copied(),
    }
}

/// The epoch in which a region that applied up to `applied` lost its
/// writes past the fork: the one the first change of write region after
/// `applied`'s epoch began (the current one if the history has none).
pub fn lost_in_epoch(meta: &MetaState, applied: Glsn) -> u64 {
    meta.change_after(applied.epoch)
        .map_or(meta.epoch, |c| c.epoch)
}

#[cfg(test)]
mod tests;
