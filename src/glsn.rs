//! Global log sequence numbers and session tokens.
//!
//! A GLSN `(epoch, lsn)` is given to every committed write. Within one
//! history `lsn` grows by one per write and never goes backwards across
//! epochs, so GLSNs order writes totally: compare epoch, then lsn.
//! A session token is the GLSN a client has observed, printed `e3:1042`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The first epoch of an account. Every change of write region (a failover
/// or a switchover) adds one.
pub const EPOCH_INITIAL: u64 = 1;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Glsn {
    pub epoch: u64,
    pub lsn: u64,
}

impl Glsn {
    pub const ZERO: Glsn = Glsn { epoch: 0, lsn: 0 };

    pub fn new(epoch: u64, lsn: u64) -> Self {
        Self { epoch, lsn }
    }

    /// The GLSN of the write after this one in the same epoch.
    pub fn next(self) -> Self {
        Self {
            epoch: self.epoch,
            lsn: self.lsn + 1,
        }
    }
}

impl fmt::Display for Glsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}:{}", self.epoch, self.lsn)
    }
}

/// What a write returns and a SESSION read presents: the GLSN the client has
/// seen. Opaque to clients; parsed strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionToken(pub Glsn);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed session token {0:?}: expected the form e<epoch>:<lsn>, as a write returned it")]
pub struct MalformedSessionToken(pub String);

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SessionToken {
    type Err = MalformedSessionToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || MalformedSessionToken(s.chars().take(64).collect());
        let rest = s.strip_prefix('e').ok_or_else(malformed)?;
        let (epoch, lsn) = rest.split_once(':').ok_or_else(malformed)?;
        let epoch = epoch.parse::<u64>().map_err(|_| malformed())?;
        let lsn = lsn.parse::<u64>().map_err(|_| malformed())?;
        Ok(SessionToken(Glsn { epoch, lsn }))
    }
}

/// Parses an optional token: the empty string means "no token".
pub fn parse_session_token(s: &str) -> Result<Option<SessionToken>, MalformedSessionToken> {
    if s.is_empty() {
        Ok(None)
    } else {
        s.parse().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glsn_orders_by_epoch_then_lsn() {
        assert!(Glsn::new(1, 900) < Glsn::new(2, 1));
        assert!(Glsn::new(2, 1) < Glsn::new(2, 2));
        assert_eq!(Glsn::new(3, 7).next(), Glsn::new(3, 8));
    }

    #[test]
    fn session_token_round_trips() {
        let token = SessionToken(Glsn::new(3, 1042));
        assert_eq!(token.to_string(), "e3:1042");
        assert_eq!("e3:1042".parse::<SessionToken>().unwrap(), token);
    }

    #[test]
    fn malformed_session_tokens_are_refused() {
        for bad in [
            "3:1042", "e3", "e:1", "e3:", "ex:1", "e1:-1", "e1:2:3", " e1:2",
        ] {
            assert!(bad.parse::<SessionToken>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_session_token("").unwrap(), None);
    }
}
