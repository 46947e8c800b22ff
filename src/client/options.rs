//! How a routed client connects ([`ClientOptions`]), and per-request
//! options: the consistency level, the session token and, for writes,
//! whether the write may be routed; and the key range of a scan.

use std::time::Duration;

use crate::client::retry::DEADLINE_DEFAULT;
use crate::consistency::Consistency;
use crate::glsn::SessionToken;

/// How a routed client finds the account and how long one operation may
/// keep trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Where to learn the account from: nodes, or a load balancer in
    /// front of them; at least one. The region of the first one that is a
    /// node is the home region, which reads try right after the preferred
    /// ones.
    pub endpoints: Vec<String>,
    /// Regions reads try first, first choice first. Writes always go to
    /// the write region.
    pub preferred_regions: Vec<String>,
    /// How long one operation may keep retrying, across nodes that stop,
    /// regions that cannot serve, throttling and a failover.
    pub deadline: Duration,
}

impl ClientOptions {
    pub fn new(endpoint: &str) -> ClientOptions {
        ClientOptions {
            endpoints: vec![endpoint.to_string()],
            preferred_regions: Vec::new(),
            deadline: DEADLINE_DEFAULT,
        }
    }
}

/// Per-request options of a read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// `None` means the account default.
    pub consistency: Option<Consistency>,
    /// `None` lets the client present the latest token it has seen.
    pub session_token: Option<SessionToken>,
}

/// Per-request options of a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `None` means the account default.
    pub consistency: Option<Consistency>,
    pub session_token: Option<SessionToken>,
    /// Send the write where a read would go and refuse it there
    /// (NOT_WRITE_REGION) unless that is the write region: neither the
    /// client nor the server routes it. A direct client only sets the flag
    /// for its one node.
    pub no_forward: bool,
}

/// Which keys a scan visits; `None` fields do not constrain it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRange {
    pub prefix: Option<String>,
    /// Inclusive.
    pub start: Option<String>,
    /// Exclusive.
    pub end: Option<String>,
}
