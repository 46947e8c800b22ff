//! Session tokens per container: the newest token a client has seen for
//! each container, presented by its later session reads so they see its
//! own writes. Invariant: a container's tracked token only moves forward.

use std::collections::HashMap;

use crate::consistency::Consistency;
use crate::glsn::SessionToken;

/// How many containers' session tokens are remembered; beyond it the
/// smallest token is folded into a shared floor (see `SessionTokens`).
pub const SESSION_CONTAINERS_MAX: usize = 1024;

/// The token a request presents: the caller's (`explicit`), else the
/// tracked one when the request may be at SESSION. With no explicit level
/// the account default might be SESSION, and presenting a token to a
/// weaker level is harmless. A read waits for the token; a read or a write
/// whose token a failover's fork lost is refused with SESSION_LOST, so a
/// write cannot carry the session past its lost writes unnoticed.
pub(crate) fn token_to_present(
    consistency: Option<Consistency>,
    explicit: Option<SessionToken>,
    tracked: Option<SessionToken>,
) -> Option<SessionToken> {
    if explicit.is_some() {
        return explicit;
    }
    match consistency {
        None | Some(Consistency::Session) => tracked,
        Some(_) => None,
    }
}

/// The latest session token seen per container, bounded in size.
#[derive(Debug, Default)]
pub(crate) struct SessionTokens {
    by_container: HashMap<String, SessionToken>,
    /// The highest token evicted to keep the map bounded, presented for
    /// containers without their own entry. A GLSN orders all writes of the
    /// account, so a higher token than needed is still correct: at worst the
    /// replica waits for more of the log.
    evicted_max: Option<SessionToken>,
}

impl SessionTokens {
    pub(crate) fn observe(&mut self, container: &str, token: SessionToken) {
        if let Some(current) = self.by_container.get_mut(container) {
            *current = (*current).max(token);
            return;
        }
        if self.by_container.len() >= SESSION_CONTAINERS_MAX {
            self.evict_smallest();
        }
        self.by_container.insert(container.to_string(), token);
    }

    pub(crate) fn latest(&self, container: &str) -> Option<SessionToken> {
        self.by_container
            .get(container)
            .copied()
            .or(self.evicted_max)
    }

    fn evict_smallest(&mut self) {
        let smallest = self
            .by_container
            .iter()
            .min_by_key(|(_, token)| **token)
            .map(|(name, token)| (name.clone(), *token));
        if let Some((name, token)) = smallest {
            self.by_container.remove(&name);
            self.evicted_max = self.evicted_max.max(Some(token));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glsn::Glsn;

    fn token(epoch: u64, lsn: u64) -> SessionToken {
        SessionToken(Glsn::new(epoch, lsn))
    }

    #[test]
    fn tracked_tokens_only_move_forward() {
        let mut tokens = SessionTokens::default();
        tokens.observe("c", token(1, 5));
        tokens.observe("c", token(1, 3));
        assert_eq!(tokens.latest("c"), Some(token(1, 5)));
        tokens.observe("c", token(2, 1));
        assert_eq!(tokens.latest("c"), Some(token(2, 1)));
        assert_eq!(tokens.latest("other"), None);
    }

    #[test]
    fn eviction_keeps_the_map_bounded_and_never_forgets_a_floor() {
        let mut tokens = SessionTokens::default();
        for i in 0..SESSION_CONTAINERS_MAX as u64 {
            tokens.observe(&format!("c{i}"), token(1, 100 + i));
        }
        tokens.observe("late", token(1, 10_000));
        assert_eq!(tokens.by_container.len(), SESSION_CONTAINERS_MAX);
        // c0 held the smallest token and was evicted: it still gets a token
        // at least as high as the one it had.
        assert_eq!(tokens.latest("c0"), Some(token(1, 100)));
        assert_eq!(tokens.latest("late"), Some(token(1, 10_000)));
    }

    #[test]
    fn requests_present_the_tracked_token_only_when_they_may_be_at_session() {
        let tracked = Some(token(1, 9));
        assert_eq!(token_to_present(None, None, tracked), tracked);
        let session = Some(Consistency::Session);
        assert_eq!(token_to_present(session, None, tracked), tracked);
        let eventual = Some(Consistency::Eventual);
        assert_eq!(token_to_present(eventual, None, tracked), None);
        let explicit = Some(token(1, 2));
        assert_eq!(token_to_present(eventual, explicit, tracked), explicit);
        assert_eq!(token_to_present(None, explicit, tracked), explicit);
    }
}
