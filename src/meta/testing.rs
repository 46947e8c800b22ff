//! Meta states for unit tests: an account formed over the regions named,
//! the first writing, with small bounded-staleness limits and failover on.

use crate::config::WriteMode;
use crate::consistency::Consistency;
use crate::ids::RegionId;
use crate::meta::{AccountSettings, MetaCommand, MetaState};

/// The `Init` command of account `dev` over `regions`, in priority order.
pub fn init(regions: &[&str], default_consistency: Consistency) -> MetaCommand {
    MetaCommand::Init {
        settings: AccountSettings {
            name: "dev".into(),
            write_mode: WriteMode::SingleWrite,
            default_consistency,
            max_staleness_ops: 10,
            max_staleness_ms: 1000,
            failover: true,
            max_lag_on_failover: 100,
        },
        priorities: regions.iter().map(|r| RegionId::new(*r)).collect(),
    }
}

/// The meta state once `init` applied.
pub fn formed(regions: &[&str], default_consistency: Consistency) -> MetaState {
    let mut s = MetaState::default();
    s.apply(init(regions, default_consistency));
    s
}
