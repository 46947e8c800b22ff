//! Per-request options: the consistency level, the session token and, for
//! writes, whether forwarding is allowed; and the key range of a scan.

use crate::consistency::Consistency;
use crate::glsn::SessionToken;

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
    /// Refuse (NOT_WRITE_REGION) instead of forwarding when the endpoint is
    /// not in the write region.
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
