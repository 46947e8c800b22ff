//! What the failover requests of `Admin` answer, in domain types: a
//! switchover done or scheduled, a scheduled one cancelled, and the
//! history of changes of write region.

use crate::glsn::Glsn;
use crate::ids::RegionId;

/// The answer to `Admin.Failover` with a target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switchover {
    /// Only scheduled: it runs at the time asked for.
    pub scheduled: bool,
    /// The epoch that began; `None` when scheduled.
    pub epoch: Option<u64>,
    /// The last GLSN of the old epoch the new one continues from.
    pub fork: Option<Glsn>,
    pub write_region: RegionId,
}

/// The answer to cancelling a scheduled switchover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelledSwitchover {
    pub to: RegionId,
    /// When it would have run, ms since the Unix epoch.
    pub at_ms: Option<u64>,
    /// The region that keeps the writes.
    pub write_region: RegionId,
}

/// One change of write region, as the meta group recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochChange {
    pub epoch: u64,
    /// The last GLSN of the old epoch that the new one continues from.
    pub fork: Option<Glsn>,
    /// `failover` or `switchover`.
    pub reason: String,
    pub from_region: RegionId,
    pub to_region: RegionId,
    /// Ms since the Unix epoch.
    pub at_ms: u64,
}
